"""The PreNorm scale-invariant encoder block, (2; 2)-homogeneous."""

import keras

from keras_si.layers.attention import SIMultiHeadAttention
from keras_si.layers._checks import check_non_negative, check_positive_int, check_rate
from keras_si.layers.dropout import HashedDropout
from keras_si.layers.feedforward import SIFeedForward
from keras_si.layers.markers import mark_scale_invariant
from keras_si.layers.normalization import SI_EPSILON, layer_normalization_without_affine


@keras.saving.register_keras_serializable(package="keras_si")
class SIEncoderBlock(keras.layers.Layer):
    """The PreNorm block `h <- h + ATTN(N(h)); h <- h + FF(N(h))` (Li et al., ICML 2022, Figure 5).

    `N` is a LayerNorm without gain and bias: it maps the degree-2 residual
    stream to degree 0; the scale-invariant attention and the feed-forward
    block each return degree 2, so every addition adds equal degrees and the
    block is (2; 2)-homogeneous. Dropout (a constant factor) keeps degrees.

    Args:
        num_heads: attention heads, >= 1; the head size is
            `hidden_dim / num_heads`, where `hidden_dim` is the inputs' last
            dimension (read at build).
        intermediate_dim: feed-forward width, >= 1.
        dropout: dropout on each branch's output and inside the feed-forward,
            in [0, 1) (default 0).
        attention_dropout: dropout on the attention's normalised scores, in
            [0, 1) (default 0).
        kernel_initializer: for all kernels (default "glorot_uniform").
        layer_norm_epsilon: the LayerNorms' epsilon, >= 0 (default
            `SI_EPSILON`; see `keras_si.layers.normalization`).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Names are KerasHub's `TransformerEncoder`'s (`intermediate_dim`,
    `dropout`, `layer_norm_epsilon`); the order of the first two is Keras's
    `MultiHeadAttention`'s (heads first): pass them by keyword to port code
    from `keras_hub.layers.TransformerEncoder(intermediate_dim, num_heads)`.

    Raises:
        ValueError: for an argument out of the ranges above; at build, if the
            inputs' last dimension is not a multiple of `num_heads`.

    Call args:
        inputs: `[batch, seq, hidden_dim]`.
        attention_mask: optional `[batch, seq]` padding mask or
            `[batch, seq, seq]`, 1 where attention is allowed.
        mask: the Keras mask of `inputs` (`[batch, seq]`), filled in by Keras
            when `inputs` is the only tensor passed: masked steps are not
            attended to (combined with `attention_mask`), and the output
            carries the same mask. Keras does not fill it in when an
            `attention_mask` tensor is passed too: put the padding in
            `attention_mask` then.
        training: bool: apply the dropouts when True.

    Returns:
        `[batch, seq, hidden_dim]`, the inputs' shape and dtype.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import SIEncoderBlock
    >>> block = SIEncoderBlock(num_heads=2, intermediate_dim=16)
    >>> h = np.random.default_rng(0).normal(size=(1, 4, 8)).astype("float32")
    >>> out = np.asarray(block(h))
    >>> out.shape
    (1, 4, 8)
    >>> for w in block.weights:  # (2; 2)-homogeneous: weights times 10 and inputs times 10**2
    ...     _ = w.assign(10.0 * w)
    >>> np.allclose(np.asarray(block(100.0 * h)), 100.0 * out, rtol=1e-4, atol=1e-4)
    True
    """

    def __init__(self, num_heads, intermediate_dim, dropout=0.0, attention_dropout=0.0,
                 kernel_initializer="glorot_uniform", layer_norm_epsilon=SI_EPSILON, **kwargs):
        super().__init__(**kwargs)
        num_heads = check_positive_int("num_heads", num_heads)
        intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        dropout = check_rate("dropout", dropout)
        attention_dropout = check_rate("attention_dropout", attention_dropout)
        layer_norm_epsilon = check_non_negative("layer_norm_epsilon", layer_norm_epsilon)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.layer_norm_epsilon = layer_norm_epsilon
        self._attention_norm = layer_normalization_without_affine("attention_norm", layer_norm_epsilon)
        self._ffn_norm = layer_normalization_without_affine("ffn_norm", layer_norm_epsilon)
        self._attention = None
        self._ffn = SIFeedForward(intermediate_dim, dropout=dropout,
                                  kernel_initializer=self.kernel_initializer, name="ffn",
                                  dtype=self.dtype_policy)
        self._dropout = HashedDropout(dropout, dtype=self.dtype_policy)
        self.supports_masking = True
        mark_scale_invariant(self)

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise ValueError(f"The inputs' last dimension ({hidden}) must be divisible by num_heads={self.num_heads}")
        self._attention = SIMultiHeadAttention(
            self.num_heads, hidden // self.num_heads, dropout=self.attention_dropout,
            kernel_initializer=self.kernel_initializer, name="attention", dtype=self.dtype_policy,
        )
        self._attention_norm.build(input_shape)
        self._ffn_norm.build(input_shape)
        self._attention.build(input_shape)
        self._ffn.build(input_shape)
        self.built = True

    def call(self, inputs, attention_mask=None, mask=None, training=None):
        if mask is not None:  # padded keys are never attended to
            padding = keras.ops.cast(mask, "float32")
            if attention_mask is None:
                attention_mask = padding
            else:
                attention_mask = keras.ops.cast(attention_mask, "float32")
                attention_mask = attention_mask * (padding if len(attention_mask.shape) == 2 else padding[:, None, :])
        dtype = inputs.dtype
        u = keras.ops.cast(self._attention_norm(inputs), dtype)
        h = inputs + self._dropout(self._attention(u, attention_mask=attention_mask, training=training),
                                   training=training)
        u = keras.ops.cast(self._ffn_norm(h), dtype)
        return h + self._dropout(self._ffn(u, training=training), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, intermediate_dim=self.intermediate_dim, dropout=self.dropout,
            attention_dropout=self.attention_dropout, layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
