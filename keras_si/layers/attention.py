"""Scale-invariant multi-head attention (Li et al., ICML 2022, Section 3)."""

import keras
from keras import ops

from keras_si.layers._checks import check_non_negative, check_positive_int, check_rate
from keras_si.layers.dropout import HashedDropout
from keras_si.layers.markers import mark_scale_invariant


@keras.saving.register_keras_serializable(package="keras_si")
class SIMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention normalised by a row sum instead of a softmax (Li et al., ICML 2022).

    Per head i, with learned projections and no biases:

        S_i = ReLU((Q W_q_i) (K W_k_i)^T) * mask         (no 1/sqrt(d))
        P_i = S_i / max(rowsum(S_i), epsilon)
        out = sum_i P_i (V W_v_i) W_o_i                   (no output bias)

    Softmax is not homogeneous; ReLU then a row normalisation is: P is
    0-homogeneous in the parameters, so if Q, K, V have degree x in the
    parameters the output has degree x + 2 (the paper's (x, x, x; x + 2),
    Section 3 and Table 2). Masked scores are zeroed *before* the row sum (a
    softmax would use -inf), so padded keys never change the outputs at real
    positions. A row whose scores are all zero gets P = 0 and a zero output,
    never NaN; `epsilon` is tiny so that it does not break invariance for
    rows with small scores. Unlike a softmax's, whose probabilities move by
    at most the scores' absolute error, P moves by that error divided by the
    row sum: a row whose positive scores are all small is sensitive to
    rounding (for instance of Q and K in float16 under a mixed policy; the
    scores and their normalisation are computed in float32).

    The arguments and call arguments are `keras.layers.MultiHeadAttention`'s
    (same names, same order), minus what would break homogeneity
    (`use_bias`, softmax-specific options) or what this layer does not
    implement (`attention_axes`, `return_attention_scores`,
    `use_causal_mask`: pass a causal `attention_mask`).

    Args:
        num_heads: number of heads, >= 1.
        key_dim: size of each head's query/key projection, >= 1.
        value_dim: size of each head's value projection, >= 1 (default None:
            `key_dim`).
        dropout: dropout rate on the normalised scores P, in [0, 1) (default
            0; allowed: dropout multiplies by a constant, so it keeps the
            degree).
        output_shape: the size of the output's last dimension, an int >= 1 or
            a one-element tuple/list (Keras's spelling; this layer's output
            has one feature axis) (default None: the query's last dimension).
        epsilon: the floor of the row sums, >= 0 (default 1e-30).
        kernel_initializer: for all four projections (default
            "glorot_uniform").
        seed: an int seeding the dropout (default None: a random seed).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Raises:
        ValueError: for an argument out of the ranges above.

    Call args:
        query: `[batch, target, query_dim]`.
        value: `[batch, source, value_dim_in]` (default None: `query`,
            self-attention).
        key: `[batch, source, key_dim_in]` (default None: `value`).
        query_mask, value_mask, key_mask: optional `[batch, target]` /
            `[batch, source]` padding masks, as for
            `keras.layers.MultiHeadAttention`. Keras fills them in from the
            inputs' Keras masks (e.g. an `Embedding(mask_zero=True)`
            upstream) when `query` and `value` are both passed; they combine
            with `attention_mask` (all must allow a score). A masked query
            step gets a zero output.
        attention_mask: optional `[batch, target, source]` or key padding
            mask `[batch, source]`, 1 (or True) where attention is allowed.
        training: bool: apply the dropout when True.

    Returns:
        `[batch, target, output_shape or query_dim]` in the layer's compute
        dtype; it carries the query's Keras mask (`supports_masking`).

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import SIMultiHeadAttention
    >>> attention = SIMultiHeadAttention(num_heads=2, key_dim=4, output_shape=6)
    >>> x = np.random.default_rng(0).normal(size=(1, 5, 8)).astype("float32")
    >>> y = np.asarray(attention(x))
    >>> y.shape
    (1, 5, 6)
    >>> for w in attention.weights:  # all four projections times 10: the output times 10**2
    ...     _ = w.assign(10.0 * w)
    >>> np.allclose(np.asarray(attention(x)), 100.0 * y, rtol=1e-4, atol=1e-6)
    True
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, output_shape=None, epsilon=1e-30,
                 kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        num_heads = check_positive_int("num_heads", num_heads)
        key_dim = check_positive_int("key_dim", key_dim)
        value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        dropout = check_rate("dropout", dropout)
        epsilon = check_non_negative("epsilon", epsilon)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        # Kept private, as Keras's MultiHeadAttention does: a public
        # `output_shape` attribute is what `Model.summary()` reads as the
        # layer's output shape.
        self._output_shape = self._check_output_shape(output_shape)
        self.epsilon = epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self._dropout = HashedDropout(dropout, seed=seed, dtype=self.dtype_policy)
        self.supports_masking = True
        mark_scale_invariant(self)

    @staticmethod
    def _check_output_shape(output_shape):
        if output_shape is None:
            return None
        dims = tuple(output_shape) if isinstance(output_shape, (tuple, list)) else (output_shape,)
        if len(dims) != 1:
            raise ValueError("`output_shape` must be an int or a one-element tuple (this layer's output has one "
                             f"feature axis). Received: output_shape={output_shape!r}")
        return (check_positive_int("output_shape", dims[0]),)

    def _output_dim(self, query_shape):
        return self._output_shape[0] if self._output_shape else query_shape[-1]

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        out = self._output_dim(query_shape)

        def kernel(name, shape):
            return self.add_weight(name=name, shape=shape, initializer=self.kernel_initializer)

        self.query_kernel = kernel("query_kernel", (query_shape[-1], self.num_heads, self.key_dim))
        self.key_kernel = kernel("key_kernel", (key_shape[-1], self.num_heads, self.key_dim))
        self.value_kernel = kernel("value_kernel", (value_shape[-1], self.num_heads, self.value_dim))
        self.output_kernel = kernel("output_kernel", (self.num_heads, self.value_dim, out))
        # Per-unit statistics (AGC, SGDP/AdamP's channel view): a unit of a projection is one (head, dimension)
        # output; `keras_si.optimizers.unit_axes` reads this attribute.
        for projection in (self.query_kernel, self.key_kernel, self.value_kernel):
            projection.unit_axes = (1, 2)
        self.built = True

    def call(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, training=None):
        value = query if value is None else value
        key = value if key is None else key
        q = ops.einsum("btd,dhk->bhtk", query, self.query_kernel)
        k = ops.einsum("bsd,dhk->bhsk", key, self.key_kernel)
        v = ops.einsum("bsd,dhk->bhsk", value, self.value_kernel)
        # Scores and their normalisation in float32: the row sum of many
        # float16 products overflows easily.
        scores = ops.relu(ops.einsum("bhtk,bhsk->bhts", ops.cast(q, "float32"), ops.cast(k, "float32")))
        mask = self._allowed(attention_mask, query_mask, value_mask, key_mask)
        if mask is not None:
            scores = scores * mask[:, None, :, :]  # the same for every head
        row_sum = ops.sum(scores, axis=-1, keepdims=True)
        probs = scores / ops.maximum(row_sum, self.epsilon)
        probs = self._dropout(ops.cast(probs, self.compute_dtype), training=training)
        context = ops.einsum("bhts,bhsk->bhtk", probs, v)
        return ops.einsum("bhtk,hko->bto", context, self.output_kernel)

    @staticmethod
    def _allowed(attention_mask, query_mask, value_mask, key_mask):
        """1.0 where a score is allowed, `[batch, target or 1, source or 1]` float32, or None."""
        factors = []
        if attention_mask is not None:
            m = ops.cast(attention_mask, "float32")
            factors.append(m[:, None, :] if len(m.shape) == 2 else m)  # key padding or [b, t, s]
        if query_mask is not None:
            factors.append(ops.cast(query_mask, "float32")[:, :, None])
        for m in (value_mask, key_mask):
            if m is not None:
                factors.append(ops.cast(m, "float32")[:, None, :])
        if not factors:
            return None
        allowed = factors[0]
        for f in factors[1:]:
            allowed = allowed * f
        return allowed

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return tuple(query_shape[:-1]) + (self._output_dim(query_shape),)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim, dropout=self.dropout,
            output_shape=self._output_shape, epsilon=self.epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer), seed=self.seed,
        )
        return config
