"""LARS: layer-wise adaptive rate scaling (You, Gitman and Ginsburg, 2017)."""

import re

import keras
from keras import ops

from keras_si.optimizers import _norms
from keras_si.optimizers.base import Optimizer, check_fraction, check_patterns, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class LARS(Optimizer):
    """SGD with momentum whose step is scaled per variable by a trust ratio.

    "Large Batch Training of Convolutional Networks", You, Gitman and
    Ginsburg, 2017 (arXiv:1708.03888), Algorithm 1, for each variable w with
    gradient g (on the global batch), learning rate eta_t, weight decay lam:

        u     = g + lam * w                          (coupled L2, as in the paper)
        trust = tc * ||w|| / (||g|| + lam * ||w||)   (1 if ||w|| or ||g|| is 0)
        v    <- mu * v + eta_t * trust * u
        w    <- w - v                                (Nesterov: w - (mu * v + eta_t * trust * u))

    Variables whose `variable.path` matches `exclude_from_layer_adaptation`
    take trust = 1, and those matching `exclude_from_weight_decay` take
    lam = 0 (the ResNet-50 / batch-32k recipe excludes biases and
    normalisation parameters from both). If `exclude_from_layer_adaptation` is
    None it follows `exclude_from_weight_decay`, as in the Model Garden.
    Norms are per variable and taken on the all-reduced gradient.

    Args:
        learning_rate: eta (float > 0 or a schedule).
        momentum: mu in [0, 1).
        weight_decay: lam >= 0.
        trust_coefficient: tc > 0 (the paper's eta, 0.001).
        nesterov: Nesterov momentum.
        exclude_from_weight_decay, exclude_from_layer_adaptation: regexes on `variable.path`.
        name: default None, a name unique in the session ("lars", "lars_1", ...).
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
