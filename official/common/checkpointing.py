"""Checkpoints every N steps with a retention limit, and resume after a crash.

`tf.train.CheckpointManager` writes a checkpoint's files first and then
switches the `checkpoint` state file to it with an atomic rename, so a run
killed while saving (even with SIGKILL) still finds the previous checkpoint
intact: write, then switch.

Training is organised in "epochs" of `steps_per_epoch` steps and a
checkpoint is written at the end of each, so a restored run restarts exactly
at an epoch boundary: `initial_epoch = restored_step // steps_per_epoch`.
"""

import os

import keras
import tensorflow as tf


def make_checkpoint(model):
    """A `tf.train.Checkpoint` of all the model's and its optimizer's state.

    Saved as two flat, ordered lists: `model.variables` (weights and the
    dropout seed generators' states, so a resumed run draws the same dropout
    masks) and `optimizer.variables` (with a `MultiOptimizer`, every
    sub-optimizer's slots and counters, which the object graph of
    `tf.train.Checkpoint(optimizer=...)` does not reach in Keras 3.15). Both
    orders are fixed by the model's construction.
    """
    if model.optimizer is not None and not model.optimizer.built:
        # Build the slots now so that restoring fills them (not a deferred restore).
        model.optimizer.build(model.trainable_variables)
    return tf.train.Checkpoint(model_variables=list(model.variables),
                               optimizer_variables=list(model.optimizer.variables))


class CheckpointManager:
    """Saves and restores `make_checkpoint(model)` under `directory`.

    Args:
        model: a compiled Keras model.
        directory: where checkpoints go (a local path or gs://).
        max_to_keep: how many recent checkpoints to keep.
    """

    def __init__(self, model, directory, max_to_keep=5):
        if max_to_keep is not None and max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1 (or None for all). Received: {max_to_keep}")
        self.model = model
        self.checkpoint = make_checkpoint(model)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def restore_latest(self):
        """Restores the latest checkpoint, if any; returns the optimizer step reached (0 if none)."""
        path = self.manager.latest_checkpoint
        if path is None:
            return 0
        self.checkpoint.restore(path).assert_consumed()
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def save(self, step):
        return self.manager.save(checkpoint_number=step)


class CheckpointCallback(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (an epoch = a checkpoint interval)."""

    def __init__(self, manager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.manager.save(step)


def describe(directory):
    """Lists the checkpoints kept in `directory` (for logs and tests)."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    return [os.path.basename(p) for p in state.all_model_checkpoint_paths]
