"""SGDP: SGD with momentum and the scale-invariant projection (Heo et al., ICLR 2021, arXiv:2006.08217)."""

import keras
from keras import ops

from keras_si.optimizers._projection import check_weight_decay_ratio, project
from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number


@keras.saving.register_keras_serializable(package="keras_si")
class SGDP(Optimizer):
    """SGD with momentum whose update loses its radial part on scale-invariant weights.

    "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
    Scale-invariant Weights", Heo, Chun, Oh, Han, Yun, Kim, Uh and Ha, ICLR
    2021 (https://arxiv.org/abs/2006.08217), Algorithm 1 (SGDP). On a weight
    followed by a normalization, the loss does not change with the weight's
    norm, but momentum grows the norm, which shrinks the effective step
    size; SGDP removes the component of the update along the weight where
    the weight looks scale invariant. With `g` the gradient, `lr` the
    learning rate, `lam` the weight decay:

    ```python
    m = momentum * m + g
    p = g + momentum * m if nesterov else m
    r = 1
    if w.ndim > 1 and w looks scale invariant:  # see below
        p = p - w_hat * dot(w_hat, p)           # w_hat = w / ||w||, per unit or whole
        r = weight_decay_ratio
    w = w - lr * p - lr * lam * r / (1 - momentum) * w
    ```

    "Looks scale invariant": the cosine between the weight and its gradient
    is below `delta / sqrt(size)`, first tested per output unit (`max_k
    |cos(w_k, g_k)| < delta / sqrt(fan_in)`: units as
    `keras_si.optimizers.unit_axes` gives them, e.g. the last axis of a Dense
    kernel), then for the whole tensor; vectors (biases, gains) are never
    projected. Everything is computed with `where`, so the step compiles
    (XLA) without a data-dependent branch.

    Choices documented here: the *update* `p` is projected and the momentum
    buffer is kept unprojected, as in the paper's Algorithm 1 (the authors'
    code projects the buffer in place when Nesterov is off). The decay
    `lr * lam * r / (1 - momentum)` follows the authors' code (it is the
    decay an L2 term would reach through the momentum); Keras's `SGD` decays
    by `lr * lam`.

    Args:
        learning_rate: a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no argument. Default 0.1.
        momentum: in [0, 1). Default 0.9 (Keras's `SGD`: 0).
        nesterov: whether to use Nesterov momentum. Default False.
        weight_decay: the decay rate `lam >= 0`, or None (default) for none.
        delta: the threshold of the cosine test, > 0. Default 0.1 (the
            paper's). Larger projects more weights.
        weight_decay_ratio: the factor in [0, 1] on the decay of projected
            weights. Default 0.1 (the paper's). The authors call it
            `wd_ratio`; Keras spells the decay out as `weight_decay`.
        epsilon: added to the norms in the cosine test and the projection,
            > 0. Default 1e-8.
        name: default None, a name unique in the session ("sgdp", "sgdp_1",
            ...).
        **kwargs: the other arguments of `keras_si.optimizers.Optimizer`
            (`exclude_from_weight_decay`) and of `keras.optimizers.Optimizer`
            (`clipnorm`, `global_clipnorm`, `use_ema`, ...).

    Raises:
        ValueError: if an argument is out of its range (see
            `keras_si.optimizers.Optimizer` for the shared ones).

    Example:

    A kernel of one unit and a gradient almost orthogonal to it (cosine
    0.028 < 0.1 / sqrt(2)): the radial part of the step is removed.

    >>> import keras
    >>> import keras_si
    >>> w = keras.Variable([[3.0], [4.0]])
    >>> g = keras.ops.convert_to_tensor([[4.1], [-2.9]])
    >>> keras_si.SGDP(learning_rate=0.1).apply([g], [w])
    >>> [round(float(v), 4) for v in w.numpy().ravel()]  # Keras's SGD: [2.59, 4.29]
    [2.5984, 4.3012]
    >>> step = [[3.0], [4.0]] - w.numpy()
    >>> bool(abs(3 * step[0, 0] + 4 * step[1, 0]) < 1e-5)  # orthogonal to w
    True
    """

    _default_name = "sgdp"

    def __init__(self, learning_rate=0.1, momentum=0.9, nesterov=False, weight_decay=None, delta=0.1,
                 weight_decay_ratio=0.1, epsilon=1e-8, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        check_fraction("momentum", momentum)
        check_positive_number("delta", delta)
        check_positive_number("epsilon", epsilon)
        check_weight_decay_ratio(weight_decay_ratio)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.delta, self.weight_decay_ratio, self.epsilon = float(delta), float(weight_decay_ratio), float(epsilon)

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
            ratio = 1.0 + (self.weight_decay_ratio - 1.0) * projected
        lam = self.weight_decay_for(variable)
        step = lr * p
        if lam:
            decay = ops.cast(lam * ratio / (1.0 - self.momentum), variable.dtype) * lr
            step = step + decay * ops.convert_to_tensor(variable)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov, delta=self.delta,
                      weight_decay_ratio=self.weight_decay_ratio, epsilon=self.epsilon)
        return config
