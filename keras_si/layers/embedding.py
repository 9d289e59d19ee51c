"""The scale-invariant input side: embeddings (degree 1) -> NA -> bias-free Dense (degree 2)."""

import keras
from keras import ops

from keras_si.layers.base import check_non_negative, check_positive_int, check_rate, mark_scale_invariant
from keras_si.layers.dropout import Dropout
from keras_si.layers.normalization import SI_EPSILON, affine_norm


@keras.saving.register_keras_serializable(package="keras_si")
class SIEmbeddings(keras.layers.Layer):
    """Token + position + segment embeddings mapped to a degree-2 stream.

    The paper's figure for this part is not recoverable; this is keras_si's
    choice, built only from modules of the paper's Table 2 so that the
    degrees add up:

        e = E_tok[ids] + E_pos[0..T) + E_seg[types]   degree 1 (lookups are linear)
        e = NA(e)                                     degree 1 (LayerNorm with gain and bias,
                                                                as in BERT)
        h = e W   (no bias)                           degree 2: what the PreNorm blocks expect

    The blocks' residual stream must be 2-homogeneous (each branch adds a
    degree-2 term), hence the bias-free projection; a bias there would add
    degree 1 to degree 2.

    Args:
        vocab_size, hidden_dim: sizes, >= 1.
        max_positions: the longest sequence, >= 1 (default 512).
        type_vocab_size: number of segment types, >= 1 (default 2).
        dropout: dropout after the LayerNorm, in [0, 1) (default 0).
        embedding_initializer, kernel_initializer: initialisers (default
            "glorot_uniform").
        epsilon: the LayerNorm's epsilon, >= 0 (default `SI_EPSILON`).

    Raises:
        ValueError: for an argument out of the ranges above.

    Call args: `token_ids` and optional `type_ids`, int `[batch, seq]`.
    """

    def __init__(self, vocab_size, hidden_dim, max_positions=512, type_vocab_size=2, dropout=0.0,
                 embedding_initializer="glorot_uniform", kernel_initializer="glorot_uniform",
                 epsilon=SI_EPSILON, **kwargs):
        super().__init__(**kwargs)
        vocab_size = check_positive_int("vocab_size", vocab_size)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        max_positions = check_positive_int("max_positions", max_positions)
        type_vocab_size = check_positive_int("type_vocab_size", type_vocab_size)
        dropout = check_rate("dropout", dropout)
        epsilon = check_non_negative("epsilon", epsilon)
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.max_positions = max_positions
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.embedding_initializer = keras.initializers.get(embedding_initializer)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.epsilon = epsilon
        self._token = keras.layers.Embedding(vocab_size, hidden_dim, embeddings_initializer=self.embedding_initializer,
                                             name="token_embedding", dtype=self.dtype_policy)
        self._type = keras.layers.Embedding(type_vocab_size, hidden_dim,
                                            embeddings_initializer=self.embedding_initializer, name="type_embedding",
                                            dtype=self.dtype_policy)
        self._norm = affine_norm("embedding_norm", epsilon)
        self._dropout = Dropout(dropout, dtype=self.dtype_policy)
        self._projection = keras.layers.Dense(hidden_dim, use_bias=False, kernel_initializer=self.kernel_initializer,
                                              name="projection", dtype=self.dtype_policy)
        mark_scale_invariant(self)

    def build(self, token_ids_shape, type_ids_shape=None):
        if token_ids_shape[1] is not None and token_ids_shape[1] > self.max_positions:
            raise ValueError(f"The sequence length {token_ids_shape[1]} of `token_ids` exceeds "
                             f"max_positions={self.max_positions}")
        self._token.build(token_ids_shape)
        self._type.build(token_ids_shape)
        self.position_embeddings = self.add_weight(
            name="position_embedding", shape=(self.max_positions, self.hidden_dim),
            initializer=self.embedding_initializer,
        )
        self.position_embeddings.unit_axes = (0,)  # a row per position, as Keras's Embedding (per-unit statistics)
        shape = tuple(token_ids_shape) + (self.hidden_dim,)
        self._norm.build(shape)
        self._projection.build(shape)
        self.built = True

    def call(self, token_ids, type_ids=None, training=None):
        seq_len = ops.shape(token_ids)[1]
        e = self._token(token_ids) + ops.expand_dims(self.position_embeddings[:seq_len], 0)
        if type_ids is not None:
            e = e + self._type(type_ids)
        e = ops.cast(self._norm(e), self.compute_dtype)
        return self._projection(self._dropout(e, training=training))

    def compute_output_shape(self, token_ids_shape, type_ids_shape=None):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, hidden_dim=self.hidden_dim, max_positions=self.max_positions,
            type_vocab_size=self.type_vocab_size, dropout=self.dropout, epsilon=self.epsilon,
            embedding_initializer=keras.initializers.serialize(self.embedding_initializer),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
