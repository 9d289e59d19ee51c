"""RAdam: Adam with the variance of the adaptive learning rate rectified (Liu et al., ICLR 2020)."""

import keras
from keras import ops

from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class RAdam(Optimizer):
    """Rectified Adam.

    "On the Variance of the Adaptive Learning Rate and Beyond", Liu, Jiang,
    He, Chen, Liu, Gao and Han, ICLR 2020, Algorithm 2. At step t:

        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
        rho_inf = 2 / (1 - b2) - 1
        rho_t   = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t > 5:   (the variance of the adaptive rate is tractable)
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            w <- w - eta r m / (1 - b1^t) * sqrt(1 - b2^t) / (sqrt(v) + eps)
        else:           (un-adapted momentum step)
            w <- w - eta m / (1 - b1^t)

    The threshold 5 and the placement of eps follow the authors' code
    (LiyuanLucasLiu/RAdam); the paper's Algorithm 2 writes rho_t > 4. The
    warm-up it replaces is therefore built in: the first steps (4 with the
    default b2 = 0.999... up to t = 5) are plain momentum steps.
    `weight_decay` is decoupled (AdamW style, `w <- w - eta lam w`).

    Args:
        learning_rate, beta_1, beta_2, epsilon: as Adam.
        weight_decay: decoupled decay lam >= 0.
        name: default None, a name unique in the session ("radam", "radam_1", ...).
    """

    _default_name = "radam"

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=None,
                 name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("beta_1", beta_1)
        check_fraction("beta_2", beta_2)
        check_positive_number("epsilon", epsilon)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

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
        b1, b2 = self.beta_1, self.beta_2
        b1_t, b2_t = ops.power(b1, t), ops.power(b2, t)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2_t / (1.0 - b2_t)
        # rho_t >= 1 for t >= 1; the max() only matters on the branch `where` discards.
        rect = ops.sqrt(ops.maximum((rho_t - 4.0) * (rho_t - 2.0) * rho_inf, 0.0)
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        m, v = self._m[index], self._v[index]
        new_m = b1 * ops.convert_to_tensor(m) + (1.0 - b1) * g
        new_v = b2 * ops.convert_to_tensor(v) + (1.0 - b2) * ops.square(g)
        self.assign(m, new_m)
        self.assign(v, new_v)
        m_hat = new_m / ops.cast(1.0 - b1_t, dtype)
        adaptive = ops.cast(rect * ops.sqrt(1.0 - b2_t), dtype) * m_hat / (ops.sqrt(new_v) + self.epsilon)
        step = ops.where(rho_t > 5.0, adaptive, m_hat)
        lam = self.weight_decay_for(variable)
        if lam:
            step = step + lam * ops.convert_to_tensor(variable)
        self.assign_sub(variable, lr * step)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
