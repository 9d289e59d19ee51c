"""Callbacks that put keras_si optimizer diagnostics on the progress bar and in TensorBoard."""

import keras
import numpy as np

from keras_si.optimizers.sgd_clip import SGDClip


def find_optimizers(optimizer, cls=SGDClip):
    """All instances of `cls` inside `optimizer`.

    Looks through `LossScaleOptimizer` (which `compile` adds under
    `mixed_float16`) and `MultiOptimizer` (one sub-optimizer per variable group).
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
    """Logs SGDClip's per-step diagnostics into `logs`.

    For each `SGDClip` in the model's optimizer (also inside a
    `LossScaleOptimizer` or a `MultiOptimizer`) it adds, after every batch:

    - `weight_norm`: `||x||`, the global norm of the optimizer's variables;
    - `grad_norm`: `||g||`, the global norm of their (unclipped) gradient;
    - `clip_scale`: the factor `s` applied to the gradient (1 = not clipped);
    - `eff_lr`: the effective learning rate `eta_t / ||x||^2`;
    - `equilibrium_ratio`: `||g|| / (sqrt(2 lam / eta_t) ||x||)`, about 1 once
      the norm has settled (`clip_factor` is where clipping starts);

    and at the end of each epoch also `clip_rate` (the fraction of this
    epoch's steps that were clipped) and `skipped_steps` (steps skipped
    because the gradient was not finite, in total). With more than one
    SGDClip, names are prefixed by the optimizer's name.

    Keras passes the same `logs` to the callbacks in order and appends the
    progress bar last, so the values show on the progress bar; put this
    callback *before* `keras.callbacks.TensorBoard` in the list to get them
    in TensorBoard too (per epoch, or per batch with `update_freq`).

    Args:
        every_n_batches: read the optimizer every n batches (reading costs a
            small device-to-host copy per value).
    """

    def __init__(self, every_n_batches=1):
        super().__init__()
        if int(every_n_batches) < 1:
            raise ValueError(f"`every_n_batches` must be >= 1. Received: {every_n_batches!r}")
        self.every_n_batches = int(every_n_batches)
        self._start_counts = {}

    def _optimizers(self):
        opts = find_optimizers(self.model.optimizer)
        if not opts and not self.model.optimizer.built:
            # A MultiOptimizer with a routing callable knows its sub-optimizers
            # only once built (at the first step); look again then.
            return []
        if not opts:
            raise ValueError(
                "SGDClipMonitor found no keras_si.SGDClip in the model's optimizer "
                f"({type(self.model.optimizer).__name__})."
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
        lr = float(np.asarray(keras.ops.convert_to_numpy(opt._get_current_learning_rate())))
        values = {
            "weight_norm": x,
            "grad_norm": g,
            "clip_scale": float(opt.clip_scale.numpy()),
            "eff_lr": float(opt.effective_learning_rate.numpy()),
        }
        lam = float(opt.weight_decay or 0.0)
        if lam > 0 and lr > 0 and x > 0:
            values["equilibrium_ratio"] = g / (np.sqrt(2.0 * lam / lr) * x)
        return values

    def _counts(self, opt):
        if not opt.built:
            return 0.0, 0.0, 0.0
        return (
            float(opt.clipped_steps.numpy()),
            float(opt.skipped_steps.numpy()),
            float(keras.ops.convert_to_numpy(opt._iterations)),
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
        return {"every_n_batches": self.every_n_batches}
