"""Adaptive gradient clipping (Brock, De, Smith and Simonyan, 2021, NFNets), around any Keras optimizer."""

import re

import keras
from keras import ops

from keras_si.optimizers import _norms
from keras_si.optimizers.base import check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class AGC(keras.optimizers.Optimizer):
    """Clips each unit's gradient relative to its weight norm, then lets `inner_optimizer` step.

    "High-Performance Large-Scale Image Recognition Without Normalization",
    Brock et al., ICML 2021, Section 4.1. For each unit i of each variable
    (`keras_si.optimizers._norms.unitwise_sum_of_squares`: output units of
    kernels, whole vectors otherwise):

        max_i = clipping * max(||W_i||, eps)
        G_i  <- G_i * max_i / ||G_i||      if ||G_i|| > max_i

    Variables whose `variable.path` matches a regex in `exclude` (e.g. the
    final classifier, which the paper leaves unclipped) pass unchanged.

    Under `tf.distribute` the clip must see the global-batch gradient: the
    wrapper sums the gradients across replicas itself, clips, and hands each
    replica `clipped / num_replicas`, which the inner optimizer's own all-reduce
    sums back to the clipped global gradient (exact for a power-of-two number of
    replicas; one extra all-reduce per step). Under `mixed_float16` Keras wraps
    this optimizer in a `LossScaleOptimizer`, so the clip sees unscaled gradients.

    Args:
        inner_optimizer: any Keras optimizer.
        clipping: lambda > 0 (NFNets: 0.01 to 0.16 depending on the batch size).
        eps: the floor of the weight norm (1e-3), so that zero-initialised units can move.
        exclude: regexes on `variable.path` of variables not to clip.
    """

    def __init__(self, inner_optimizer, clipping=0.01, eps=1e-3, exclude=None, name="agc"):
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise ValueError(f"`inner_optimizer` must be a Keras optimizer. Received: {inner_optimizer!r}")
        check_positive_number("clipping", clipping)
        check_positive_number("eps", eps)
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.clipping = float(clipping)
        self.eps = float(eps)
        if isinstance(exclude, str):
            exclude = [exclude]
        for p in exclude or []:
            re.compile(p)
        self.exclude = list(exclude) if exclude else None

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        self._clip = {self._var_key(v): not any(re.search(p, v.path) for p in (self.exclude or []))
                      for v in var_list}
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def clip(self, grad, variable):
        """The clipped gradient of one variable."""
        w_norm = ops.sqrt(_norms.unitwise_sum_of_squares(variable))
        g_norm = ops.sqrt(_norms.unitwise_sum_of_squares(grad))
        max_norm = self.clipping * ops.maximum(w_norm, self.eps)
        scale = ops.where(g_norm > max_norm, max_norm / ops.maximum(g_norm, 1e-30), 1.0)
        return grad * ops.cast(scale, grad.dtype)

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        replicas = 1
        ctx = _norms._replica_context_to_reduce()
        if ctx is not None:
            replicas = ctx.num_replicas_in_sync
        grads = [None if g is None else ops.convert_to_tensor(g) for g in _norms.all_reduce_sum(list(grads))]
        clipped = []
        for g, v in zip(grads, trainable_variables):
            if g is not None and self._clip.get(self._var_key(v), True):
                g = self.clip(g, v)
            if g is not None and replicas > 1:
                g = g / replicas  # the inner optimizer's all-reduce sums the replicas back
            clipped.append(g)
        self.inner_optimizer.apply(clipped, trainable_variables)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "clipping": self.clipping,
            "eps": self.eps,
            "exclude": self.exclude,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
