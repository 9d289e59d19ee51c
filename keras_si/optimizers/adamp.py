"""AdamP: Adam with the scale-invariant projection (Heo et al., ICLR 2021, arXiv:2006.08217)."""

import keras
from keras import ops

from keras_si.optimizers._projection import check_weight_decay_ratio, project
from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class AdamP(Optimizer):
    """Adam whose update loses its radial part on scale-invariant weights.

    "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
    Scale-invariant Weights", Heo, Chun, Oh, Han, Yun, Kim, Uh and Ha, ICLR
    2021 (https://arxiv.org/abs/2006.08217), Algorithm 2 (AdamP). With `t`
    the step (from 1), `g` the gradient, `lr` the learning rate, `lam` the
    weight decay:

    ```python
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g**2
    n = beta_1 * m + (1 - beta_1) * g if nesterov else m
    p = n / (sqrt(v / (1 - beta_2**t)) + epsilon)
    r = 1
    if w.ndim > 1 and w looks scale invariant:  # as in `SGDP`
        p = p - w_hat * dot(w_hat, p)           # w_hat = w / ||w||, per unit or whole
        r = weight_decay_ratio
    w = w - lr / (1 - beta_1**t) * p - lr * lam * r * w
    ```

    The decay is decoupled and multiplied by the learning rate (AdamW's, as
    Keras's `AdamW`), as in the authors' code. See `SGDP` for the cosine
    test that decides the projection (per output unit, then the whole
    tensor; vectors never).

    Args:
        learning_rate: a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no argument. Default 1e-3.
        beta_1: the decay of the first moment, in [0, 1). Default 0.9.
        beta_2: the decay of the second moment, in [0, 1). Default 0.999.
        epsilon: added to the denominator and to the norms of the
            projection, > 0. Default 1e-8, the authors' value (Keras's `Adam`
            defaults to 1e-7).
        weight_decay: the decay rate `lam >= 0`, or None (default) for none.
        delta: the threshold of the cosine test, > 0. Default 0.1 (the
            paper's).
        weight_decay_ratio: the factor in [0, 1] on the decay of projected
            weights. Default 0.1 (the paper's). The authors call it
            `wd_ratio`; Keras spells the decay out as `weight_decay`.
        nesterov: whether to use Nesterov momentum (the authors' option).
            Default False.
        name: default None, a name unique in the session ("adamp",
            "adamp_1", ...).
        **kwargs: the other arguments of `keras_si.optimizers.Optimizer`
            (`exclude_from_weight_decay`) and of `keras.optimizers.Optimizer`
            (`clipnorm`, `global_clipnorm`, `use_ema`, ...).

    Raises:
        ValueError: if an argument is out of its range (see
            `keras_si.optimizers.Optimizer` for the shared ones).

    Example:

    Adam's first step is `lr * sign(g)`; here `g` is almost orthogonal to the
    one-unit kernel `w`, so that step loses its part along `w`.

    >>> import keras
    >>> import keras_si
    >>> w = keras.Variable([[3.0], [4.0]])
    >>> g = keras.ops.convert_to_tensor([[4.1], [-2.9]])
    >>> keras_si.AdamP(learning_rate=0.1).apply([g], [w])
    >>> [round(float(v), 4) for v in w.numpy().ravel()]  # Keras's Adam: [2.9, 4.1]
    [2.888, 4.084]
    """

    _default_name = "adamp"

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=None, delta=0.1,
                 weight_decay_ratio=0.1, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("beta_1", beta_1)
        check_fraction("beta_2", beta_2)
        check_positive_number("epsilon", epsilon)
        check_positive_number("delta", delta)
        check_weight_decay_ratio(weight_decay_ratio)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.delta, self.weight_decay_ratio, self.nesterov = float(delta), float(weight_decay_ratio), bool(nesterov)

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
            ratio = 1.0 + (self.weight_decay_ratio - 1.0) * projected
        step = lr / bc1 * p
        lam = self.weight_decay_for(variable)
        if lam:
            step = step + lr * ops.cast(lam * ratio, dtype) * ops.convert_to_tensor(variable)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, delta=self.delta,
                      weight_decay_ratio=self.weight_decay_ratio, nesterov=self.nesterov)
        return config
