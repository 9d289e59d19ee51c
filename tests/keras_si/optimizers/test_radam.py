"""RAdam against a float64 NumPy reference written from Liu et al. (ICLR 2020), and its properties."""

import copy

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu
from tests.references.optimizers import assert_close_to_reference, radam_reference

SHAPES = [(7,), (5, 4), (3, 3, 2, 4)]  # vector, dense kernel, conv kernel (HWIO)


def problem(seed, steps, scale=1.0):
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[scale * rng.randn(*s) for s in SHAPES] for _ in range(steps)]
    return xs, grads


run = tu.apply_gradient_sequence


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_radam_matches_reference_through_both_branches(lam):
    xs, grads = problem(2, 12)
    opt = keras_si.RAdam(0.01, beta_1=0.9, beta_2=0.9, weight_decay=lam or None)
    got = run(opt, xs, grads)
    want, rectified = radam_reference(xs, grads, 0.01, 0.9, 0.9, 1e-8, lam)
    assert not all(rectified) and any(rectified)  # both branches were taken
    assert_close_to_reference(got, want)


@pytest.mark.parametrize("threshold,first_rectified", [(4.0, 5), (8.0, 10)])
def test_radam_threshold_on_both_sides(threshold, first_rectified):
    # beta_2 = 0.9: rho_t = 1, 1.95, 2.86, 3.74, 4.58, 5.39, 6.17, 6.91, 7.62, 8.29, ... (rho_inf = 19), so the
    # default 5 rectifies from step 6, a threshold of 4 from step 5 and one of 8 from step 10.
    xs, grads = problem(3, 12)
    opt = keras_si.RAdam(0.01, beta_1=0.9, beta_2=0.9, threshold=threshold, weight_decay=0.01)
    got = run(opt, xs, grads)
    want, rectified = radam_reference(xs, grads, 0.01, 0.9, 0.9, 1e-8, 0.01, threshold=threshold)
    assert rectified.index(True) + 1 == first_rectified and all(rectified[first_rectified - 1:])
    assert keras_si.RAdam.from_config(opt.get_config()).threshold == threshold
    assert_close_to_reference(got, want)
    # The threshold changed the steps: the default threshold's result differs by far more than float32 rounding.
    default, _ = radam_reference(xs, grads, 0.01, 0.9, 0.9, 1e-8, 0.01)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(want, default)) > 1e-3


@pytest.mark.parametrize("opt", [
    keras_si.RAdam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6, threshold=6.5, weight_decay=0.01),
], ids=["RAdam"])
def test_config_round_trip(opt):
    clone = type(opt).from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(opt)), type(opt))


@pytest.mark.parametrize("make,match", [
    (lambda: keras_si.RAdam(beta_1=1.0), "beta_1"),
    (lambda: keras_si.RAdam(beta_2=-0.1), "beta_2"),
    (lambda: keras_si.RAdam(epsilon=-1e-8), "epsilon"),
    (lambda: keras_si.RAdam(weight_decay=-1.0), "weight_decay"),
    (lambda: keras_si.RAdam(threshold=3.9), "threshold"),
    (lambda: keras_si.RAdam(threshold=float("inf")), "threshold"),
    (lambda: keras_si.RAdam(threshold="5"), "threshold"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", [
    lambda: keras_si.RAdam(0.01, beta_2=0.9, weight_decay=0.01),
], ids=["RAdam"])
def test_keras_save_load_continues_identically(make, tmp_path):
    x, y = tu.regression_data(n=64)
    model = tu.small_model(seed=0)
    model.compile(optimizer=make(), loss="mse")
    model.fit(x[:32], y[:32], batch_size=16, verbose=0, shuffle=False)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    model.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    tu.assert_weights_close(model.get_weights(), loaded.get_weights(), rtol=0, atol=0)


def test_mixed_precision_step_is_finite():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tu.small_model(seed=0)
        model.compile(optimizer=keras_si.RAdam(1e-3), loss="mse")
        x, y = tu.regression_data(n=32)
        model.fit(x, y, batch_size=16, verbose=0)
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy("float32")
