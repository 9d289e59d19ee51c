"""Tilted ERM against its formula; cyclical and warm-up schedules against theirs."""

import math

import keras
import numpy as np
import pytest

import keras_si
from keras_si.losses import TiltedLoss
from keras_si.schedules import CyclicalLearningRate, LinearWarmup, linear_scaling


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


def clr_reference(t, base, top, step, mode, gamma=1.0):
    cycle = math.floor(1 + t / (2 * step))
    x = abs(t / step - 2 * cycle + 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base + (top - base) * max(0.0, 1 - x) * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclical_matches_formula(mode):
    schedule = CyclicalLearningRate(1e-3, 6e-3, 10, mode=mode, gamma=0.99)
    for t in range(0, 65, 3):
        np.testing.assert_allclose(float(schedule(t)), clr_reference(t, 1e-3, 6e-3, 10, mode, 0.99), rtol=1e-5)
    clone = CyclicalLearningRate.from_config(schedule.get_config())
    assert float(clone(17)) == float(schedule(17))


def test_warmup_and_linear_scaling():
    inner = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    warm = LinearWarmup(inner, warmup_steps=10)
    np.testing.assert_allclose([float(warm(t)) for t in (0, 5, 10, 50)],
                               [0.0, 0.5 * float(inner(10)), float(inner(10)), float(inner(50))], rtol=1e-6)
    assert float(LinearWarmup(0.3, warmup_steps=4)(2)) == pytest.approx(0.15)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(warm))
    assert float(restored(5)) == pytest.approx(float(warm(5)))
    assert linear_scaling(0.1, 1024) == pytest.approx(0.4)


@pytest.mark.parametrize("make,match", [
    (lambda: CyclicalLearningRate(1e-2, 1e-3, 10), "max_learning_rate"),
    (lambda: CyclicalLearningRate(1e-3, 1e-2, 0), "step_size"),
    (lambda: CyclicalLearningRate(1e-3, 1e-2, 10, mode="cosine"), "mode"),
    (lambda: CyclicalLearningRate(-1e-3, 1e-2, 10), "initial_learning_rate"),
    (lambda: CyclicalLearningRate(1e-3, 1e-2, 10, mode="exp_range", gamma=0.0), "gamma"),
    (lambda: LinearWarmup(0.1, warmup_steps=-1), "warmup_steps"),
    (lambda: LinearWarmup(0.1, warmup_steps=2.5), "warmup_steps"),
    (lambda: LinearWarmup(lambda step: 0.1, warmup_steps=2), "schedule"),
    (lambda: LinearWarmup(0.1, warmup_steps=2, initial_learning_rate=-0.1), "initial_learning_rate"),
    (lambda: linear_scaling(0.0, 64), "learning_rate"),
    (lambda: linear_scaling(0.1, 0), "batch_size"),
    (lambda: linear_scaling(0.1, 64, base_batch_size="256"), "base_batch_size"),
])
def test_bad_schedule_arguments(make, match):
    """One line naming the argument, in Keras's form ("`name` must be ... Received: name=...")."""
    with pytest.raises(ValueError, match=rf"^`{match}` must be .*Received: {match}=") as info:
        make()
    assert "\n" not in str(info.value)


def test_schedules_take_keras_argument_names():
    """Keras's words (initial_learning_rate; a schedule's name defaults to its class name), kept in the configs."""
    clr = CyclicalLearningRate(initial_learning_rate=0.01, max_learning_rate=0.05, step_size=4)
    assert clr.get_config()["initial_learning_rate"] == 0.01 and clr.name == "CyclicalLearningRate"
    assert float(clr(0)) == pytest.approx(0.01) and float(clr(4)) == pytest.approx(0.05)
    warm = LinearWarmup(0.3, warmup_steps=4, initial_learning_rate=0.1)
    assert warm.name == "LinearWarmup" and float(warm(2)) == pytest.approx(0.2)
    assert linear_scaling(learning_rate=0.1, batch_size=64, base_batch_size=32) == pytest.approx(0.2)


def test_exported_names():
    assert keras_si.losses.TiltedLoss is TiltedLoss and keras_si.schedules.CyclicalLearningRate is CyclicalLearningRate
