"""LARS: layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017, arXiv:1708.03888)."""

import re

import keras
from keras import ops

from keras_si.optimizers import _norms
from keras_si.optimizers.base import Optimizer, check_fraction, check_patterns, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class LARS(Optimizer):
    """SGD with momentum whose step is scaled per variable by a trust ratio ||w|| / ||g||.

    "Large Batch Training of Convolutional Networks", You, Gitman and
    Ginsburg, 2017 (https://arxiv.org/abs/1708.03888), Algorithm 1. For each
    variable `w` with gradient `g` (on the global batch), learning rate `lr`
    and weight decay `lam`:

    ```python
    u = g + lam * w                                    # coupled L2, as in the paper
    trust = trust_coefficient * ||w|| / (||g|| + lam * ||w||)   # 1 if ||w|| or ||g|| is 0
    v = momentum * v + lr * trust * u
    w = w - (momentum * v + lr * trust * u if nesterov else v)
    ```

    Variables whose `variable.path` matches `exclude_from_layer_adaptation`
    take `trust = 1`, and those matching `exclude_from_weight_decay` take
    `lam = 0` (the paper's ResNet-50 / batch-32k recipe excludes biases and
    normalization parameters from both). If `exclude_from_layer_adaptation`
    is None it follows `exclude_from_weight_decay`, as in the TensorFlow
    Model Garden's LARS. Norms are per variable.

    Unlike the other keras_si optimizers, `weight_decay` here is the paper's
    coupled L2 term: it goes through the trust ratio and the momentum (Keras's
    optimizers decay decoupled, `w <- w - lr * lam * w`).

    Args:
        learning_rate: a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no argument. Default 0.1.
        momentum: in [0, 1). Default 0.9.
        weight_decay: the coupled L2 rate `lam >= 0`, or None. Default 1e-4.
        trust_coefficient: > 0, the paper's `eta` (renamed: the docs use
            eta for the learning rate; optax's `lars` says
            `trust_coefficient`). Default 0.001.
        nesterov: whether to use Nesterov momentum. Default False.
        exclude_from_weight_decay: None (default), a regular expression or a
            list of them searched in `variable.path`: matching variables are
            not decayed. Keras's `exclude_from_weight_decay` method searches
            the backend's variable name instead; see
            `keras_si.optimizers.Optimizer`.
        exclude_from_layer_adaptation: None (default: the same as
            `exclude_from_weight_decay`), a regular expression or a list of
            them searched in `variable.path`: matching variables take
            `trust = 1`. `[]` adapts every variable.
        name: default None, a name unique in the session ("lars", "lars_1",
            ...).
        **kwargs: the other `keras.optimizers.Optimizer` arguments
            (`clipnorm`, `global_clipnorm`, `use_ema`, ...).

    Raises:
        ValueError: if an argument is out of its range or a pattern is not a
            valid regular expression (see `keras_si.optimizers.Optimizer` for
            the shared arguments).

    Example:

    `||w|| = 5`, `||g|| = 1`: the trust ratio is 0.1 * 5 / (1 + 0.1 * 5) = 1/3.

    >>> import keras
    >>> import keras_si
    >>> w = keras.Variable([3.0, 4.0])
    >>> opt = keras_si.LARS(learning_rate=1.0, weight_decay=0.1, trust_coefficient=0.1)
    >>> opt.apply([keras.ops.convert_to_tensor([0.0, 1.0])], [w])
    >>> [round(float(v), 4) for v in w.numpy()]  # w - (g + 0.1 w) / 3
    [2.9, 3.5333]
    """

    _default_name = "lars"

    def __init__(self, learning_rate=0.1, momentum=0.9, weight_decay=1e-4, trust_coefficient=0.001,
                 nesterov=False, exclude_from_weight_decay=None, exclude_from_layer_adaptation=None,
                 name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         exclude_from_weight_decay=exclude_from_weight_decay, name=name, **kwargs)
        check_fraction("momentum", momentum)
        check_positive_number("trust_coefficient", trust_coefficient)
        self.momentum = float(momentum)
        self.trust_coefficient = float(trust_coefficient)
        self.nesterov = bool(nesterov)
        patterns = check_patterns("exclude_from_layer_adaptation", exclude_from_layer_adaptation)
        # None (follow the weight-decay exclusions) differs from [] (adapt every variable).
        self.exclude_from_layer_adaptation = None if exclude_from_layer_adaptation is None else patterns

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        patterns = self.exclude_from_layer_adaptation
        if patterns is None:
            patterns = self._weight_decay_patterns
        self._adapt = [not any(re.search(p, getattr(v, "path", v.name)) for p in patterns) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        lam = self.weight_decay_for(variable)
        g = ops.convert_to_tensor(gradient)
        w = ops.convert_to_tensor(variable)
        update = g + lam * w if lam else g
        if self._adapt[index]:
            w_norm = ops.sqrt(_norms.sum_of_squares(w))
            g_norm = ops.sqrt(_norms.sum_of_squares(g))
            ratio = self.trust_coefficient * w_norm / (g_norm + lam * w_norm + 1e-30)
            trust = ops.where((w_norm > 0) & (g_norm > 0), ratio, 1.0)
            lr = lr * ops.cast(trust, variable.dtype)
        v = self._velocities[index]
        new_v = self.momentum * ops.convert_to_tensor(v) + lr * update
        self.assign(v, new_v)
        step = self.momentum * new_v + lr * update if self.nesterov else new_v
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, trust_coefficient=self.trust_coefficient, nesterov=self.nesterov,
                      exclude_from_layer_adaptation=self.exclude_from_layer_adaptation)
        return config
