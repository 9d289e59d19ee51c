"""Preemption and Ctrl-C lose nothing: on SIGTERM or SIGINT, checkpoint the step reached and stop training.

Preemptible VMs and TPU maintenance send SIGTERM with a grace period; a person
presses Ctrl-C (SIGINT). TensorFlow's `PreemptionCheckpointHandler` serves
custom training loops under `MultiWorkerMirroredStrategy`; this is the same
idea for Keras's `fit`: the signal handler only records the signal, and the
step in progress finishes; at its end the callback writes a checkpoint at that
step and stops `fit`. The driver then says where it stopped, and running the
same command resumes from there (official.nlp.pretrain.fit starts a resumed run
mid-epoch).
"""

import signal
import threading

import keras


class StopOnSignal(keras.callbacks.Callback):
    """A callback, and a context manager installing the SIGTERM/SIGINT handlers while it is open.

    Args:
        manager: an `official.common.checkpointing.CheckpointManager`.
        signals: names of the signals to catch.

    Attributes:
        signal_name: the signal received ("SIGTERM", "SIGINT"), or None.
        step: the optimizer step checkpointed when it stopped, or None.
    """

    def __init__(self, manager, signals=("SIGTERM", "SIGINT")):
        super().__init__()
        self.manager = manager
        self.signals = [getattr(signal, name) for name in signals]
        self.signal_name = None
        self.step = None
        self._previous = {}

    def __enter__(self):
        # Python installs handlers only from the main thread; elsewhere (a thread that runs fit) the
        # default behaviour stays.
        if threading.current_thread() is threading.main_thread():
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
        return False

    def _record(self, number, frame):
        # Only a flag: the step being computed (possibly inside a tf.function) must finish. A second
        # signal while stopping changes nothing, so the checkpoint being written is not cut short.
        if self.signal_name is None:
            self.signal_name = signal.Signals(number).name

    def on_train_batch_end(self, batch, logs=None):
        if self.signal_name and self.step is None:
            self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            self.manager.save(self.step)
            self.model.stop_training = True
