"""LARS against a float64 NumPy reference written from You et al. (2017), and its properties."""

import copy

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu
from tests.references.optimizers import assert_close_to_reference, lars_reference

SHAPES = [(7,), (5, 4), (3, 3, 2, 4)]  # vector, dense kernel, conv kernel (HWIO)


def problem(seed, steps, scale=1.0):
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[scale * rng.randn(*s) for s in SHAPES] for _ in range(steps)]
    return xs, grads


run = tu.apply_gradient_sequence


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_lars_matches_reference(nesterov, lam):
    xs, grads = problem(0, 20)
    got = run(keras_si.LARS(0.5, momentum=0.9, weight_decay=lam, trust_coefficient=0.02, nesterov=nesterov), xs, grads)
    assert_close_to_reference(got, lars_reference(xs, grads, 0.5, 0.9, lam, 0.02, nesterov))


def test_lars_exclusions_by_path():
    xs, grads = problem(1, 10)
    names = ["dense_bias", "dense_kernel", "conv_kernel"]  # variable.path is the name here
    opt = keras_si.LARS(0.5, weight_decay=0.01, trust_coefficient=0.02, exclude_from_weight_decay=["bias"])
    got = run(opt, xs, grads, names)
    # Adaptation exclusion follows the decay exclusion by default.
    want = lars_reference(xs, grads, 0.5, 0.9, 0.01, 0.02, adapt=[False, True, True], decay=[False, True, True])
    assert_close_to_reference(got, want)
    opt2 = keras_si.LARS(0.5, weight_decay=0.01, trust_coefficient=0.02, exclude_from_layer_adaptation=["conv"])
    got2 = run(opt2, xs, grads, names)
    assert_close_to_reference(got2, lars_reference(xs, grads, 0.5, 0.9, 0.01, 0.02, adapt=[True, True, False]))


@pytest.mark.parametrize("opt", [
    keras_si.LARS(0.1, momentum=0.5, weight_decay=0.01, trust_coefficient=0.01, nesterov=True,
                  exclude_from_weight_decay=["bias"], exclude_from_layer_adaptation=["norm"]),
], ids=["LARS"])
def test_config_round_trip(opt):
    clone = type(opt).from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()
    assert isinstance(keras.optimizers.deserialize(keras.optimizers.serialize(opt)), type(opt))


@pytest.mark.parametrize("make,match", [
    (lambda: keras_si.LARS(trust_coefficient=-1.0), "trust_coefficient"),
    (lambda: keras_si.LARS(momentum=1.5), "momentum"),
    (lambda: keras_si.LARS(learning_rate=-0.1), "learning_rate"),
    (lambda: keras_si.LARS(exclude_from_layer_adaptation=["(bias"]), "exclude_from_layer_adaptation"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", [
    lambda: keras_si.LARS(0.5, weight_decay=0.01, trust_coefficient=0.05),
], ids=["LARS"])
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
        model.compile(optimizer=keras_si.LARS(0.1, weight_decay=0.01), loss="mse")
        x, y = tu.regression_data(n=32)
        model.fit(x, y, batch_size=16, verbose=0)
        assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy("float32")
