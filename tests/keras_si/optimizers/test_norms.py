"""keras_si.optimizers._norms: per-unit statistics on every Keras kernel layout, and the float32 sums behind every norm.

The layouts: AGC's clip and SGDP/AdamP's channel view, against NumPy float64.

Each layout's output channels are written down here from Keras's documented
kernel shapes, as a matrix of flat kernel indices (one column per output
channel), and `test_channel_map_matches_the_layer` checks that map against
the layer itself: changing one column's entries changes that output channel only.
"""

import keras
import numpy as np
import pytest

import keras_si
from keras_si.optimizers import _norms
from keras_si.optimizers._projection import project


def _cols(a, fan_in_axes, unit_axes):
    """(fan_in, units) view of array `a`: unit axes last, flattened in order."""
    return np.transpose(a, list(fan_in_axes) + list(unit_axes)).reshape(
        int(np.prod([a.shape[i] for i in fan_in_axes])), -1)


# name -> (make layer(name), input shape, kernel attribute, (fan-in axes, unit axes) in the kernel)
LAYOUTS = {
    "Dense": (lambda n: keras.layers.Dense(5, name=n), (2, 4), "kernel", ((0,), (1,))),
    "EinsumDense": (lambda n: keras.layers.EinsumDense("abc,cde->abde", (3, 4, 2), name=n), (2, 3, 4), "kernel",
                    ((0,), (1, 2))),
    "Conv1D": (lambda n: keras.layers.Conv1D(5, 3, name=n), (2, 6, 4), "kernel", ((0, 1), (2,))),
    "Conv2D": (lambda n: keras.layers.Conv2D(5, 3, name=n), (2, 5, 5, 3), "kernel", ((0, 1, 2), (3,))),
    "Conv3D": (lambda n: keras.layers.Conv3D(4, 2, name=n), (2, 3, 3, 3, 2), "kernel", ((0, 1, 2, 3), (4,))),
    # Transposed convolutions: kernel (..., out, in).
    "Conv1DTranspose": (lambda n: keras.layers.Conv1DTranspose(5, 3, name=n), (2, 4, 3), "kernel", ((0, 2), (1,))),
    "Conv2DTranspose": (lambda n: keras.layers.Conv2DTranspose(5, 3, name=n), (2, 4, 4, 3), "kernel",
                        ((0, 1, 3), (2,))),
    "Conv3DTranspose": (lambda n: keras.layers.Conv3DTranspose(4, 2, name=n), (2, 3, 3, 3, 2), "kernel",
                        ((0, 1, 2, 4), (3,))),
    # Depthwise: kernel (..., in, multiplier); output channel in * multiplier + m.
    "DepthwiseConv1D": (lambda n: keras.layers.DepthwiseConv1D(3, depth_multiplier=2, name=n), (2, 6, 3), "kernel",
                        ((0,), (1, 2))),
    "DepthwiseConv2D": (lambda n: keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name=n), (2, 5, 5, 3),
                        "kernel", ((0, 1), (2, 3))),
    "SeparableConv1D.depthwise": (lambda n: keras.layers.SeparableConv1D(5, 3, depth_multiplier=2, name=n),
                                  (2, 6, 3), "depthwise_kernel", ((0,), (1, 2))),
    "SeparableConv2D.depthwise": (lambda n: keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name=n),
                                  (2, 5, 5, 3), "depthwise_kernel", ((0, 1), (2, 3))),
    "SeparableConv2D.pointwise": (lambda n: keras.layers.SeparableConv2D(5, 3, depth_multiplier=2, name=n),
                                  (2, 5, 5, 3), "pointwise_kernel", ((0, 1, 2), (3,))),
    # A row per token.
    "Embedding": (lambda n: keras.layers.Embedding(7, 4, name=n), (2, 3), "embeddings", ((1,), (0,))),
}


# EinsumDense's units follow its equation, which its variable's path does not
# hold: it needs `annotate_unit_axes` even under its default name.
NEEDS_ANNOTATION = {"EinsumDense"}


def _layer(kind, name=None, seed=0):
    make, in_shape, attr, axes = LAYOUTS[kind]
    keras.utils.set_random_seed(seed)
    layer = make(name)
    if kind == "Embedding":
        x = np.random.RandomState(seed).randint(0, 7, size=in_shape)
    else:
        x = np.random.RandomState(seed).randn(*in_shape).astype("float32")
    layer(x)
    return layer, x, getattr(layer, attr), axes


def _index_map(shape, axes):
    return _cols(np.arange(int(np.prod(shape))).reshape(shape), *axes)


# Not Embedding (its unit is a token's row, not an output channel) nor a
# separable depthwise kernel (its channels are mixed by the pointwise one;
# DepthwiseConv1D/2D check the same layout).
@pytest.mark.parametrize("kind", [k for k in LAYOUTS if k != "Embedding" and "depthwise" not in k])
def test_channel_map_matches_the_layer(kind):
    """The test's own layout map is right: a column of kernel entries feeds exactly one output channel."""
    layer, x, var, axes = _layer(kind)
    cols = _index_map(var.shape, axes)
    base = np.asarray(layer(x), np.float64)
    if kind == "EinsumDense":
        base = base.reshape(base.shape[:2] + (-1,))
    value = np.asarray(var).copy()
    c = cols.shape[1] - 2
    w = value.reshape(-1).copy()
    w[cols[:, c]] += 1.0
    var.assign(w.reshape(value.shape))
    out = np.asarray(layer(x), np.float64)
    if kind == "EinsumDense":
        out = out.reshape(out.shape[:2] + (-1,))
    var.assign(value)
    changed = np.nonzero(np.max(np.abs(out - base).reshape(-1, out.shape[-1]), axis=0) > 1e-6)[0]
    assert changed.tolist() == [c]


def _agc_reference(w, g, cols, lr, clipping, eps):
    """One AGC + SGD(lr) step in float64; returns (new w, indices of clipped units)."""
    w64, g64 = np.asarray(w, np.float64).reshape(-1), np.asarray(g, np.float64).reshape(-1)
    out = g64.copy()
    clipped = []
    for c in range(cols.shape[1]):
        idx = cols[:, c]
        max_norm = clipping * max(np.linalg.norm(w64[idx]), eps)
        g_norm = np.linalg.norm(g64[idx])
        if g_norm > max_norm:
            out[idx] *= max_norm / g_norm
            clipped.append(c)
    return (w64 - lr * out).reshape(np.shape(w)), clipped


def _one_huge_unit(var, cols, unit, seed=1):
    rng = np.random.RandomState(seed)
    g = 1e-6 * rng.randn(*var.shape)
    flat = g.reshape(-1)
    flat[cols[:, unit]] *= 1e7
    return flat.reshape(var.shape).astype("float32")


@pytest.mark.parametrize("renamed", [False, True])
@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_agc_clips_only_the_huge_output_unit(kind, renamed):
    """Found from the default name (path) or, renamed, by `annotate_unit_axes` from the class."""
    layer, _, var, axes = _layer(kind, name="renamed_layer" if renamed else None)
    if renamed or kind in NEEDS_ANNOTATION:
        annotated = keras_si.optimizers.agc.annotate_unit_axes(layer)
        assert var.path in annotated
    cols = _index_map(var.shape, axes)
    unit = cols.shape[1] - 2
    g = _one_huge_unit(var, cols, unit)
    want, clipped = _agc_reference(np.asarray(var), g, cols, 1.0, 0.01, 1e-3)
    assert clipped == [unit]
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.01).apply([g], [var])
    got = np.asarray(var, np.float64)
    # One float32 step: the error is a few ulps of |w| + |g|.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * (np.max(np.abs(want)) + np.max(np.abs(g))))


def test_unit_axes_attribute_wins_and_is_validated():
    v = keras.Variable(np.ones((3, 4, 5), "float32"), name="kernel")
    assert _norms.unit_axes(v) == (2,)
    v.unit_axes = (0, -1)
    assert _norms.unit_axes(v) == (0, 2)
    for bad in [(3,), (0, 0), ("a",), 1.5]:
        v.unit_axes = bad
        with pytest.raises(ValueError, match="unit_axes"):
            _norms.unit_axes(v)


def test_agc_on_a_custom_layer_with_unit_axes():
    """A custom layer states its layout with `variable.unit_axes` (here: one unit per row)."""
    v = keras.Variable(np.random.RandomState(2).randn(6, 4).astype("float32"), name="custom_weight")
    v.unit_axes = (0,)
    cols = _cols(np.arange(24).reshape(6, 4), (1,), (0,))
    g = _one_huge_unit(v, cols, 4)
    want, clipped = _agc_reference(np.asarray(v), g, cols, 1.0, 0.01, 1e-3)
    assert clipped == [4]
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.01).apply([g], [v])
    np.testing.assert_allclose(np.asarray(v), want, rtol=1e-6, atol=1e-5)


def _projection_reference(w, g, u, cols, delta, eps):
    """The channel view of Heo et al.'s projection in float64: (projected update, whether the channel view holds)."""
    w64, g64, u64 = (np.asarray(a, np.float64).reshape(-1) for a in (w, g, u))
    fan_in = cols.shape[0]
    cos = [abs(w64[i] @ g64[i]) / (np.linalg.norm(w64[i]) * np.linalg.norm(g64[i]) + eps) for i in cols.T]
    out = u64.copy()
    for i in cols.T:
        out[i] = u64[i] - w64[i] * (w64[i] @ u64[i]) / (np.linalg.norm(w64[i]) + eps) ** 2
    return out.reshape(np.shape(w)), max(cos) < delta / np.sqrt(fan_in)


def _orthogonal_per_unit(w, cols, seed=3):
    """A gradient orthogonal to each unit of `w` (so the channel view must be chosen)."""
    rng = np.random.RandomState(seed)
    w64 = np.asarray(w, np.float64).reshape(-1)
    g = rng.randn(w64.size)
    for i in cols.T:
        g[i] -= w64[i] * (w64[i] @ g[i]) / (w64[i] @ w64[i])
    return g.reshape(np.shape(w))


@pytest.mark.parametrize("renamed", [False, True])
@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_projection_channel_view(kind, renamed):
    layer, _, var, axes = _layer(kind, name="renamed_layer" if renamed else None)
    if renamed or kind in NEEDS_ANNOTATION:
        keras_si.optimizers.agc.annotate_unit_axes(layer)
    cols = _index_map(var.shape, axes)
    w = np.asarray(var)
    g = _orthogonal_per_unit(w, cols).astype("float32")
    u = np.random.RandomState(4).randn(*w.shape).astype("float32")
    want, channel = _projection_reference(w, g, u, cols, 0.1, 1e-8)
    assert channel
    got, projected = project(var, g, u, 0.1, 1e-8)
    assert float(projected) == 1.0
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-5 * np.max(np.abs(u)))


@pytest.mark.parametrize("opt", ["SGDP", "AdamP"])
def test_sgdp_adamp_use_the_layout_of_a_transposed_conv(opt):
    """End to end on TensorFlow, where `update_step` receives the raw tf.Variable: its scoped name is used."""
    layer, _, var, axes = _layer("Conv2DTranspose")
    cols = _index_map(var.shape, axes)
    w = np.asarray(var)
    g = _orthogonal_per_unit(w, cols).astype("float32")
    if opt == "SGDP":
        optimizer, step = keras_si.SGDP(0.1, momentum=0.0), g
    else:
        # Adam's first step is lr * g / (|g| + eps) elementwise.
        optimizer, step = keras_si.AdamP(0.1), g / (np.abs(g) + 1e-7)
    proj, channel = _projection_reference(w, g, step, cols, 0.1, 1e-8)
    assert channel
    optimizer.apply([g], [var])
    want = np.asarray(w, np.float64) - 0.1 * proj
    np.testing.assert_allclose(np.asarray(var, np.float64), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("annotate", [False, True])
def test_agc_on_multi_head_attention_query_kernel(annotate):
    """The query kernel (dim, heads, head_dim) has one unit per (head, feature), by path or by class."""
    keras.utils.set_random_seed(0)
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = np.random.RandomState(0).randn(1, 4, 5).astype("float32")
    layer(x, x)
    var = layer._query_dense.kernel
    if annotate:
        keras_si.optimizers.agc.annotate_unit_axes(layer)
    cols = _index_map(var.shape, ((0,), (1, 2)))
    g = _one_huge_unit(var, cols, 4)
    want, clipped = _agc_reference(np.asarray(var), g, cols, 1.0, 0.01, 1e-3)
    assert clipped == [4]
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.01).apply([g], [var])
    np.testing.assert_allclose(np.asarray(var), want, rtol=1e-6, atol=1e-6 * np.max(np.abs(g)))


def test_fast_norm_matches_float64_under_xla_and_eager():
    tf = pytest.importorskip("tensorflow")  # XLA through tf.function: TensorFlow only
    rng = np.random.RandomState(0)
    x = rng.randn(300_001).astype("float32")  # large enough to take the folded path, odd tail
    want = float(np.sum(x.astype(np.float64) ** 2))
    xla = tf.function(_norms.sum_of_squares, jit_compile=True)(tf.constant(x))
    eager = _norms.sum_of_squares(tf.constant(x))
    # float32 partial sums over 3e5 terms: error ~ sqrt(n) eps ~ 3e-5 at worst.
    np.testing.assert_allclose(float(xla), want, rtol=1e-5)
    np.testing.assert_allclose(float(eager), want, rtol=1e-5)


@pytest.mark.parametrize("shape", [(300, 257), (3, 3, 64, 120), (3, 3, 4, 8), (70,)])
def test_unit_sum_matches_float64_under_xla_and_eager(shape):
    """Per-output-unit sums (AGC, SGDP/AdamP); the two large shapes take the folded path under XLA:CPU."""
    tf = pytest.importorskip("tensorflow")  # XLA through tf.function: TensorFlow only
    rng = np.random.RandomState(0)
    a, b = rng.randn(*shape).astype("float32"), rng.randn(*shape).astype("float32")
    # Units: the last axis of a kernel; a vector is one unit as a whole (_norms._default_axes).
    axes = tuple(range(len(shape) - 1)) if len(shape) > 1 else None
    want = np.sum(a.astype(np.float64) * b, axis=axes, keepdims=True)
    def dot(x, y):
        return _norms.unit_sum(tf.multiply, x, y)

    for fn in (dot, tf.function(dot, jit_compile=True)):
        got = fn(tf.constant(a), tf.constant(b))
        assert tuple(got.shape) == want.shape
        # float32 sums of a few hundred to 10^4 terms of size ~1: error well below 1e-4 absolute.
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_norms_accumulate_in_float32(dtype):
    tf = pytest.importorskip("tensorflow")  # XLA through tf.function: TensorFlow only
    x = tf.cast(tf.fill([4096], 300.0), dtype)  # 300^2 * 4096 overflows float16 (max 65504)
    for fn in (_norms.sum_of_squares, tf.function(_norms.sum_of_squares, jit_compile=True)):
        s = fn(x)
        assert s.dtype == tf.float32
        np.testing.assert_allclose(float(s), 300.0**2 * 4096, rtol=1e-3)
