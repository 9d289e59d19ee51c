"""SIMultiHeadAttention (keras_si/layers/attention.py): degree x + 2, masks, unit axes."""

import numpy as np
import pytest

import keras_si
from keras_si import layers as L
from tests.keras_si.layers.homogeneity import DEGREE_TOL, measured_degree


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


def test_attention_projections_state_their_per_unit_axes():
    """AGC and SGDP/AdamP's channel view take one (head, dimension) output of a projection."""
    attention = keras_si.layers.SIMultiHeadAttention(num_heads=2, key_dim=4)
    attention(np.zeros((1, 3, 8), "float32"))
    assert keras_si.optimizers.unit_axes(attention.query_kernel) == (1, 2)
    assert keras_si.optimizers.unit_axes(attention.output_kernel) == (2,)
