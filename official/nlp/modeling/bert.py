"""The standard BERT encoder (Devlin et al., 2019): post-LN, GELU, softmax attention."""

import keras
from keras import ops

from keras_si.layers import HashedDropout
from official.nlp.modeling.configs import ConfiguredEncoder


@keras.saving.register_keras_serializable(package="official")
def gelu_tanh(x):
    """GELU in the tanh approximation, as in the original BERT code and the Model Garden's BERT encoder."""
    return keras.activations.gelu(x, approximate=True)


class _MultiHeadAttention(keras.layers.MultiHeadAttention):
    """Keras's attention with its attention-probability dropout drawn by `keras_si.layers.HashedDropout`.

    Keras's own dropout is pathologically slow under XLA on the CPU (see that
    class); everything else is Keras's layer, variables and names included.
    """

    def _build_attention(self, rank):
        super()._build_attention(rank)
        self._dropout_layer = HashedDropout(rate=self._dropout, dtype=self.dtype_policy, seed=self.seed)


@keras.saving.register_keras_serializable(package="official")
class BertTransformerBlock(keras.layers.Layer):
    """Post-LN block: `h = LN(h + MHA(h)); h = LN(h + FF(h))`, GELU (tanh approximation) feed-forward."""

    def __init__(self, num_heads, intermediate_dim, dropout=0.1, attention_dropout=0.1,
                 initializer_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.initializer_std = initializer_std

    def build(self, input_shape):
        hidden = input_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_std)
        self.attention = _MultiHeadAttention(
            self.num_heads, hidden // self.num_heads, dropout=self.attention_dropout,
            kernel_initializer=init, name="attention",
        )
        self.attention.build(input_shape, input_shape)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32", name="attention_norm")
        self.attention_norm.build(input_shape)
        self.intermediate = keras.layers.Dense(self.intermediate_dim, activation=gelu_tanh,
                                               kernel_initializer=init, name="intermediate")
        self.intermediate.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, kernel_initializer=init, name="output")
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.output_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32", name="output_norm")
        self.output_norm.build(input_shape)
        self._dropout = HashedDropout(self.dropout)
        self.built = True

    def call(self, h, attention_mask=None, training=None):
        dtype = h.dtype
        mask = None
        if attention_mask is not None:
            m = ops.cast(attention_mask, "bool")
            mask = m[:, None, :] & ops.ones_like(m)[:, :, None] if len(m.shape) == 2 else m
        a = self.attention(h, h, attention_mask=mask, training=training)
        h = ops.cast(self.attention_norm(h + self._dropout(a, training=training)), dtype)
        f = self.output_dense(self.intermediate(h))
        return ops.cast(self.output_norm(h + self._dropout(f, training=training)), dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, intermediate_dim=self.intermediate_dim, dropout=self.dropout,
                      attention_dropout=self.attention_dropout, initializer_std=self.initializer_std)
        return config


@keras.saving.register_keras_serializable(package="official")
class BertEncoder(ConfiguredEncoder):
    """Embeddings (token + position + type) -> LayerNorm -> L post-LN blocks.

    Call: a dict with `input_word_ids`, `input_mask`, `input_type_ids`;
    returns the sequence output. `word_embeddings` is the token table, which
    the masked-LM head ties its output projection to.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        init = keras.initializers.TruncatedNormal(stddev=c.initializer_std)
        self.token_embedding = keras.layers.Embedding(c.vocab_size, c.hidden_dim, embeddings_initializer=init,
                                                      name="token_embedding")
        self.type_embedding = keras.layers.Embedding(c.type_vocab_size, c.hidden_dim, embeddings_initializer=init,
                                                     name="type_embedding")
        self._init = init
        self.embedding_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32", name="embedding_norm")
        self._dropout = HashedDropout(c.dropout)
        self.blocks = [
            BertTransformerBlock(c.num_heads, c.intermediate_dim, c.dropout, c.attention_dropout,
                                 c.initializer_std, name=f"layer_{i}")
            for i in range(c.num_layers)
        ]

    def build(self, input_shape):
        ids_shape = input_shape["input_word_ids"]
        c = self.config
        self.token_embedding.build(ids_shape)
        self.type_embedding.build(ids_shape)
        self.position_embeddings = self.add_weight(name="position_embedding",
                                                   shape=(c.max_sequence_length, c.hidden_dim),
                                                   initializer=self._init)
        hidden_shape = tuple(ids_shape) + (c.hidden_dim,)
        self.embedding_norm.build(hidden_shape)
        for block in self.blocks:
            block.build(hidden_shape)
        self.built = True

    @property
    def word_embeddings(self):
        return self.token_embedding.embeddings

    def call(self, inputs, training=None):
        ids = inputs["input_word_ids"]
        e = self.token_embedding(ids) + ops.expand_dims(self.position_embeddings[: ops.shape(ids)[1]], 0)
        if inputs.get("input_type_ids") is not None:
            e = e + self.type_embedding(inputs["input_type_ids"])
        h = self._dropout(ops.cast(self.embedding_norm(e), self.compute_dtype), training=training)
        for block in self.blocks:
            h = block(h, attention_mask=inputs.get("input_mask"), training=training)
        return h
