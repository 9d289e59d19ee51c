"""Scale-invariant multi-head attention (Li et al., ICML 2022, Section 3)."""

import keras
from keras import ops

from keras_si.layers.base import check_non_negative, check_positive_int, check_rate, mark_scale_invariant
from keras_si.layers.dropout import Dropout


@keras.saving.register_keras_serializable(package="keras_si")
class SIMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention normalised by a row sum instead of a softmax.

    Per head i, with learned projections and no biases:

        S_i = ReLU((Q W_q_i) (K W_k_i)^T) * mask         (no 1/sqrt(d))
        P_i = S_i / max(rowsum(S_i), eps)
        out = sum_i P_i (V W_v_i) W_o_i                   (no output bias)

    Softmax is not homogeneous; ReLU then a row normalisation is: P is
    0-homogeneous in the parameters, so if Q, K, V have degree x in the
    parameters the output has degree x + 2 (the paper's (x, x, x; x + 2)).
    Masked scores are zeroed *before* the row sum (a softmax would use -inf),
    so padded keys never change the outputs at real positions. A row whose
    scores are all zero gets P = 0 and a zero output, never NaN; `eps` is tiny
    so that it does not break invariance for rows with small scores.

    Args:
        num_heads: number of heads, >= 1.
        key_dim: size of each head's query/key projection, >= 1.
        value_dim: size of each head's value projection (default None:
            `key_dim`).
        output_dim: size of the output (default None: the query's last
            dimension).
        dropout: dropout rate on the normalised scores P, in [0, 1) (default
            0; allowed: dropout multiplies by a constant, so it keeps the
            degree).
        epsilon: the floor of the row sums, >= 0 (default 1e-30).
        kernel_initializer: for all four projections (default
            "glorot_uniform").

    Raises:
        ValueError: for an argument out of the ranges above.

    Call args:
        query: `[batch, target, dim]`; value: `[batch, source, dim]`;
        key: optional, defaults to `value`;
        attention_mask: optional `[batch, target, source]` or key padding
            mask `[batch, source]`, 1 (or True) where attention is allowed.
        query_mask, value_mask, key_mask: optional `[batch, target]` /
            `[batch, source]` padding masks, as for `keras.layers.MultiHeadAttention`.
            Keras fills them in from the inputs' Keras masks (e.g. an
            `Embedding(mask_zero=True)` upstream) when `query` and `value` are
            both passed; they combine with `attention_mask` (all must allow a
            score). A masked query step gets a zero output.

    The output carries the query's Keras mask (`supports_masking`).
    """

    def __init__(self, num_heads, key_dim, value_dim=None, output_dim=None, dropout=0.0,
                 epsilon=1e-30, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        num_heads = check_positive_int("num_heads", num_heads)
        key_dim = check_positive_int("key_dim", key_dim)
        value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        output_dim = check_positive_int("output_dim", output_dim, allow_none=True)
        dropout = check_rate("dropout", dropout)
        epsilon = check_non_negative("epsilon", epsilon)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.epsilon = epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.supports_masking = True
        mark_scale_invariant(self)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        out = self.output_dim or query_shape[-1]

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

    def call(self, query, value=None, key=None, attention_mask=None, query_mask=None, value_mask=None,
             key_mask=None, training=None):
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
        return tuple(query_shape[:-1]) + (self.output_dim or query_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim,
            output_dim=self.output_dim, dropout=self.dropout, epsilon=self.epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
