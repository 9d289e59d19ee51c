"""The projection of AdamP and SGDP (Heo et al., ICLR 2021), shared by both.

If a weight looks scale invariant (its gradient is almost orthogonal to it),
the radial component of the update is removed, so the update stops growing
the weight norm (which would shrink the effective step size).

Views:
- channel view: each output unit's slice is one vector of size fan_in. The
  units follow the variable's layout (`keras_si.optimizers._norms.unit_axes`:
  the last axis of a Dense or conv kernel, the second-last of a transposed
  conv, the last two of a depthwise kernel, a row of an embedding table...);
  the authors' PyTorch code takes the first axis, PyTorch's output axis;
- layer view: the whole tensor is one vector.
A view is chosen when max |cos(w_k, g_k)| < delta / sqrt(vector size), the
channel view first; with neither, no projection. Both views are computed and
selected with `where`, so the step has no data-dependent Python branch (XLA).
"""

from keras import ops

from keras_si.optimizers._norms import _normalize_axes, unit_axes as _unit_axes_of, unit_sum


def check_weight_decay_ratio(value):
    """Raises a ValueError unless `value` is a number in [0, 1] (SGDP's and AdamP's `weight_decay_ratio`)."""
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0):
        raise ValueError(f"`weight_decay_ratio` must be in [0, 1]. Received: weight_decay_ratio={value!r}")


def project(weight, grad, update, delta, eps=1e-8, unit_axes=None):
    """Returns (update with the radial part removed where scale invariant, 1.0 if projected else 0.0).

    Args:
        weight: the variable (its value before the step).
        grad, update: tensors of its shape.
        delta: the threshold of the cosine test (> 0).
        eps: added to the norms.
        unit_axes: the axes indexing the channel view's units; None reads them
            from `weight` (`_norms.unit_axes`: its `unit_axes` attribute, else
            its path, else the last axis).
    """
    rank = len(weight.shape)
    axes = _unit_axes_of(weight) if unit_axes is None else _normalize_axes(unit_axes, rank)
    w = ops.cast(weight, "float32")
    g = ops.cast(grad, "float32")
    u = ops.cast(update, "float32")
    size, units = 1, 1
    for i, d in enumerate(w.shape):
        size *= d
        units *= d if i in axes else 1
    fan_in = size // units

    # Four per-unit dot products (one pass each); the layer view's are their totals.
    # The cost of these optimizers is memory traffic, not arithmetic.
    ww, gg, wg, wu = (unit_sum(ops.multiply, a, b, axes=axes) for a, b in ((w, w), (g, g), (w, g), (w, u)))

    w_norm_c, g_norm_c = ops.sqrt(ww), ops.sqrt(gg)
    cos_c = ops.abs(wg) / (w_norm_c * g_norm_c + eps)
    use_channel = ops.max(cos_c) < delta / fan_in**0.5

    # The layer view's totals, summed from the per-unit sums in one stacked
    # reduction: written as sum(ww) etc., XLA merges each into a second full
    # reduction of the product (on JAX's XLA:CPU SGDP took 16x SGD with momentum, now 2.8x).
    ww_l, gg_l, wg_l, wu_l = ops.unstack(ops.sum(ops.stack([ops.reshape(t, (-1,)) for t in (ww, gg, wg, wu)]), axis=1))
    w_norm_l, g_norm_l = ops.sqrt(ww_l), ops.sqrt(gg_l)
    cos_l = ops.abs(wg_l) / (w_norm_l * g_norm_l + eps)
    use_layer = ops.logical_and(ops.logical_not(use_channel), cos_l < delta / size**0.5)

    # u - w_hat (w_hat . u) with w_hat = w / (||w|| + eps) is u - w * (w . u) / (||w|| + eps)^2.
    coef_c = wu / ops.square(w_norm_c + eps)
    coef_l = wu_l / ops.square(w_norm_l + eps)
    coef = ops.where(use_channel, coef_c, ops.where(use_layer, coef_l, 0.0))
    out = u - w * coef
    projected = ops.cast(ops.logical_or(use_channel, use_layer), "float32")
    return ops.cast(out, update.dtype), projected
