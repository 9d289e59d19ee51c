"""AdamP: Adam with the scale-invariant projection (Heo et al., ICLR 2021)."""

import keras
from keras import ops

from keras_si.optimizers._projection import project
from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class AdamP(Optimizer):
    """Adam whose update is projected on scale-invariant weights.

    "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
    Scale-invariant Weights", Heo et al., ICLR 2021, Algorithm 2 (AdamP):

        m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2
        p  = m / (sqrt(v / (1 - b2^t)) + eps)        (Nesterov: (b1 m + (1 - b1) g) instead of m)
        if w has > 1 dimension and looks scale invariant (see `_projection`):
            p <- p - (w_hat . p) w_hat,   decay scaled by wd_ratio
        w <- w (1 - eta lam r) - eta / (1 - b1^t) p    (r = wd_ratio if projected, else 1)

    The decay is decoupled and multiplied by the learning rate (AdamW), as in
    the authors' code.

    Args:
        learning_rate, beta_1, beta_2 (in [0, 1)), epsilon (> 0), weight_decay (>= 0),
        delta (> 0, default 0.1), wd_ratio (in [0, 1], default 0.1), nesterov.
        name: default None, a name unique in the session ("adamp", "adamp_1", ...).
    """

    _default_name = "adamp"

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=None, delta=0.1,
                 wd_ratio=0.1, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("beta_1", beta_1)
        check_fraction("beta_2", beta_2)
        check_positive_number("epsilon", epsilon)
        check_positive_number("delta", delta)
        if not (isinstance(wd_ratio, (int, float)) and 0.0 <= wd_ratio <= 1.0):
            raise ValueError(f"`wd_ratio` must be in [0, 1]. Received: wd_ratio={wd_ratio!r}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.delta, self.wd_ratio, self.nesterov = float(delta), float(wd_ratio), bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._m, self._v = self.add_optimizer_variables(variables, ["m", "v"])

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(ops.convert_to_tensor(gradient), dtype)
        t = ops.cast(self.iterations + 1, "float32")
        bc1 = ops.cast(1.0 - ops.power(self.beta_1, t), dtype)
        bc2 = ops.cast(1.0 - ops.power(self.beta_2, t), dtype)
        m, v = self._m[index], self._v[index]
        new_m = self.beta_1 * ops.convert_to_tensor(m) + (1.0 - self.beta_1) * g
        new_v = self.beta_2 * ops.convert_to_tensor(v) + (1.0 - self.beta_2) * ops.square(g)
        self.assign(m, new_m)
        self.assign(v, new_v)
        denom = ops.sqrt(new_v) / ops.sqrt(bc2) + self.epsilon
        numerator = self.beta_1 * new_m + (1.0 - self.beta_1) * g if self.nesterov else new_m
        p = numerator / denom
        ratio = 1.0
        if len(variable.shape) > 1:
            p, projected = project(variable, g, p, self.delta, self.epsilon)
            ratio = 1.0 + (self.wd_ratio - 1.0) * projected
        step = lr / bc1 * p
        lam = self.weight_decay_for(variable)
        if lam:
            step = step + lr * ops.cast(lam * ratio, dtype) * ops.convert_to_tensor(variable)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, delta=self.delta,
                      wd_ratio=self.wd_ratio, nesterov=self.nesterov)
        return config
