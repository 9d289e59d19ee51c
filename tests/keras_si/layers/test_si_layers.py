"""Degrees of homogeneity of the scale-invariant layers (the paper's Table 2), masks, config."""

import math

import keras
import numpy as np
import pytest

from keras_si import layers as L
from keras_si.invariance import scaled_variables


def measured_degree(fn, variables, inputs_at, x_degree, c=10.0):
    """log(||f(c)|| / ||f(1)||) / log c, scaling the parameters by c and inputs as degree x."""
    base = np.asarray(fn(*inputs_at(1.0)), np.float64)
    with scaled_variables(variables, c):
        scaled = np.asarray(fn(*inputs_at(c**x_degree)), np.float64)
    return math.log(np.linalg.norm(scaled) / np.linalg.norm(base)) / math.log(c), base, scaled


# Homogeneity is exact in real arithmetic; float32 roundoff in the ratio of two
# norms of ~1e3 elements gives ~1e-6 in the degree. 1e-3 still tells 2 from 2.01.
DEGREE_TOL = 1e-3


@pytest.mark.parametrize("x", [0, 1, 2])
def test_attention_degree_is_x_plus_2(x):
    rng = np.random.RandomState(0)
    q, kv = rng.randn(2, 5, 8).astype("float32"), rng.randn(2, 7, 8).astype("float32")
    att = L.SIMultiHeadAttention(num_heads=2, key_dim=4)
    att(q, kv)

    def inputs(s):
        return q * s, kv * s

    degree, base, scaled = measured_degree(lambda a, b: att(a, b), att.trainable_variables, inputs, x)
    assert abs(degree - (x + 2)) < DEGREE_TOL
    # Homogeneous means the whole output scales, not only its norm.
    np.testing.assert_allclose(scaled, base * 10.0 ** (x + 2), rtol=1e-4, atol=1e-6 * np.abs(base).max() * 10.0 ** (x + 2))


def test_feedforward_degree_0_to_2():
    u = np.random.RandomState(1).randn(3, 4, 8).astype("float32")
    ff = L.SIFeedForward(16)
    ff(u)
    degree, _, _ = measured_degree(lambda a: ff(a), ff.trainable_variables, lambda s: (u,), 0)
    assert abs(degree - 2) < DEGREE_TOL


def test_encoder_block_degree_2_to_2():
    h = np.random.RandomState(2).randn(2, 6, 8).astype("float32")
    block = L.SIEncoderBlock(num_heads=2, intermediate_dim=16)
    block(h)
    degree, _, _ = measured_degree(lambda a: block(a), block.trainable_variables, lambda s: (h * s,), 2)
    assert abs(degree - 2) < DEGREE_TOL


def test_embeddings_degree_2():
    ids = np.random.RandomState(3).randint(0, 30, size=(2, 6)).astype("int32")
    emb = L.SIEmbeddings(30, 8, max_sequence_length=10)
    emb(ids, np.zeros_like(ids))
    degree, _, _ = measured_degree(lambda a, b: emb(a, b), emb.trainable_variables, lambda s: (ids, np.zeros_like(ids)), 0)
    assert abs(degree - 2) < DEGREE_TOL


@pytest.mark.parametrize("c", [1e-2, 1e2])
def test_layer_normalization_without_affine_has_degree_0_at_the_tested_scales(c):
    """N must stay degree 0 on a degree-2 stream scaled by c**2 = 1e-4 .. 1e4."""
    x = np.random.RandomState(4).randn(2, 5, 8).astype("float32") * 0.05
    norm = L.layer_normalization_without_affine()
    np.testing.assert_allclose(np.asarray(norm(x * c**2)), np.asarray(norm(x)), rtol=1e-4, atol=1e-5)


def test_layer_normalization_with_affine_degree_1():
    x = np.random.RandomState(5).randn(2, 5, 8).astype("float32")
    norm = L.layer_normalization_with_affine()
    norm(x)
    norm.gamma.assign(np.random.RandomState(6).rand(8).astype("float32") + 0.5)
    norm.beta.assign(np.random.RandomState(7).randn(8).astype("float32"))
    degree, _, _ = measured_degree(lambda a: norm(a), norm.trainable_variables, lambda s: (x * s,), 1)
    assert abs(degree - 1) < DEGREE_TOL


def test_padded_keys_never_change_real_outputs():
    rng = np.random.RandomState(8)
    x = rng.randn(2, 6, 8).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "float32")
    att = L.SIMultiHeadAttention(2, 4)
    out = np.asarray(att(x, attention_mask=mask))
    garbage = x.copy()
    garbage[0, 4:] = rng.randn(2, 8) * 100.0  # change only the padded keys/values
    out2 = np.asarray(att(garbage, attention_mask=mask))
    np.testing.assert_allclose(out2[0, :4], out[0, :4], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out2[1], out[1], rtol=1e-5, atol=1e-6)
    block = L.SIEncoderBlock(2, 16)
    b1, b2 = np.asarray(block(x, attention_mask=mask)), np.asarray(block(garbage, attention_mask=mask))
    np.testing.assert_allclose(b2[0, :4], b1[0, :4], rtol=1e-5, atol=1e-6)


def test_all_zero_score_rows_are_finite():
    x = np.random.RandomState(9).randn(1, 4, 8).astype("float32")
    att = L.SIMultiHeadAttention(2, 4)
    out = np.asarray(att(x, attention_mask=np.zeros((1, 4), "float32")))  # every score masked
    assert np.all(np.isfinite(out)) and np.all(out == 0)
    att.query_kernel.assign(np.zeros(att.query_kernel.shape, "float32"))  # ReLU of all-zero scores
    assert np.all(np.isfinite(np.asarray(att(x))))


def test_ws_conv_standardizes_and_is_invariant_to_kernel_scale():
    rng = np.random.RandomState(10)
    x = rng.randn(2, 9, 9, 3).astype("float32")
    conv = L.WSConv2D(5, 3, epsilon=0.0)
    y = np.asarray(conv(x))
    w = np.asarray(conv.standardized_kernel(), np.float64).reshape(-1, 5)
    np.testing.assert_allclose(w.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(w.var(axis=0) * w.shape[0], 1.0, rtol=1e-4)
    with scaled_variables([conv.kernel], 37.0):
        np.testing.assert_allclose(np.asarray(conv(x)), y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        L.SIMultiHeadAttention(2, 4, dropout=0.1),
        L.SIFeedForward(16, dropout=0.1),
        L.SIEncoderBlock(2, 16, dropout=0.1),
        L.SIEmbeddings(30, 8, max_sequence_length=10),
        L.WSConv2D(4, 3, use_gain=False),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert keras.saving.get_registered_name(type(layer)).startswith("keras_si>")


def test_si_layers_state_their_per_unit_axes():
    """AGC and SGDP/AdamP's channel view take one (head, dimension) output of a projection, one row of a table."""
    import keras_si

    attention = keras_si.layers.SIMultiHeadAttention(num_heads=2, key_dim=4)
    attention(np.zeros((1, 3, 8), "float32"))
    assert keras_si.optimizers.unit_axes(attention.query_kernel) == (1, 2)
    assert keras_si.optimizers.unit_axes(attention.output_kernel) == (2,)
    embeddings = keras_si.layers.SIEmbeddings(vocab_size=10, hidden_dim=8, max_sequence_length=6)
    embeddings(np.zeros((1, 3), "int32"))
    assert keras_si.optimizers.unit_axes(embeddings.position_embeddings) == (0,)
