"""The scale-invariant input side: embeddings (degree 1) -> NA -> bias-free Dense (degree 2)."""

import keras
from keras import ops

from keras_si.layers._checks import check_non_negative, check_positive_int, check_rate
from keras_si.layers.dropout import HashedDropout
from keras_si.layers.markers import mark_scale_invariant
from keras_si.layers.normalization import SI_EPSILON, layer_normalization_with_affine


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
        vocab_size: number of token ids, >= 1.
        hidden_dim: the embedding and output width, >= 1.
        max_sequence_length: the longest sequence, >= 1: the number of rows
            of the position table (default 512).
        type_vocab_size: number of segment types, >= 1 (default 2).
        dropout: dropout after the LayerNorm, in [0, 1) (default 0).
        embeddings_initializer: for the token, position and segment tables
            (default "glorot_uniform").
        kernel_initializer: for the projection (default "glorot_uniform").
        layer_norm_epsilon: the LayerNorm's epsilon, >= 0 (default
            `SI_EPSILON`).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Names: KerasHub's (`hidden_dim`, `max_sequence_length`,
    `layer_norm_epsilon`) and Keras's (`embeddings_initializer`, as in
    `keras.layers.Embedding`). `vocab_size` and `type_vocab_size` (KerasHub
    says `vocabulary_size` and `num_segments`) are BERT's names, which
    `official.nlp`'s encoder configuration and checkpoints use too.

    Raises:
        ValueError: for an argument out of the ranges above; at build, if the
            sequence length of `token_ids` exceeds `max_sequence_length`.

    Call args:
        token_ids: int `[batch, seq]`, in [0, vocab_size).
        type_ids: optional int `[batch, seq]`, in [0, type_vocab_size)
            (default None: no segment embedding is added).
        training: bool: apply the dropout when True.

    Returns:
        `[batch, seq, hidden_dim]` in the layer's compute dtype, of degree 2
        in the layer's weights.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import SIEmbeddings
    >>> embeddings = SIEmbeddings(vocab_size=30, hidden_dim=8, max_sequence_length=16)
    >>> ids = np.array([[1, 2, 3, 4]])
    >>> h = np.asarray(embeddings(ids))
    >>> h.shape
    (1, 4, 8)
    >>> for w in embeddings.weights:  # every weight times 10: the output times 10**2
    ...     _ = w.assign(10.0 * w)
    >>> np.allclose(np.asarray(embeddings(ids)), 100.0 * h, rtol=1e-4, atol=1e-5)
    True
    """

    def __init__(self, vocab_size, hidden_dim, max_sequence_length=512, type_vocab_size=2, dropout=0.0,
                 embeddings_initializer="glorot_uniform", kernel_initializer="glorot_uniform",
                 layer_norm_epsilon=SI_EPSILON, **kwargs):
        super().__init__(**kwargs)
        vocab_size = check_positive_int("vocab_size", vocab_size)
        hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        max_sequence_length = check_positive_int("max_sequence_length", max_sequence_length)
        type_vocab_size = check_positive_int("type_vocab_size", type_vocab_size)
        dropout = check_rate("dropout", dropout)
        layer_norm_epsilon = check_non_negative("layer_norm_epsilon", layer_norm_epsilon)
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.layer_norm_epsilon = layer_norm_epsilon
        self._token = keras.layers.Embedding(vocab_size, hidden_dim,
                                             embeddings_initializer=self.embeddings_initializer,
                                             name="token_embedding", dtype=self.dtype_policy)
        self._type = keras.layers.Embedding(type_vocab_size, hidden_dim,
                                            embeddings_initializer=self.embeddings_initializer, name="type_embedding",
                                            dtype=self.dtype_policy)
        self._norm = layer_normalization_with_affine("embedding_norm", layer_norm_epsilon)
        self._dropout = HashedDropout(dropout, dtype=self.dtype_policy)
        self._projection = keras.layers.Dense(hidden_dim, use_bias=False, kernel_initializer=self.kernel_initializer,
                                              name="projection", dtype=self.dtype_policy)
        mark_scale_invariant(self)

    def build(self, token_ids_shape, type_ids_shape=None):
        if token_ids_shape[1] is not None and token_ids_shape[1] > self.max_sequence_length:
            raise ValueError(f"The sequence length {token_ids_shape[1]} of `token_ids` exceeds "
                             f"max_sequence_length={self.max_sequence_length}")
        self._token.build(token_ids_shape)
        self._type.build(token_ids_shape)
        self.position_embeddings = self.add_weight(
            name="position_embedding", shape=(self.max_sequence_length, self.hidden_dim),
            initializer=self.embeddings_initializer,
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
            vocab_size=self.vocab_size, hidden_dim=self.hidden_dim, max_sequence_length=self.max_sequence_length,
            type_vocab_size=self.type_vocab_size, dropout=self.dropout, layer_norm_epsilon=self.layer_norm_epsilon,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
