"""RAdam: Adam with the variance of the adaptive learning rate rectified (Liu et al., ICLR 2020, arXiv:1908.03265)."""

import keras
from keras import ops

from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class RAdam(Optimizer):
    """Rectified Adam: Adam whose adaptive step is scaled down while its variance is large.

    "On the Variance of the Adaptive Learning Rate and Beyond", Liu, Jiang,
    He, Chen, Liu, Gao and Han, ICLR 2020 (https://arxiv.org/abs/1908.03265),
    Algorithm 2. With `t` the step (from 1), `g` the gradient, `lr` the
    learning rate and `lam` the weight decay:

    ```python
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g**2
    m_hat = m / (1 - beta_1**t)
    rho_inf = 2 / (1 - beta_2) - 1
    rho_t = rho_inf - 2 * t * beta_2**t / (1 - beta_2**t)
    if rho_t > threshold:  # the adaptive rate's variance is tractable
        r = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        step = r * m_hat * sqrt(1 - beta_2**t) / (sqrt(v) + epsilon)
    else:                  # an un-adapted momentum step
        step = m_hat
    w = w - lr * (step + lam * w)
    ```

    The default `threshold` 5 and the placement of `epsilon` follow the
    authors' code (LiyuanLucasLiu/RAdam) and optax's `radam`; the paper's
    Algorithm 2 writes `rho_t > 4`. The warm-up that RAdam replaces is
    therefore built in: `rho_t` grows from 1 at the first step towards
    `rho_inf`, so with the defaults the first 5 steps are momentum steps
    (`rho_5 = 4.996`), and a larger `threshold` lengthens that phase.

    Args:
        learning_rate: a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no argument. Default 1e-3.
        beta_1: the decay of the first moment, in [0, 1). Default 0.9.
        beta_2: the decay of the second moment, in [0, 1). Default 0.999.
        epsilon: added to `sqrt(v)`, > 0. Default 1e-8, the authors' value
            (Keras's `Adam` defaults to 1e-7).
        threshold: the rectification threshold on `rho_t`, a finite number
            >= 4 (the rectification term `r` is real only for `rho_t >= 4`).
            Default 5.0. The name is optax's (TensorFlow Addons called it
            `sma_threshold`). A threshold >= `rho_inf` never rectifies: every
            step is a momentum step.
        weight_decay: decoupled decay `lam >= 0` (AdamW's, as Keras's `AdamW`:
            `w <- w - lr * lam * w`), or None (default).
        name: default None, a name unique in the session ("radam",
            "radam_1", ...).
        **kwargs: the other arguments of `keras_si.optimizers.Optimizer`
            (`exclude_from_weight_decay`) and of `keras.optimizers.Optimizer`
            (`clipnorm`, `global_clipnorm`, `use_ema`, ...).

    Raises:
        ValueError: if an argument is out of its range (see
            `keras_si.optimizers.Optimizer` for the shared ones).

    Example:

    The first steps are momentum steps: the first one is `w - lr * g`.

    >>> import keras
    >>> import keras_si
    >>> w = keras.Variable([1.0, 2.0])
    >>> opt = keras_si.RAdam(learning_rate=0.1)
    >>> opt.apply([keras.ops.convert_to_tensor([0.5, -1.0])], [w])
    >>> [round(float(v), 4) for v in w.numpy()]
    [0.95, 2.1]
    """

    _default_name = "radam"

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, threshold=5.0,
                 weight_decay=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("beta_1", beta_1)
        check_fraction("beta_2", beta_2)
        check_positive_number("epsilon", epsilon)
        check_positive_number("threshold", threshold)
        if threshold < 4.0:
            raise ValueError(
                "`threshold` must be >= 4: the rectification term sqrt((rho_t - 4)(rho_t - 2) ...) is real "
                f"only for rho_t >= 4. Received: threshold={threshold!r}"
            )
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.threshold = float(threshold)

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
        # rho_t >= 1 for t >= 1 and threshold >= 4: the max() only matters on the branch `where` discards.
        rect = ops.sqrt(ops.maximum((rho_t - 4.0) * (rho_t - 2.0) * rho_inf, 0.0)
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        m, v = self._m[index], self._v[index]
        new_m = b1 * ops.convert_to_tensor(m) + (1.0 - b1) * g
        new_v = b2 * ops.convert_to_tensor(v) + (1.0 - b2) * ops.square(g)
        self.assign(m, new_m)
        self.assign(v, new_v)
        m_hat = new_m / ops.cast(1.0 - b1_t, dtype)
        adaptive = ops.cast(rect * ops.sqrt(1.0 - b2_t), dtype) * m_hat / (ops.sqrt(new_v) + self.epsilon)
        step = ops.where(rho_t > self.threshold, adaptive, m_hat)
        lam = self.weight_decay_for(variable)
        if lam:
            step = step + lam * ops.convert_to_tensor(variable)
        self.assign_sub(variable, lr * step)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, threshold=self.threshold)
        return config
