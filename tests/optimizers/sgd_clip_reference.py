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
