"""keras_si.callbacks: SGDClipMonitor's argument checks and config, find_optimizers, and what it logs."""

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu
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


def test_monitor_logs_diagnostics():
    x, y = tu.regression_data(n=64)
    model = tu.small_model(seed=0)
    model.compile(optimizer=keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[keras_si.SGDClipMonitor()])
    h = history.history
    for key in ["weight_norm", "grad_norm", "clip_scale", "effective_learning_rate", "equilibrium_ratio", "clip_rate",
                "skipped_steps"]:
        assert key in h, key
    assert 0.0 <= h["clip_rate"][-1] <= 1.0
    opt = model.optimizer
    np.testing.assert_allclose(h["effective_learning_rate"][-1], 0.5 / float(opt.weight_norm.numpy()) ** 2, rtol=1e-5)
    assert h["clip_rate"][0] > 0  # clip_factor 0.5 clips at the start


def test_monitor_requires_sgdclip():
    model = tu.small_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = tu.regression_data(n=8)
    with pytest.raises(ValueError, match="no keras_si.SGDClip"):
        model.fit(x, y, verbose=0, callbacks=[keras_si.SGDClipMonitor()])


def test_monitor_values_reach_later_callbacks():
    """Placed before TensorBoard, the values are in the logs TensorBoard gets."""
    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    x, y = tu.regression_data(n=32)
    model = tu.small_model(seed=0)
    model.compile(optimizer=keras_si.SGDClip(0.1, weight_decay=0.01), loss="mse")
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[keras_si.SGDClipMonitor(), Recorder()])
    assert len(seen) == 2 and "weight_norm" in seen[-1] and "effective_learning_rate" in seen[-1]


def test_monitor_says_when_a_multioptimizer_routes_nothing_to_sgdclip():
    """The README's first routing try (`v.path.startswith("encoder/")`) on a model whose paths do not start so."""
    import keras
    import numpy as np
    import pytest

    import keras_si

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    clip, other = keras_si.SGDClip(0.1, weight_decay=1e-2), keras.optimizers.SGD(0.1)
    model.compile(optimizer=keras.optimizers.MultiOptimizer(
        lambda v: clip if v.path.startswith("encoder/") else other), loss="mse")
    with pytest.raises(ValueError, match=r"no variable reached an SGDClip; check the routing .*dense/kernel"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0, callbacks=[keras_si.SGDClipMonitor()])
