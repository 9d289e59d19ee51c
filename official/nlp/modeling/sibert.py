"""SIBERT: the scale-invariant BERT encoder of Li et al. (ICML 2022)."""

import keras
from keras import ops

from keras_si import layers as si_layers
from official.nlp.modeling.configs import ConfiguredEncoder


@keras.saving.register_keras_serializable(package="official")
class SIBertEncoder(ConfiguredEncoder):
    """Scale-invariant encoder: `SIEmbeddings` -> L x `SIEncoderBlock` -> N.

    Degrees in the encoder's parameters: embeddings and projection give a
    degree-2 stream, each PreNorm block keeps degree 2, and the final
    LayerNorm without affine makes the output degree 0, so the output is
    unchanged when all encoder weights are multiplied by any c > 0. All its
    weights form one scale-invariant group (the model is invariant to joint
    scaling only); the layer is marked so that
    `keras_si.scale_invariant_variables` finds them.

    Call: a dict with `input_word_ids`, `input_mask`, `input_type_ids`
    (int `[batch, seq]`); returns the sequence output `[batch, seq, hidden]`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        c = self.config
        init = keras.initializers.TruncatedNormal(stddev=c.initializer_std)
        self.embeddings = si_layers.SIEmbeddings(
            c.vocab_size, c.hidden_dim, c.max_sequence_length, c.type_vocab_size, dropout=c.dropout,
            embeddings_initializer=init, kernel_initializer=init, name="embeddings", dtype=self.dtype_policy,
        )
        self.blocks = [
            si_layers.SIEncoderBlock(c.num_heads, c.intermediate_dim, dropout=c.dropout,
                                     attention_dropout=c.attention_dropout, kernel_initializer=init,
                                     name=f"layer_{i}", dtype=self.dtype_policy)
            for i in range(c.num_layers)
        ]
        self.final_norm = si_layers.layer_normalization_without_affine("final_norm")
        si_layers.mark_scale_invariant(self)

    def build(self, input_shape):
        ids_shape = input_shape["input_word_ids"]
        self.embeddings.build(ids_shape, ids_shape)
        hidden_shape = tuple(ids_shape) + (self.config.hidden_dim,)
        for block in self.blocks:
            block.build(hidden_shape)
        self.final_norm.build(hidden_shape)
        self.built = True

    def call(self, inputs, training=None):
        h = self.embeddings(inputs["input_word_ids"], inputs.get("input_type_ids"), training=training)
        mask = inputs.get("input_mask")
        for block in self.blocks:
            h = block(h, attention_mask=mask, training=training)
        return ops.cast(self.final_norm(h), self.compute_dtype)
