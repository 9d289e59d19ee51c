"""Tilted ERM (keras_si.losses.TiltedLoss) against its formula, its limits and its argument checks."""

import math

import keras
import numpy as np
import pytest

import keras_si
from keras_si.losses import TiltedLoss


def per_example_mse(y, p):
    return np.mean((np.asarray(y, np.float64) - np.asarray(p, np.float64)) ** 2, axis=-1)


def tilted_reference(losses, t, w=None):
    w = np.ones_like(losses) if w is None else np.asarray(w, np.float64)
    if t == 0:
        return float(np.sum(w * losses) / np.sum(w))
    return float(np.log(np.sum(w * np.exp(t * losses)) / np.sum(w)) / t)


@pytest.mark.parametrize("t", [-2.0, -0.1, 0.0, 0.5, 3.0])
def test_tilted_matches_formula(t):
    rng = np.random.RandomState(0)
    y, p, w = rng.randn(16, 3), rng.randn(16, 3), rng.rand(16)
    losses = per_example_mse(y, p)
    loss = TiltedLoss("mean_squared_error", tilt=t)
    np.testing.assert_allclose(float(loss(y, p)), tilted_reference(losses, t), rtol=1e-5)
    np.testing.assert_allclose(float(loss(y, p, sample_weight=w)), tilted_reference(losses, t, w), rtol=1e-5)


def test_tilt_limits_and_ordering():
    rng = np.random.RandomState(1)
    y, p = rng.randn(32, 2), rng.randn(32, 2)
    losses = per_example_mse(y, p)
    mean = float(TiltedLoss(tilt=0.0)(y, p))
    np.testing.assert_allclose(float(TiltedLoss(tilt=1e-4)(y, p)), mean, rtol=1e-3)  # t -> 0 is the mean
    assert float(TiltedLoss(tilt=-5.0)(y, p)) < mean < float(TiltedLoss(tilt=5.0)(y, p))
    np.testing.assert_allclose(float(TiltedLoss(tilt=200.0)(y, p)), losses.max(), rtol=0.05)  # t -> inf: the max


def test_no_overflow_for_large_tilted_losses():
    y, p = np.zeros((4, 1)), np.array([[100.0], [0.0], [1.0], [2.0]])  # losses up to 1e4, t*l = 1e5
    value = float(TiltedLoss(tilt=10.0)(y, p))
    assert math.isfinite(value) and abs(value - (1e4 - math.log(4) / 10)) < 1e-1


def test_outlier_robustness_with_negative_tilt_in_fit():
    rng = np.random.RandomState(2)
    x = rng.randn(200, 1).astype("float32")
    y = 3 * x
    y[:10] += 50.0  # outliers
    slopes = {}
    for t in (0.0, -1.0):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=TiltedLoss("mean_squared_error", tilt=t))
        model.fit(x, y, batch_size=200, epochs=60, verbose=0)
        slopes[t] = float(model.layers[0].kernel.numpy()[0, 0])
    assert abs(slopes[-1.0] - 3) < abs(slopes[0.0] - 3)


def test_tilted_config_and_bad_tilt():
    loss = TiltedLoss("mean_absolute_error", tilt=-1.5)
    clone = TiltedLoss.from_config(loss.get_config())
    y, p = np.random.RandomState(3).randn(5, 2), np.random.RandomState(4).randn(5, 2)
    np.testing.assert_allclose(float(clone(y, p)), float(loss(y, p)))
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match=r"^`tilt` must be a finite number\. Received: tilt="):
            TiltedLoss(tilt=bad)
    assert TiltedLoss(tilt=np.float32(2.0)).tilt == 2.0  # NumPy numbers are numbers


def test_tilted_refuses_a_reduction_it_would_ignore():
    """The tilted aggregate is the reduction: reduction="sum" or None would be silently ignored, so it is refused."""
    for reduction in ("sum", None, "none"):
        with pytest.raises(ValueError, match=r"^`reduction` has no effect on TiltedLoss"):
            TiltedLoss(reduction=reduction)
    assert float(TiltedLoss(tilt=0.0, reduction="sum_over_batch_size")(np.zeros((2, 1)), np.ones((2, 1)))) == 1.0


def test_exported_names():
    assert keras_si.losses.TiltedLoss is TiltedLoss
