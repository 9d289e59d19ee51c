"""AdamP against a float64 NumPy reference written from Heo et al. (ICLR 2021), Keras layout."""

import copy

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from tests.references.optimizers import adamp_ref, assert_close_to_reference, gradient

SHAPES = [(7,), (20, 4), (3, 3, 5, 4)]  # vector (never projected), dense kernel, conv kernel (HWIO)
def run(optimizer, xs, rs, kind):
    variables = [keras.Variable(x, dtype="float32", name=f"v{i}") for i, x in enumerate(xs)]
    for step_rs in rs:
        grads = [gradient(np.asarray(v.numpy(), np.float64), r, kind) for v, r in zip(variables, step_rs)]
        optimizer.apply([tf.constant(g, tf.float32) for g in grads], variables)
    return [v.numpy() for v in variables]


def problem(seed, steps=8):
    rng = np.random.RandomState(seed)
    return [rng.randn(*s) for s in SHAPES], [[rng.randn(*s) for s in SHAPES] for _ in range(steps)]


@pytest.mark.parametrize("kind,expect", [("channel", True), ("generic", False)])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_reference(kind, expect, nesterov):
    xs, rs = problem(1)
    got = run(keras_si.AdamP(0.01, weight_decay=0.1, nesterov=nesterov), xs, rs, kind)
    want, flags = adamp_ref(xs, rs, kind, 0.01, 0.9, 0.999, 0.1, nesterov)
    kernel_flags = [f for k, f in enumerate(flags) if k % len(SHAPES) != 0]
    assert all(kernel_flags) if expect else not any(kernel_flags)
    assert_close_to_reference(got, want)


@pytest.mark.parametrize("opt", [
    keras_si.AdamP(1e-3, beta_1=0.8, delta=0.05, weight_decay_ratio=0.2, nesterov=True),
], ids=["AdamP"])
def test_config_round_trip(opt):
    clone = type(opt).from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()
    assert clone.weight_decay_ratio == opt.weight_decay_ratio != 0.1


@pytest.mark.parametrize("make,match", [
    (lambda: keras_si.AdamP(weight_decay_ratio=-0.1), "weight_decay_ratio"),
    (lambda: keras_si.AdamP(beta_2=1.0), "beta_2"),
    (lambda: keras_si.AdamP(epsilon=0.0), "epsilon"), (lambda: keras_si.AdamP(delta=0.0), "delta"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
