"""A bad constructor argument fails at once, with one line naming it."""

import numpy as np
import pytest

from keras_si import layers as L

BAD = [
    (L.SIMultiHeadAttention, dict(num_heads=0, key_dim=4), "num_heads"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=2.5), "key_dim"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, value_dim=-1), "value_dim"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, output_shape=0), "output_shape"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, output_shape=(2, 3)), "output_shape"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, output_shape=[1.5]), "output_shape"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, dropout=1.0), "dropout"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, epsilon=-1e-9), "epsilon"),
    (L.SIFeedForward, dict(intermediate_dim=0), "intermediate_dim"),
    (L.SIFeedForward, dict(intermediate_dim=8, output_dim=True), "output_dim"),
    (L.SIFeedForward, dict(intermediate_dim=8, dropout=-0.1), "dropout"),
    (L.SIEncoderBlock, dict(num_heads=0, intermediate_dim=8), "num_heads"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=None), "intermediate_dim"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=8, attention_dropout=1.5), "attention_dropout"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=8, layer_norm_epsilon=float("nan")), "layer_norm_epsilon"),
    (L.SIEmbeddings, dict(vocab_size=0, hidden_dim=8), "vocab_size"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, max_sequence_length=0), "max_sequence_length"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, type_vocab_size=-2), "type_vocab_size"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, dropout=1), "dropout"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, layer_norm_epsilon=-1e-3), "layer_norm_epsilon"),
    (L.layer_normalization_without_affine, dict(epsilon=-1.0), "epsilon"),
    (L.layer_normalization_with_affine, dict(epsilon=None), "epsilon"),
    (L.WSConv2D, dict(filters=4, kernel_size=3, epsilon=-1.0), "epsilon"),
]


@pytest.mark.parametrize("cls, kwargs, name", BAD, ids=lambda v: getattr(v, "__name__", None))
def test_bad_argument_is_named(cls, kwargs, name):
    with pytest.raises(ValueError, match=rf"^`{name}` must be .*Received: {name}=") as info:
        cls(**kwargs)
    assert "\n" not in str(info.value)


def test_numpy_integers_are_accepted():
    layer = L.SIFeedForward(np.int64(8), dropout=np.float32(0.1))
    assert layer.intermediate_dim == 8


def test_build_time_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        L.SIEncoderBlock(3, 8)(np.zeros((1, 4, 8), "float32"))
    with pytest.raises(ValueError, match="exceeds max_sequence_length=4"):
        L.SIEmbeddings(30, 8, max_sequence_length=4)(np.zeros((1, 6), "int32"))


@pytest.mark.parametrize("output_shape", [6, (6,), [6], np.int32(6)])
def test_attention_output_shape_takes_keras_spellings(output_shape):
    """An int or a one-element sequence, as keras.layers.MultiHeadAttention takes; the config holds a tuple."""
    layer = L.SIMultiHeadAttention(num_heads=2, key_dim=4, output_shape=output_shape)
    assert layer(np.ones((1, 3, 8), "float32")).shape == (1, 3, 6)
    assert layer.get_config()["output_shape"] == (6,)
    assert L.SIMultiHeadAttention.from_config(layer.get_config()).compute_output_shape((1, 3, 8)) == (1, 3, 6)


def test_mark_scale_invariant_refuses_a_non_layer():
    with pytest.raises(TypeError, match=r"^`layer` must be a keras.layers.Layer"):
        L.mark_scale_invariant(lambda x: x)
