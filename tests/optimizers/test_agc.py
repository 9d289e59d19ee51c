"""Adaptive gradient clipping against a float64 reference from the NFNets paper, and under tf.distribute."""

import copy
import os

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu
from tests.optimizers.references import agc_sgd_reference, assert_close_to_reference

SHAPES = [(7,), (5, 4), (3, 3, 2, 4)]


run = tu.apply_gradient_sequence


@pytest.mark.parametrize("grad_scale,clips", [(5.0, True), (1e-4, False)])
def test_matches_reference(grad_scale, clips):
    rng = np.random.RandomState(0)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[grad_scale * rng.randn(*s) for s in SHAPES] for _ in range(10)]
    got = run(keras_si.AGC(keras.optimizers.SGD(0.1), clipping=0.05), xs, grads)
    want, clipped_any = agc_sgd_reference(xs, grads, 0.1, 0.05, 1e-3)
    assert clipped_any == clips
    assert_close_to_reference(got, want)


def test_exclude_by_path():
    rng = np.random.RandomState(1)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[5.0 * rng.randn(*s) for s in SHAPES] for _ in range(5)]
    got = run(keras_si.AGC(keras.optimizers.SGD(0.1), clipping=0.05, exclude_from_clipping=["classifier"]), xs, grads,
              names=["bias", "kernel", "classifier_kernel"])
    want, _ = agc_sgd_reference(xs, grads, 0.1, 0.05, 1e-3, clip_mask=[True, True, False])
    assert_close_to_reference(got, want)


def test_config_and_keras_round_trip(tmp_path):
    opt = keras_si.AGC(keras.optimizers.Adam(1e-3), clipping=0.02, epsilon=1e-4, exclude_from_clipping=["out"])
    clone = keras_si.AGC.from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()
    x, y = tu.regression_data(n=64)
    model = tu.small_model(seed=0)
    model.compile(optimizer=keras_si.AGC(keras.optimizers.SGD(0.5, momentum=0.9), clipping=0.01), loss="mse")
    model.fit(x[:32], y[:32], batch_size=16, verbose=0, shuffle=False)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, keras_si.AGC)
    model.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    tu.assert_weights_close(model.get_weights(), loaded.get_weights(), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(clipping=-0.1), "clipping"), (dict(clipping=0.0), "clipping"), (dict(epsilon=-1.0), "epsilon"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_si.AGC(keras.optimizers.SGD(0.1), **kwargs)
    with pytest.raises(ValueError, match="inner_optimizer"):
        keras_si.AGC("sgd")
