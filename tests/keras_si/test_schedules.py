"""Cyclical and warm-up schedules against their formulas; argument checks and Keras's argument names."""

import math

import keras
import numpy as np
import pytest

import keras_si
from keras_si.schedules import CyclicalLearningRate, LinearWarmup, linear_scaling


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
    assert keras_si.schedules.CyclicalLearningRate is CyclicalLearningRate
    assert keras_si.schedules.LinearWarmup is LinearWarmup and keras_si.schedules.linear_scaling is linear_scaling
