"""keras_si.callbacks: SGDClipMonitor's argument checks and config, find_optimizers (the logging: test_sgd_clip)."""

import keras
import numpy as np
import pytest

import keras_si
from keras_si.callbacks import find_optimizers


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", float("nan"), float("inf"), None])
def test_every_n_batches_must_be_a_whole_number_of_at_least_one(value):
    with pytest.raises(ValueError, match="every_n_batches"):
        keras_si.SGDClipMonitor(every_n_batches=value)


@pytest.mark.parametrize("value", [1, 2.0, np.int64(3)])
def test_every_n_batches_accepts_whole_numbers(value):
    monitor = keras_si.SGDClipMonitor(every_n_batches=value)
    assert monitor.every_n_batches == int(value) and type(monitor.every_n_batches) is int
    assert keras_si.SGDClipMonitor.from_config(monitor.get_config()).every_n_batches == int(value)


def test_find_optimizers_looks_through_wrappers():
    first, second = keras_si.SGDClip(), keras_si.SGDClip()
    routing = keras.optimizers.OptimizerMap(keras_si.AGC(keras.optimizers.SGD()), {"encoder/.*": first})
    multi = keras.optimizers.MultiOptimizer(routing)
    assert find_optimizers(keras.optimizers.LossScaleOptimizer(multi)) == [first]
    assert find_optimizers(keras_si.AGC(second)) == [second]
    assert find_optimizers(keras.optimizers.SGD()) == []
