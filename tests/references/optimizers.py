"""Float64 NumPy references of keras_si's optimizers, each written from its paper's algorithm.

No backend is imported, so that tests/backend_reference_check.py can use them on a
machine with JAX only.
"""

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


def lars_reference(xs, grad_seq, lr, mu, lam, tc, nesterov=False, adapt=None, decay=None):
    """You et al. 2017, Algorithm 1 (per-variable trust ratio, coupled L2, heavy-ball momentum)."""
    xs = [np.array(x, np.float64) for x in xs]
    vs = [np.zeros_like(x) for x in xs]
    adapt = adapt or [True] * len(xs)
    decay = decay or [True] * len(xs)
    for gs in grad_seq:
        for i, g in enumerate(gs):
            g = np.asarray(g, np.float64)
            l = lam if decay[i] else 0.0
            u = g + l * xs[i]
            wn, gn = np.linalg.norm(xs[i]), np.linalg.norm(g)
            trust = tc * wn / (gn + l * wn) if (adapt[i] and wn > 0 and gn > 0) else 1.0
            vs[i] = mu * vs[i] + lr * trust * u
            xs[i] = xs[i] - (mu * vs[i] + lr * trust * u if nesterov else vs[i])
    return xs


def radam_reference(xs, grad_seq, lr, b1, b2, eps, lam=0.0, threshold=5.0):
    """Liu et al. 2020, Algorithm 2, with the authors' eps placement; rectified where rho_t > threshold.

    The authors' code (and the default) uses threshold 5, the paper's Algorithm 2 writes 4.
    Returns the final weights and, per step, whether it was rectified.
    """
    xs = [np.array(x, np.float64) for x in xs]
    ms = [np.zeros_like(x) for x in xs]
    vs = [np.zeros_like(x) for x in xs]
    rho_inf = 2 / (1 - b2) - 1
    rectified = []
    for t, gs in enumerate(grad_seq, start=1):
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        rectified.append(rho_t > threshold)
        for i, g in enumerate(gs):
            g = np.asarray(g, np.float64)
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            m_hat = ms[i] / (1 - b1**t)
            if rho_t > threshold:
                r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                step = r * m_hat * math.sqrt(1 - b2**t) / (np.sqrt(vs[i]) + eps)
            else:
                step = m_hat
            xs[i] = xs[i] - lr * (step + lam * xs[i])
    return xs, rectified


# SGDP/AdamP (Heo et al., ICLR 2021): the default delta and the epsilon of the projection.
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


def agc_sgd_reference(xs, grad_seq, lr, clipping, eps, clip_mask=None):
    """Brock et al. 2021, Sec. 4.1, unit-wise (output axis last; vectors as one unit), then plain SGD."""
    xs = [np.array(x, np.float64) for x in xs]
    clip_mask = clip_mask or [True] * len(xs)
    clipped_any = False
    for gs in grad_seq:
        for i, g in enumerate(gs):
            g = np.asarray(g, np.float64)
            if clip_mask[i]:
                axes = tuple(range(g.ndim - 1)) if g.ndim > 1 else None
                wn = np.sqrt(np.sum(xs[i] ** 2, axis=axes, keepdims=True))
                gn = np.sqrt(np.sum(g**2, axis=axes, keepdims=True))
                max_norm = clipping * np.maximum(wn, eps)
                factor = np.where(gn > max_norm, max_norm / gn, 1.0)
                clipped_any |= bool((factor < 1).any())
                g = g * factor
            xs[i] = xs[i] - lr * g
    return xs, clipped_any
