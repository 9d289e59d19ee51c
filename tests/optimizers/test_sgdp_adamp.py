"""SGDP and AdamP against float64 NumPy references written from Heo et al. (ICLR 2021), Keras layout."""

import copy
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from tests import testing_utils as tu
from tests.optimizers.sgd_clip_reference import assert_close_to_reference

SHAPES = [(7,), (20, 4), (3, 3, 5, 4)]  # vector (never projected), dense kernel, conv kernel (HWIO)
DELTA, EPS = 0.1, 1e-8


def project_ref(w, g, u):
    """Channel view (each output unit = last axis) first, then layer view; (u, projected?)."""
    if w.ndim <= 1:
        return u, False
    out = w.shape[-1]
    W, G, U = (a.reshape(-1, out).T for a in (w, g, u))
    cos_c = np.abs((W * G).sum(1)) / (np.linalg.norm(W, axis=1) * np.linalg.norm(G, axis=1) + EPS)
    if cos_c.max() < DELTA / math.sqrt(W.shape[1]):
        Wh = W / (np.linalg.norm(W, axis=1, keepdims=True) + EPS)
        U = U - Wh * (Wh * U).sum(1, keepdims=True)
        return U.T.reshape(w.shape), True
    cos_l = abs((w * g).sum()) / (np.linalg.norm(w) * np.linalg.norm(g) + EPS)
    if cos_l < DELTA / math.sqrt(w.size):
        wh = w / (np.linalg.norm(w) + EPS)
        return u - wh * (wh * u).sum(), True
    return u, False


def gradient(w, r, kind):
    """'channel': orthogonal to w per output unit; 'layer': orthogonal to w as a whole; 'generic': r + w."""
    if w.ndim <= 1 or kind == "generic":
        return r + 0.5 * w
    if kind == "layer":
        return r - (w * r).sum() / (w * w).sum() * w
    out = w.shape[-1]
    W, R = w.reshape(-1, out), r.reshape(-1, out)
    return (R - (W * R).sum(0) / (W * W).sum(0) * W).reshape(w.shape)


def sgdp_ref(xs, rs, kind, lr, mu, lam, nesterov):
    xs = [np.array(x, np.float64) for x in xs]
    ms = [np.zeros_like(x) for x in xs]
    flags = []
    for step_rs in rs:
        for i, r in enumerate(step_rs):
            g = gradient(xs[i], r, kind)
            ms[i] = mu * ms[i] + g
            p = g + mu * ms[i] if nesterov else ms[i]
            p, projected = project_ref(xs[i], g, p)
            flags.append(projected)
            ratio = 0.1 if projected else 1.0
            xs[i] = xs[i] * (1 - lr * lam * ratio / (1 - mu)) - lr * p
    return xs, flags


def adamp_ref(xs, rs, kind, lr, b1, b2, lam, nesterov):
    xs = [np.array(x, np.float64) for x in xs]
    ms = [np.zeros_like(x) for x in xs]
    vs = [np.zeros_like(x) for x in xs]
    flags = []
    for t, step_rs in enumerate(rs, start=1):
        for i, r in enumerate(step_rs):
            g = gradient(xs[i], r, kind)
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            denom = np.sqrt(vs[i]) / math.sqrt(1 - b2**t) + EPS
            p = ((b1 * ms[i] + (1 - b1) * g) if nesterov else ms[i]) / denom
            p, projected = project_ref(xs[i], g, p)
            flags.append(projected)
            ratio = 0.1 if projected else 1.0
            xs[i] = xs[i] * (1 - lr * lam * ratio) - lr / (1 - b1**t) * p
    return xs, flags


def run(optimizer, xs, rs, kind):
    variables = [keras.Variable(x, dtype="float32", name=f"v{i}") for i, x in enumerate(xs)]
    for step_rs in rs:
        grads = [gradient(np.asarray(v.numpy(), np.float64), r, kind) for v, r in zip(variables, step_rs)]
        optimizer.apply([tf.constant(g, tf.float32) for g in grads], variables)
    return [v.numpy() for v in variables]


def problem(seed, steps=8):
    rng = np.random.RandomState(seed)
    return [rng.randn(*s) for s in SHAPES], [[rng.randn(*s) for s in SHAPES] for _ in range(steps)]


@pytest.mark.parametrize("kind,expect", [("channel", True), ("layer", True), ("generic", False)])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgdp_matches_reference(kind, expect, nesterov):
    xs, rs = problem(0)
    got = run(keras_si.SGDP(0.05, momentum=0.9, nesterov=nesterov, weight_decay=0.01), xs, rs, kind)
    want, flags = sgdp_ref(xs, rs, kind, 0.05, 0.9, 0.01, nesterov)
    kernel_flags = [f for k, f in enumerate(flags) if k % len(SHAPES) != 0]
    assert all(kernel_flags) if expect else not any(kernel_flags)
    assert_close_to_reference(got, want)


@pytest.mark.parametrize("kind,expect", [("channel", True), ("generic", False)])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_reference(kind, expect, nesterov):
    xs, rs = problem(1)
    got = run(keras_si.AdamP(0.01, weight_decay=0.1, nesterov=nesterov), xs, rs, kind)
    want, flags = adamp_ref(xs, rs, kind, 0.01, 0.9, 0.999, 0.1, nesterov)
    kernel_flags = [f for k, f in enumerate(flags) if k % len(SHAPES) != 0]
    assert all(kernel_flags) if expect else not any(kernel_flags)
    assert_close_to_reference(got, want)


@pytest.mark.parametrize("opt", [keras_si.SGDP(0.1, nesterov=True, delta=0.2, wd_ratio=0.5, weight_decay=1e-4),
                                 keras_si.AdamP(1e-3, beta_1=0.8, delta=0.05, wd_ratio=0.2, nesterov=True)],
                         ids=["SGDP", "AdamP"])
def test_config_round_trip(opt):
    clone = type(opt).from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()


@pytest.mark.parametrize("make,match", [
    (lambda: keras_si.SGDP(delta=-0.1), "delta"), (lambda: keras_si.SGDP(wd_ratio=1.5), "wd_ratio"),
    (lambda: keras_si.SGDP(momentum=-0.1), "momentum"), (lambda: keras_si.AdamP(beta_2=1.0), "beta_2"),
    (lambda: keras_si.AdamP(epsilon=0.0), "epsilon"), (lambda: keras_si.AdamP(delta=0.0), "delta"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
