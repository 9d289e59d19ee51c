"""The projection of AdamP and SGDP (Heo et al., ICLR 2021), shared by both.

If a weight looks scale invariant (its gradient is almost orthogonal to it),
the radial component of the update is removed, so the update stops growing
the weight norm (which would shrink the effective step size).

Views, in Keras's layout (the output axis is the LAST axis of a Dense or
conv kernel; the authors' PyTorch code uses the first):
- channel view: each output unit's slice w[..., j] is one vector of size fan_in;
- layer view: the whole tensor is one vector.
A view is chosen when max |cos(w_k, g_k)| < delta / sqrt(vector size), the
channel view first; with neither, no projection. Both views are computed and
selected with `where`, so the step has no data-dependent Python branch (XLA).
"""

from keras import ops

from keras_si.optimizers._norms import fast_sum


def _channel_stats(a, b):
    """sum(a*b) per output unit (all axes but the last), keepdims."""
    axes = tuple(range(len(a.shape) - 1))
    return ops.sum(a * b, axis=axes, keepdims=True)


def project(weight, grad, update, delta, eps=1e-8):
    """Returns (update with the radial part removed where scale invariant, 1.0 if projected else 0.0)."""
    w = ops.cast(weight, "float32")
    g = ops.cast(grad, "float32")
    u = ops.cast(update, "float32")
    fan_in = 1
    for d in w.shape[:-1]:
        fan_in *= d
    size = fan_in * w.shape[-1]

    # Channel view.
    w_norm_c = ops.sqrt(_channel_stats(w, w))
    g_norm_c = ops.sqrt(_channel_stats(g, g))
    cos_c = ops.abs(_channel_stats(w, g)) / (w_norm_c * g_norm_c + eps)
    use_channel = ops.max(cos_c) < delta / fan_in**0.5
    w_hat_c = w / (w_norm_c + eps)
    proj_c = u - w_hat_c * _channel_stats(w_hat_c, u)

    # Layer view.
    w_norm_l = ops.sqrt(fast_sum(w * w))
    g_norm_l = ops.sqrt(fast_sum(g * g))
    cos_l = ops.abs(fast_sum(w * g)) / (w_norm_l * g_norm_l + eps)
    use_layer = ops.logical_and(ops.logical_not(use_channel), cos_l < delta / size**0.5)
    w_hat_l = w / (w_norm_l + eps)
    proj_l = u - w_hat_l * fast_sum(w_hat_l * u)

    out = ops.where(use_channel, proj_c, ops.where(use_layer, proj_l, u))
    projected = ops.cast(ops.logical_or(use_channel, use_layer), "float32")
    return ops.cast(out, update.dtype), projected
