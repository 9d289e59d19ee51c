"""A bad constructor argument fails at once, with one line naming it."""

import numpy as np
import pytest

from keras_si import layers as L

BAD = [
    (L.SIMultiHeadAttention, dict(num_heads=0, key_dim=4), "num_heads"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=2.5), "key_dim"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, value_dim=-1), "value_dim"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, output_dim=0), "output_dim"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, dropout=1.0), "dropout"),
    (L.SIMultiHeadAttention, dict(num_heads=2, key_dim=4, epsilon=-1e-9), "epsilon"),
    (L.SIFeedForward, dict(intermediate_dim=0), "intermediate_dim"),
    (L.SIFeedForward, dict(intermediate_dim=8, output_dim=True), "output_dim"),
    (L.SIFeedForward, dict(intermediate_dim=8, dropout=-0.1), "dropout"),
    (L.SIEncoderBlock, dict(num_heads=0, intermediate_dim=8), "num_heads"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=None), "intermediate_dim"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=8, attention_dropout=1.5), "attention_dropout"),
    (L.SIEncoderBlock, dict(num_heads=2, intermediate_dim=8, epsilon=float("nan")), "epsilon"),
    (L.SIEmbeddings, dict(vocab_size=0, hidden_dim=8), "vocab_size"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, max_positions=0), "max_positions"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, type_vocab_size=-2), "type_vocab_size"),
    (L.SIEmbeddings, dict(vocab_size=30, hidden_dim=8, dropout=1), "dropout"),
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
    with pytest.raises(ValueError, match="exceeds max_positions=4"):
        L.SIEmbeddings(30, 8, max_positions=4)(np.zeros((1, 6), "int32"))
