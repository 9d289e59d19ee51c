"""SGDClip: SGD + weight decay + relative global clipping (Li et al., ICML 2022)."""

import keras
from keras import ops

from keras_si.optimizers import _norms
from keras_si.optimizers.base import Optimizer, check_fraction, check_positive_number, concrete_scalar

# Guards the division by the gradient norm when the gradient is exactly 0.
_TINY = 1e-30


@keras.saving.register_keras_serializable(package="keras_si")
class SGDClip(Optimizer):
    """SGD with weight decay and relative global gradient clipping.

    Algorithm 1 ("sqrt(C)-clipped SGD + WD") of *Robust Training of Neural
    Networks Using Scale Invariant Architectures*, Li, Bhojanapalli, Zaheer,
    Reddi and Kumar, ICML 2022 (https://arxiv.org/abs/2202.00980).

    With `x` all the variables this optimizer updates (one group), `g` their
    gradients on the global batch, `eta_t` the learning rate at this step,
    `lam` the weight decay and `k` the `clip_factor` (the paper's sqrt(C)):

    ```python
    threshold = k * sqrt(2 * lam / eta_t) * ||x||
    s = min(1, threshold / max(||g||, tiny))
    x = (1 - eta_t * lam) * x - eta_t * s * g
    ```

    `||.||` is the global L2 norm over the whole group, taken before the
    update; the decay is never clipped. `sqrt(2 lam / eta) ||x||` is the
    gradient norm at which SGD + weight decay keeps `||x||` at equilibrium on a
    scale-invariant loss, so the clip only cuts gradients more than `k` times
    larger than that: rare spikes (about 1.5% of the paper's BERT steps).

    Use it on the scale-invariant part of a model (e.g. the SIBERT encoder;
    route the rest to another optimizer with `keras.optimizers.MultiOptimizer`:
    the norms are then over this optimizer's variables only). Without momentum
    it keeps no per-variable state: the memory is the parameters alone.

    After every step the optimizer holds these float32 diagnostics (optimizer
    variables, saved with it; `keras_si.callbacks.SGDClipMonitor` logs them):
    `weight_norm` (`||x||`), `grad_norm` (`||g||`), `clip_scale` (`s`),
    `clipped` (1.0 if `s < 1`), `effective_learning_rate` (`eta_t / ||x||^2`),
    and the counters `clipped_steps` and `skipped_steps`.

    Weights whose global norm is exactly 0 (e.g. a group of zero-initialised
    biases alone) can never move with clipping on: the threshold is then 0,
    so every gradient is clipped to nothing and the decay of 0 is 0. The first
    step raises a ValueError instead of training nothing silently. The check
    is done in Python on the values the first step starts from (read eagerly
    when the step is traced), so it adds nothing to the compiled step, as an
    in-graph assertion would (XLA cannot raise); weights set to 0 later show
    as `weight_norm == 0` and `clip_scale == 0` in the diagnostics. On JAX,
    whose trainer runs the step inside `jax.jit`, the check runs only where
    the step runs eagerly (`optimizer.apply` outside `jit`).

    A step whose gradient norm is not finite (inf or NaN) is skipped: the
    weights (and momentum) stay as they are, no decay is applied, and
    `skipped_steps` grows by one. With `LossScaleOptimizer` such steps never
    reach this optimizer (the loss scale is lowered instead), and the clip sees
    unscaled gradients.

    Args:
        learning_rate: `eta`, a float > 0, a
            `keras.optimizers.schedules.LearningRateSchedule` (evaluated at
            every step; the threshold uses the current value) or a callable
            taking no argument. Default 8e-4, the paper's BERT value (divided
            by 10 at 60% and 90% of training there).
        weight_decay: `lam >= 0`, decoupled as in Keras (default 1e-2, the
            paper's). Must be > 0 when clipping.
        clip_factor: `k > 0`, the paper's sqrt(C) (default 2.0), or None for
            plain SGD + weight decay (the diagnostics are still computed).
            Not Keras's `clipnorm`: the threshold is relative to the weight
            norm and the learning rate, not a fixed norm.
        momentum: heavy-ball momentum `mu` in [0, 1) applied to the clipped
            gradient (`m <- mu m + s g`, `x <- (1 - eta lam) x - eta m`).
            Default 0, as Keras's `SGD`. Not part of the paper's algorithm or
            theory; it costs one slot variable per weight.
        exclude_from_weight_decay: None (default), a regular expression or a
            list of them searched in `variable.path` (Keras's method of the
            same name searches the backend's variable name; see
            `keras_si.optimizers.Optimizer`); matching variables are not
            decayed (they still count in `||x||`).
        name: default None, a name unique in the session ("sgd_clip",
            "sgd_clip_1", ...).
        **kwargs: other `keras.optimizers.Optimizer` arguments (`use_ema`,
            `gradient_accumulation_steps`, `loss_scale_factor`, ...).
            `clipnorm`, `clipvalue` and `global_clipnorm` are rejected: the
            relative clip replaces them.

    Raises:
        ValueError: for an argument out of range, for `clipnorm`, `clipvalue`
            or `global_clipnorm`, for clipping without weight decay, and at
            the first step if clipping is on and the weights' global norm is
            0 (see above).

    Example:

    `||x|| = 5`, `||g|| = 50`; the threshold is `1 * sqrt(2 * 0.05 / 0.1) * 5 = 5`,
    so the gradient is scaled by `s = 0.1`:

    >>> import keras
    >>> import keras_si
    >>> x = keras.Variable([3.0, 4.0])
    >>> opt = keras_si.SGDClip(learning_rate=0.1, weight_decay=0.05, clip_factor=1.0)
    >>> opt.apply([keras.ops.convert_to_tensor([30.0, 40.0])], [x])
    >>> round(float(opt.clip_scale.numpy()), 4)
    0.1
    >>> [round(float(v), 4) for v in x.numpy()]  # 0.995 x - 0.1 * 0.1 g
    [2.685, 3.58]
    """

    _default_name = "sgd_clip"

    def __init__(
        self,
        learning_rate=8e-4,
        weight_decay=1e-2,
        clip_factor=2.0,
        momentum=0.0,
        exclude_from_weight_decay=None,
        name=None,
        **kwargs,
    ):
        for arg in ("clipnorm", "clipvalue", "global_clipnorm"):
            if kwargs.get(arg) is not None:
                raise ValueError(
                    f"SGDClip does not take `{arg}`: it clips the global gradient norm "
                    "relative to the weight norm (`clip_factor`). Received "
                    f"{arg}={kwargs[arg]!r}."
                )
            kwargs.pop(arg, None)
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
            name=name,
            **kwargs,
        )
        check_positive_number("clip_factor", clip_factor, allow_none=True)
        if clip_factor is not None and not weight_decay:
            raise ValueError(
                "SGDClip with clipping on needs `weight_decay` > 0: the threshold "
                "clip_factor * sqrt(2 * weight_decay / learning_rate) * ||x|| would be 0. "
                f"Received weight_decay={weight_decay!r}, clip_factor={clip_factor!r}; "
                "pass clip_factor=None for unclipped SGD."
            )
        check_fraction("momentum", momentum)
        self.clip_factor = None if clip_factor is None else float(clip_factor)
        self.momentum = float(momentum)
        # The zero-norm check runs once, at the first step (see the docstring).
        self._zero_norm_checked = False

    def _keeps_sparse_gradients(self):
        # Without momentum a step on an embedding gradient touches only the
        # looked-up rows (plus the decay of every row, see `update_step`);
        # the momentum buffer is dense, so then the gradient is densified.
        return not self.momentum

    def _check_weights_not_all_zero(self, variables):
        if self.clip_factor is None:
            self._zero_norm_checked = True
            return
        x_norm = concrete_scalar(lambda: _norms.global_norm(variables))
        # Marked done only once passed: a second `fit` on the same zeros raises again.
        self._zero_norm_checked = x_norm != 0.0
        if x_norm == 0.0:
            raise ValueError(
                f"SGDClip {self.name!r}: the {len(variables)} variable(s) it updates are all "
                "zero (global norm ||x|| = 0), so the clipping threshold clip_factor * "
                "sqrt(2 * weight_decay / learning_rate) * ||x|| is 0 and they can never "
                "move. Initialise them with non-zero values (or put them in a group with "
                "variables that are), or pass clip_factor=None. Variables: "
                + ", ".join(getattr(v, "path", v.name) for v in variables[:5])
                + (", ..." if len(variables) > 5 else "")
            )

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._momentums = (
            self.add_optimizer_variables(variables, "momentum") if self.momentum else []
        )

        def scalar(name):
            return self.add_variable(
                shape=(), dtype="float32", name=name, aggregation="only_first_replica"
            )

        self.weight_norm = scalar("weight_norm")
        self.grad_norm = scalar("grad_norm")
        self.clip_scale = scalar("clip_scale")
        self.clipped = scalar("clipped")
        self.effective_learning_rate = scalar("effective_learning_rate")
        self.clipped_steps = scalar("clipped_steps")
        self.skipped_steps = scalar("skipped_steps")
        # 1.0 if this step's gradient was finite (read back by `update_step`).
        self._step_ok = scalar("step_ok")

    def transform_gradients(self, grads, variables, learning_rate):
        if not self._zero_norm_checked:
            self._check_weights_not_all_zero(variables)
        lr = ops.cast(learning_rate, "float32")
        x_norm = _norms.global_norm(variables)
        g_norm = _norms.global_norm(grads)
        finite = ops.isfinite(g_norm)
        if self.clip_factor is None:
            scale = ops.ones((), "float32")
        else:
            lam = float(self.weight_decay)
            # eta_t <= 0 (e.g. the first step of a warm-up from 0) moves
            # nothing, so no clip is needed: threshold = inf.
            ratio = ops.sqrt(2.0 * lam / ops.maximum(lr, _TINY))
            threshold = ops.where(lr > 0, self.clip_factor * ratio * x_norm, float("inf"))
            scale = ops.minimum(1.0, threshold / ops.maximum(g_norm, _TINY))
        scale = ops.where(finite, scale, 0.0)
        clipped = ops.cast(ops.logical_and(finite, scale < 1.0), "float32")
        ok = ops.cast(finite, "float32")

        self.weight_norm.assign(x_norm)
        self.grad_norm.assign(g_norm)
        self.clip_scale.assign(scale)
        self.clipped.assign(clipped)
        self.effective_learning_rate.assign(lr / ops.maximum(ops.square(x_norm), _TINY))
        self.clipped_steps.assign_add(clipped)
        self.skipped_steps.assign_add(1.0 - ok)
        self._step_ok.assign(ok)

        def clip(g):
            s = ops.cast(scale, g.dtype)
            # `where`, not a product: 0 * NaN would still write NaN.
            return ops.where(finite, g * s, ops.zeros_like(g))

        return [None if g is None else _norms.map_values(clip, g) for g in grads]

    def update_step(self, gradient, variable, learning_rate):
        ok = ops.cast(self._step_ok, variable.dtype)
        # A skipped step (ok == 0) moves nothing: no decay, no momentum step.
        lr = ok * ops.cast(learning_rate, variable.dtype)
        decay = lr * self.weight_decay_for(variable)
        step = gradient
        if self.momentum:
            m = self._momentums[self._get_variable_index(variable)]
            mu = ops.cast(self.momentum, variable.dtype)
            # (Variables go through convert_to_tensor: new JAX rejects them in `where`.)
            m_value = ops.convert_to_tensor(m)
            step = ops.where(ok > 0, m_value * mu + ops.convert_to_tensor(gradient), m_value)
            self.assign(m, step)
        if _norms.is_sparse(step):
            # Embedding gradients: decay every row, step only the looked-up ones.
            self.assign_sub(variable, variable * decay)
            self.assign_sub(variable, _norms.map_values(lambda g: lr * g, step))
        else:
            # One fused pass: x <- x - (eta lam x + eta s g).
            self.assign_sub(variable, variable * decay + lr * step)

    def get_config(self):
        config = super().get_config()
        config.update({"clip_factor": self.clip_factor, "momentum": self.momentum})
        return config
