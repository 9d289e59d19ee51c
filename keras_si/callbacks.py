"""Callbacks that put keras_si optimizer diagnostics on the progress bar and in TensorBoard."""

import numbers

import keras
import numpy as np

from keras_si.optimizers.sgd_clip import SGDClip

__all__ = ["SGDClipMonitor", "find_optimizers"]


def find_optimizers(optimizer, cls=SGDClip):
    """All instances of `cls` in `optimizer`, looking inside the optimizers that wrap others.

    Looks through `keras.optimizers.LossScaleOptimizer` (which `compile` adds
    under `mixed_float16`), `keras_si.AGC` (any optimizer with an
    `inner_optimizer`) and `keras.optimizers.MultiOptimizer` (one
    sub-optimizer per variable group; one with a routing callable lists its
    sub-optimizers only once built).

    Args:
        optimizer: a Keras optimizer.
        cls: the class (or tuple of classes) looked for. Default `SGDClip`.

    Returns:
        A list of the instances found, outermost first; empty if none.

    Example:

    >>> import keras
    >>> import keras_si
    >>> sgd_clip = keras_si.SGDClip()
    >>> wrapped = keras.optimizers.LossScaleOptimizer(sgd_clip)
    >>> keras_si.callbacks.find_optimizers(wrapped) == [sgd_clip]
    True
    """
    found = []
    stack = [optimizer]
    while stack:
        opt = stack.pop(0)
        if isinstance(opt, cls):
            found.append(opt)
        inner = getattr(opt, "inner_optimizer", None)
        if inner is not None:
            stack.append(inner)
        if isinstance(opt, keras.optimizers.MultiOptimizer):
            stack.extend(opt.optimizers)
    return found


@keras.saving.register_keras_serializable(package="keras_si")
class SGDClipMonitor(keras.callbacks.Callback):
    """Logs `SGDClip`'s per-step diagnostics into `logs` (progress bar, TensorBoard, History).

    For each `SGDClip` in the model's optimizer (also inside a
    `LossScaleOptimizer`, an `AGC` or a `MultiOptimizer`) it adds, after
    every `every_n_batches`-th batch, the values of the step just taken:

    - `weight_norm`: `||x||`, the global norm of the optimizer's variables
      before the step;
    - `grad_norm`: `||g||`, the global norm of their (unclipped) gradient;
    - `clip_scale`: the factor `s` applied to the gradient (1 = not clipped);
    - `effective_learning_rate`: `eta_t / ||x||^2`, the step size a
      scale-invariant loss actually sees (the optimizer variable of the same
      name);
    - `equilibrium_ratio`: `||g|| / (sqrt(2 lam / eta_t) ||x||)`, about 1 once
      the norm has settled (clipping starts at `clip_factor`); left out when
      `weight_decay`, `eta_t` or `||x||` is 0;

    and at the end of each epoch the same values plus `clip_rate` (the
    fraction of this epoch's steps that were clipped) and `skipped_steps`
    (steps skipped because the gradient was not finite, since the optimizer
    was created). With more than one SGDClip, each name is prefixed by the
    optimizer's name ("encoder_sgdclip/weight_norm").

    Keras passes the same `logs` to the callbacks in order and appends the
    progress bar last, so the values show on the progress bar; put this
    callback *before* `keras.callbacks.TensorBoard` in the list to get them
    in TensorBoard too (per epoch, or per batch with `update_freq`).

    Args:
        every_n_batches: an int >= 1 (default 1): read the optimizer after
            every n-th batch (each read is a small device-to-host copy per
            value). The epoch-end values are always written.

    Raises:
        ValueError: at construction if `every_n_batches` is not an int >= 1;
            during `fit` if the model's optimizer holds no `SGDClip` once
            built.

    Example:

    >>> import keras
    >>> import keras_si
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="ones")])
    >>> model.compile(optimizer=keras_si.SGDClip(learning_rate=0.1, weight_decay=0.01), loss="mse")
    >>> monitor = keras_si.SGDClipMonitor()
    >>> monitor.set_model(model)  # `fit(..., callbacks=[monitor])` does this
    >>> grads = [keras.ops.ones((2, 1)), keras.ops.zeros((1,))]
    >>> model.optimizer.apply(grads, model.trainable_variables)
    >>> logs = {}
    >>> monitor.on_train_batch_end(0, logs)
    >>> sorted(logs)
    ['clip_scale', 'effective_learning_rate', 'equilibrium_ratio', 'grad_norm', 'weight_norm']
    >>> round(logs["effective_learning_rate"], 4)  # 0.1 / ||x||^2 with ||x||^2 = 2
    0.05
    """

    def __init__(self, every_n_batches=1):
        super().__init__()
        # NumPy integers and whole floats (2.0) pass; 1.5 or True do not (int() would truncate them).
        integral = isinstance(every_n_batches, numbers.Real) and not isinstance(every_n_batches, bool)
        integral = integral and float(every_n_batches).is_integer()
        if not integral or every_n_batches < 1:
            raise ValueError(f"`every_n_batches` must be an int >= 1. Received: every_n_batches={every_n_batches!r}")
        self.every_n_batches = int(every_n_batches)
        self._start_counts = {}

    def _optimizers(self):
        opts = find_optimizers(self.model.optimizer)
        if not opts and not self.model.optimizer.built:
            # A MultiOptimizer with a routing callable knows its sub-optimizers
            # only once built (at the first step); look again then.
            return []
        if not opts:
            hint = ""
            if isinstance(self.model.optimizer, keras.optimizers.MultiOptimizer):
                # A MultiOptimizer lists only the sub-optimizers some variable was routed to.
                paths = [v.path for v in self.model.trainable_variables[:3]]
                hint = (f": no variable reached an SGDClip; check the routing against the variable paths "
                        f"(e.g. {paths}), or use keras_si.scale_invariant_optimizer")
            raise ValueError(
                "SGDClipMonitor found no keras_si.SGDClip in the model's optimizer "
                f"({type(self.model.optimizer).__name__}){hint}."
            )
        return opts

    @staticmethod
    def _key(opt, name, many):
        return f"{opt.name}/{name}" if many else name

    def _step_values(self, opt):
        if not opt.built:
            return {}
        x = float(opt.weight_norm.numpy())
        g = float(opt.grad_norm.numpy())
        # float() of the tensor: `convert_to_numpy` warns under NumPy 2 on TensorFlow (np.array without `copy`).
        lr = float(keras.ops.convert_to_tensor(opt._get_current_learning_rate()))
        values = {
            "weight_norm": x,
            "grad_norm": g,
            "clip_scale": float(opt.clip_scale.numpy()),
            "effective_learning_rate": float(opt.effective_learning_rate.numpy()),
        }
        lam = float(opt.weight_decay or 0.0)
        if lam > 0 and lr > 0 and x > 0:
            values["equilibrium_ratio"] = float(g / (np.sqrt(2.0 * lam / lr) * x))
        return values

    def _counts(self, opt):
        if not opt.built:
            return 0.0, 0.0, 0.0
        return (
            float(opt.clipped_steps.numpy()),
            float(opt.skipped_steps.numpy()),
            float(opt._iterations.numpy()),
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._start_counts = {id(o): self._counts(o) for o in self._optimizers()}

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or (batch + 1) % self.every_n_batches:
            return
        opts = self._optimizers()
        for opt in opts:
            for name, value in self._step_values(opt).items():
                logs[self._key(opt, name, len(opts) > 1)] = value

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        opts = self._optimizers()
        for opt in opts:
            clipped, skipped, steps = self._counts(opt)
            c0, _, s0 = self._start_counts.get(id(opt), (0.0, 0.0, 0.0))
            many = len(opts) > 1
            for name, value in self._step_values(opt).items():
                logs[self._key(opt, name, many)] = value
            logs[self._key(opt, "clip_rate", many)] = (clipped - c0) / max(steps - s0, 1.0)
            logs[self._key(opt, "skipped_steps", many)] = skipped

    def get_config(self):
        """The constructor's arguments, `{"every_n_batches": n}`."""
        return {"every_n_batches": self.every_n_batches}

    @classmethod
    def from_config(cls, config):
        """A monitor from `get_config()`'s dict (Keras's `Callback` has no `from_config` to inherit).

        Args:
            config: a dict as returned by `get_config()`.

        Returns:
            A new `SGDClipMonitor`.
        """
        return cls(**config)
