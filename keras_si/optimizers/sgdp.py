"""SGDP: SGD with momentum and the scale-invariant projection (Heo et al., ICLR 2021)."""

import keras
from keras import ops

from keras_si.optimizers._projection import project
from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class SGDP(Optimizer):
    """SGD with momentum whose update is projected on scale-invariant weights.

    "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
    Scale-invariant Weights", Heo et al., ICLR 2021, Algorithm 1 (SGDP):

        m <- mu m + g
        p  = g + mu m   (Nesterov)   or   p = m
        if w has > 1 dimension and looks scale invariant (see `_projection`):
            p <- p - (w_hat . p) w_hat,   decay scaled by wd_ratio
        w <- w (1 - eta lam r / (1 - mu)) - eta p     (r = wd_ratio if projected, else 1)

    Choice documented here: the *update* p is projected and the momentum
    buffer is kept unprojected, as in the paper's Algorithm 1; the authors'
    code projects the buffer in place when Nesterov is off. The decay
    `eta lam r / (1 - mu)` follows the authors' code (it matches the decay an
    L2 term would reach through the momentum).

    Args:
        learning_rate, momentum (in [0, 1)), nesterov, weight_decay (>= 0),
        delta (> 0, default 0.1), wd_ratio (in [0, 1], default 0.1), epsilon (> 0).
        name: default None, a name unique in the session ("sgdp", "sgdp_1", ...).
    """

    _default_name = "sgdp"

    def __init__(self, learning_rate=0.1, momentum=0.9, nesterov=False, weight_decay=None, delta=0.1,
                 wd_ratio=0.1, epsilon=1e-8, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("momentum", momentum)
        check_positive_number("delta", delta)
        check_positive_number("epsilon", epsilon)
        if not (isinstance(wd_ratio, (int, float)) and 0.0 <= wd_ratio <= 1.0):
            raise ValueError(f"`wd_ratio` must be in [0, 1]. Received: wd_ratio={wd_ratio!r}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.delta, self.wd_ratio, self.epsilon = float(delta), float(wd_ratio), float(epsilon)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.convert_to_tensor(gradient)
        m = self._momentums[self._get_variable_index(variable)]
        new_m = self.momentum * ops.convert_to_tensor(m) + g
        self.assign(m, new_m)
        p = g + self.momentum * new_m if self.nesterov else new_m
        ratio = 1.0
        if len(variable.shape) > 1:
            p, projected = project(variable, g, p, self.delta, self.epsilon)
            ratio = 1.0 + (self.wd_ratio - 1.0) * projected
        lam = self.weight_decay_for(variable)
        step = lr * p
        if lam:
            step = step + ops.cast(lam * ratio / (1.0 - self.momentum), variable.dtype) * lr * ops.convert_to_tensor(variable)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov, delta=self.delta, wd_ratio=self.wd_ratio,
                      epsilon=self.epsilon)
        return config
