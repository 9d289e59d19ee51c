"""A float64 NumPy reference of SGDClip, written from the paper (no TensorFlow import)."""

import math

import numpy as np


def sgd_clip_reference(xs, grad_seq, lr_at, lam, clip_factor, momentum=0.0, decay_mask=None):
    """Algorithm 1 of Li et al. (ICML 2022) in float64, written from the paper.

    thr = k sqrt(2 lam / eta_t) ||x||;  s = min(1, thr / ||g||);
    x <- (1 - eta_t lam) x - eta_t s g     (norms global over the list).
    With momentum (not in the paper): m <- mu m + s g; x <- (1 - eta lam) x - eta m.
    Returns the final weights and the per-step scales.
    """
    xs = [np.array(x, np.float64) for x in xs]
    ms = [np.zeros_like(x) for x in xs]
    decay_mask = decay_mask or [True] * len(xs)
    scales = []
    for t, gs in enumerate(grad_seq):
        gs = [np.asarray(g, np.float64) for g in gs]
        eta = lr_at(t)
        x_norm = math.sqrt(sum(float(np.sum(x * x)) for x in xs))
        g_norm = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
        if clip_factor is None:
            s = 1.0
        else:
            thr = clip_factor * math.sqrt(2 * lam / eta) * x_norm
            s = min(1.0, thr / max(g_norm, 1e-30))
        scales.append(s)
        new = []
        for i, (x, g) in enumerate(zip(xs, gs)):
            lam_i = lam if decay_mask[i] else 0.0
            if momentum:
                ms[i] = momentum * ms[i] + s * g
                step = ms[i]
            else:
                step = s * g
            new.append((1 - eta * lam_i) * x - eta * step)
        xs = new
    return xs, scales


def assert_close_to_reference(got, want, rtol=2e-5):
    """Compares float32 results with the float64 reference, tensor by tensor.

    Each element's float32 error scales with the magnitude of the terms that
    were added to form it, not with its own (possibly cancelled, near-zero)
    value, so the absolute tolerance is `rtol` times the tensor's largest
    magnitude. With unit roundoff 6e-8, 15-40 steps of a few operations and
    norms over <1e5 elements stay near 1e-6 relative; 2e-5 leaves ~20x margin
    and is far below what a wrong formula gives (>1e-2).
    """
    for i, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g, np.float64)
        atol = rtol * max(float(np.max(np.abs(w))), 1e-30)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"variable {i}")
