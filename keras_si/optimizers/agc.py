"""Adaptive gradient clipping (Brock, De, Smith and Simonyan, ICML 2021, arXiv:2102.06171) around any Keras optimizer.

How the wrapper works. Like `keras.optimizers.LossScaleOptimizer`, `AGC`
owns an inner optimizer, delegates its state to it (`variables`,
`iterations`, `learning_rate`, `set_weights`, saving, checkpoints) and takes
none of Keras's base-optimizer arguments itself. Unlike a loss-scale, the
clip must see the gradient the inner optimizer actually steps with: after
Keras has left out the variables it overwrites with their "gradient" (float8
scales, `overwrite_with_gradient=True`), unscaled the gradients by the inner
`loss_scale_factor` and summed the micro-batches of
`gradient_accumulation_steps`. Keras does all of that inside
`inner.apply`, and calls `inner._clip_gradients(grads)` exactly there (before
weight decay and the update, in the accumulation branch as well, on every
backend). So `AGC` installs its clip as that hook of the inner optimizer
instance, followed by the inner optimizer's own clipping (`clipnorm` and
friends); the variables of the gradients are recorded by a second hook on
`inner._backend_apply_gradients`, the method that receives both.

Units are per variable (`keras_si.optimizers._norms.unit_axes`: the output
channels of each Keras kernel layout, an embedding row per token, a whole
vector for biases and gains); `annotate_unit_axes(model)` and the
`variable.unit_axes` attribute state them where the path cannot.
"""

import re

import keras
from keras import ops

from keras_si import backend
from keras_si.optimizers import _norms
from keras_si.optimizers._norms import annotate_unit_axes  # noqa: F401  (public with AGC)
from keras_si.optimizers.base import check_positive_number

# Keras's base-optimizer arguments and their defaults. AGC has no step of its
# own, so each belongs to the inner optimizer; the defaults are accepted so
# that code passing them explicitly keeps working.
_INNER_ARGUMENTS = {
    "learning_rate": None,
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class _HookState:
    """Plain holder (not tracked by Keras or TF) of what the inner optimizer's hooks share within one apply."""

    def __init__(self):
        self.variables = None
        self.reached = False


@keras.saving.register_keras_serializable(package="keras_si")
class AGC(keras.optimizers.Optimizer):
    """Clips each unit's gradient relative to its weight norm, then lets `inner_optimizer` step.

    Adaptive gradient clipping from "High-Performance Large-Scale Image
    Recognition Without Normalization", Brock, De, Smith and Simonyan, ICML
    2021 (https://arxiv.org/abs/2102.06171), Section 4.1. For each unit `i`
    of each variable (its output channels, an embedding row...: see
    `keras_si.optimizers.unit_axes`):

    ```python
    max_norm_i = clipping * max(||W_i||, epsilon)
    if ||G_i|| > max_norm_i:
        G_i = G_i * max_norm_i / ||G_i||
    ```

    `G` is the gradient the inner optimizer steps with: summed over
    replicas, over the micro-batches of its `gradient_accumulation_steps`,
    and divided by its `loss_scale_factor`. Variables with
    `overwrite_with_gradient=True` pass untouched, and so do variables whose
    `variable.path` matches a regex in `exclude_from_clipping` (e.g. the final
    classifier, which the paper leaves unclipped). A `tf.IndexedSlices`
    gradient gets the step of its dense equivalent (duplicate indices summed).

    Under `tf.distribute` the clip must see the global-batch gradient: the
    wrapper sums the gradients across replicas itself, clips, and hands each
    replica `clipped / num_replicas`, which the inner optimizer's own all-reduce
    sums back to the clipped global gradient (exact for a power-of-two number of
    replicas; one extra all-reduce per step). Under `mixed_float16` Keras wraps
    this optimizer in a `LossScaleOptimizer`, so the clip sees unscaled gradients.

    Args:
        inner_optimizer: a Keras optimizer (not yet wrapped by another `AGC`,
            and not a `LossScaleOptimizer`: wrap AGC in it instead). Its
            methods `_clip_gradients` and `_backend_apply_gradients` are
            hooked on that instance.
        clipping: the ratio `lambda > 0` of the largest gradient norm to the
            weight norm. Default 0.01 (NFNets: 0.01 to 0.16 depending on the
            batch size). The name is the NFNets code's and optax's
            (`adaptive_grad_clip(clipping)`); Keras has no relative clip.
        epsilon: the floor of the weight norm, > 0, default 1e-3 (the
            paper's), so that zero-initialised units can move.
        exclude_from_clipping: a regex or list of regexes searched in
            `variable.path`; matching variables are not clipped. Default None.
        name: the optimizer's name; default None, Keras's unique "agc", "agc_1", ...
        **kwargs: Keras's base-optimizer arguments (`learning_rate`,
            `weight_decay`, `use_ema`, `gradient_accumulation_steps`, ...)
            belong to `inner_optimizer`; only their default values are accepted.

    Raises:
        ValueError: for an argument out of range, an invalid regex, a
            non-default base-optimizer argument, an unknown argument, or an
            `inner_optimizer` that is not a Keras optimizer, is a
            `LossScaleOptimizer` or is already wrapped by an AGC; at the first
            `apply`, if the inner optimizer does not apply its gradients
            through Keras's `_backend_apply_gradients` (nothing could be
            clipped).

    Example:

    A vector is one unit: `||W|| = 5`, so the gradient's norm 0.5 is cut to
    `0.01 * 5 = 0.05` before SGD's step.

    >>> import keras
    >>> import keras_si
    >>> w = keras.Variable([3.0, 4.0])
    >>> opt = keras_si.AGC(keras.optimizers.SGD(learning_rate=1.0), clipping=0.01)
    >>> opt.apply([keras.ops.convert_to_tensor([0.3, 0.4])], [w])
    >>> [round(float(v), 4) for v in w.numpy()]
    [2.97, 3.96]
    """

    def __init__(self, inner_optimizer, clipping=0.01, epsilon=1e-3, exclude_from_clipping=None, name=None,
                 **kwargs):
        for arg, default in _INNER_ARGUMENTS.items():
            if arg in kwargs:
                value = kwargs.pop(arg)
                if not (value is default or (default is not None and value == default)):
                    raise ValueError(
                        f"AGC does not take `{arg}`: pass it to the inner optimizer, "
                        f"e.g. AGC(keras.optimizers.SGD(..., {arg}={value!r})). Received: {arg}={value!r}"
                    )
        if kwargs:
            raise ValueError(f"AGC got unknown arguments: {', '.join(sorted(kwargs))}.")
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise ValueError(
                f"`inner_optimizer` must be a Keras optimizer. Received: inner_optimizer={inner_optimizer!r}"
            )
        if isinstance(inner_optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError(
                "`inner_optimizer` must not be a LossScaleOptimizer: wrap the AGC in it instead "
                "(LossScaleOptimizer(AGC(...)), which is what Keras does under mixed_float16)."
            )
        if "_clip_gradients" in vars(inner_optimizer):
            raise ValueError("`inner_optimizer` is already wrapped by an AGC: give each AGC its own optimizer.")
        check_positive_number("clipping", clipping)
        check_positive_number("epsilon", epsilon)
        if isinstance(exclude_from_clipping, str):
            exclude_from_clipping = [exclude_from_clipping]
        patterns = list(exclude_from_clipping or [])
        for p in patterns:
            try:
                re.compile(p)
            except (re.error, TypeError) as e:
                raise ValueError(f"`exclude_from_clipping` holds an invalid regular expression {p!r}: {e}") from None
        super().__init__(learning_rate=0.0, name=name)  # None: Keras's unique "agc", "agc_1", ...
        self.inner_optimizer = inner_optimizer
        self.clipping = float(clipping)
        self.epsilon = float(epsilon)
        self.exclude_from_clipping = patterns or None
        self._hook = _HookState()
        # Bound methods (not closures), so that a deep copy of the AGC
        # hooks the copied inner optimizer to the copied AGC.
        inner_optimizer._backend_apply_gradients = self._inner_backend_apply_gradients
        inner_optimizer._clip_gradients = self._inner_clip_gradients

    # ------------------------------------------------------------ delegation
    def build(self, var_list):
        super().build(var_list)
        self.inner_optimizer.build(var_list)

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

    @property
    def loss_scale_factor(self):
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # Keras's base __init__ sets None before the inner optimizer exists; a
        # LossScaleOptimizer around this AGC sets None to switch the inner
        # optimizer's own scaling off, as it does for a plain optimizer.
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            inner.loss_scale_factor = value

    def scale_loss(self, loss):
        """The inner optimizer's `scale_loss(loss)` (its `loss_scale_factor`).

        Args:
            loss: the loss tensor to scale.

        Returns:
            `loss` multiplied by the inner optimizer's `loss_scale_factor` (unchanged if None).
        """
        return self.inner_optimizer.scale_loss(loss)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Excludes variables from the inner optimizer's weight decay: calls its own method.

        With a keras_si inner optimizer `var_names` are regular expressions
        searched in `variable.path`; with a Keras one, in the backend's
        variable name (see
        `keras_si.optimizers.Optimizer.exclude_from_weight_decay`).

        Args:
            var_list: None (default) or a list of variables to exclude.
            var_names: None (default) or a list of regular expressions.

        Raises:
            ValueError: if the inner optimizer is already built.
        """
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def set_weights(self, weights):
        """Sets the wrapper's and the inner optimizer's variables.

        Args:
            weights: a list of arrays, one per variable of `self.variables`,
                in that order and of the same shapes.

        Raises:
            ValueError: if the optimizer is not built, or `weights` has the
                wrong length or a wrong shape.
        """
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not yet been built. "
                "Call `optimizer.build(trainable_variables)` first."
            )
        variables = self.variables
        weights = list(weights)
        if len(weights) != len(variables):
            raise ValueError(
                f"`weights` must hold {len(variables)} arrays (one per variable). Received {len(weights)}."
            )
        for variable, weight in zip(variables, weights):
            if tuple(variable.shape) != tuple(weight.shape):
                raise ValueError(
                    f"`weights`: optimizer variable {variable.path} has shape {tuple(variable.shape)}, "
                    f"not {tuple(weight.shape)}."
                )
            variable.assign(weight)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    # ----------------------------------------------------------------- apply
    def apply(self, grads, trainable_variables=None):
        """Clips `grads` and applies them through the inner optimizer (Keras's `apply`, same arguments).

        Args:
            grads: a list of gradients (tensors, `tf.IndexedSlices` or None), one per variable.
            trainable_variables: the variables they belong to (None: the variables the optimizer was built with).

        Raises:
            ValueError: if `trainable_variables` is None before the optimizer
                is built, or the inner optimizer never reached Keras's
                `_backend_apply_gradients` (nothing was clipped).
        """
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be built. "
                    "Call `optimizer.build(trainable_variables)` first."
                )
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        self._hook.reached = False
        self.inner_optimizer.apply(grads, trainable_variables)
        steps = [g is not None and not self._overwrite_variable_with_gradient(v)
                 for g, v in zip(grads, trainable_variables)]
        if any(steps) and not self._hook.reached:
            raise ValueError(
                f"AGC: the inner optimizer {type(self.inner_optimizer).__name__} does not apply its gradients "
                "through Keras's `_backend_apply_gradients`, so nothing could be clipped; wrap a plain Keras optimizer."
            )

    def _inner_backend_apply_gradients(self, grads, trainable_variables):
        # The variables of the gradients the inner `_clip_gradients` will get
        # (Keras has filtered both lists the same way before this call).
        inner = self.inner_optimizer
        self._hook.reached = True
        self._hook.variables = list(trainable_variables)
        try:
            return type(inner)._backend_apply_gradients(inner, grads, trainable_variables)
        finally:
            self._hook.variables = None

    def _inner_clip_gradients(self, grads):
        inner = self.inner_optimizer
        if self._hook.variables is not None:
            grads = self._clip_all(list(grads), self._hook.variables)
        return type(inner)._clip_gradients(inner, grads)

    def _clip_all(self, grads, variables):
        replicas = _norms.replicas_to_reduce()
        grads = _norms.all_reduce_sum(grads)
        out = []
        for g, v in zip(grads, variables):
            if g is not None and self._clips(v):
                g = self.clip(g, v)
            if g is not None and replicas > 1:
                # The inner optimizer's all-reduce sums the replicas back.
                g = _norms.map_values(lambda t: t / replicas, g)
            out.append(g)
        return out

    def _clips(self, variable):
        return not any(re.search(p, variable.path) for p in self.exclude_from_clipping or [])

    def _scale(self, grad, weight, axes):
        w_norm = ops.sqrt(_norms.unitwise_sum_of_squares(weight, axes))
        g_norm = ops.sqrt(_norms.unitwise_sum_of_squares(grad, axes))
        max_norm = self.clipping * ops.maximum(w_norm, self.epsilon)
        return ops.where(g_norm > max_norm, max_norm / ops.maximum(g_norm, 1e-30), 1.0)

    def clip(self, grad, variable):
        """The clipped gradient of one variable (whether or not it matches `exclude_from_clipping`).

        Args:
            grad: the variable's gradient: a tensor of its shape, or a
                `tf.IndexedSlices` (rows; duplicate indices are summed).
            variable: the variable, holding the weights the clip is relative
                to; its units are `keras_si.optimizers.unit_axes(variable)`.

        Returns:
            The clipped gradient in the variable's dtype: a tensor of its
            shape, or `tf.IndexedSlices` with each row once where the units
            are rows (an embedding table).
        """
        axes = _norms.unit_axes(variable)
        # Clip in the variable's dtype, to which the inner optimizer casts the
        # gradient anyway (a float32 gradient of a float64 variable must not be
        # rounded to float32 by the clip).
        dtype = keras.backend.standardize_dtype(variable.dtype)
        be = backend.optimizer_backend()
        if be.is_sparse(grad):
            grad = be.map_sparse_values(lambda t: ops.cast(t, dtype), grad)

            if 0 not in axes:
                # Each unit spans rows: its norm needs the whole gradient.
                grad = be.densify(grad)
            else:
                # Each row holds whole units (an embedding row): clip the
                # touched rows, once each, against the same rows of the weight.
                grad = be.combine_duplicate_rows(grad)
                rows = be.gather_rows(variable, be.sparse_indices(grad))
                scale = self._scale(be.sparse_values(grad), rows, axes)
                return be.map_sparse_values(lambda t: t * ops.cast(scale, t.dtype), grad)
        grad = ops.cast(grad, dtype)
        return grad * ops.cast(self._scale(grad, variable, axes), dtype)

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "clipping": self.clipping,
            "epsilon": self.epsilon,
            "exclude_from_clipping": self.exclude_from_clipping,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
