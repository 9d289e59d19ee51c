"""Pretraining heads: masked LM (tied or untied) and next-sentence prediction."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="official")
class MaskedLMHead(keras.layers.Layer):
    """Dense -> activation -> LayerNorm -> vocabulary logits, at the masked positions only.

    The sequence output is gathered at `masked_lm_positions` *before* the
    head, so only `max_predictions_per_seq` rows per sequence go through the
    vocabulary projection (the most expensive matmul of pretraining).

    Args:
        vocab_size: output classes.
        activation: "gelu" as in BERT.
        tied: if True, `call` takes the token-embedding table and uses its
            transpose as the output projection (BERT); if False the head has
            its own projection (SIBERT: tying would put scale-invariant encoder
            weights into the non-invariant head).
        initializer_std: truncated-normal std of the head's kernels.
    """

    def __init__(self, vocab_size, activation="gelu", tied=True, initializer_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.activation = activation
        self.tied = tied
        self.initializer_std = initializer_std

    def build(self, sequence_output_shape, positions_shape=None, embedding_table_shape=None):
        hidden = sequence_output_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_std)
        self.transform = keras.layers.Dense(hidden, activation=self.activation, kernel_initializer=init,
                                            name="transform")
        self.transform.build((None, hidden))
        self.norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32", name="norm")
        self.norm.build((None, hidden))
        if not self.tied:
            self.output_kernel = self.add_weight(name="output_kernel", shape=(hidden, self.vocab_size),
                                                 initializer=init)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        self.built = True

    def call(self, sequence_output, positions, embedding_table=None):
        positions = ops.cast(positions, "int32")
        x = ops.take_along_axis(sequence_output, positions[:, :, None], axis=1)  # [B, P, H]
        x = ops.cast(self.norm(self.transform(x)), self.compute_dtype)
        if self.tied:
            if embedding_table is None:
                raise ValueError("A tied MaskedLMHead needs the embedding table.")
            logits = ops.einsum("bph,vh->bpv", x, ops.cast(embedding_table, x.dtype))
        else:
            logits = ops.einsum("bph,hv->bpv", x, self.output_kernel)
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, activation=self.activation, tied=self.tied,
                      initializer_std=self.initializer_std)
        return config


@keras.saving.register_keras_serializable(package="official")
class NextSentenceHead(keras.layers.Layer):
    """BERT's pooler (first token -> Dense(tanh)) -> Dense(2). Label 1 = B is random."""

    def __init__(self, initializer_std=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_std = initializer_std

    def build(self, sequence_output_shape):
        hidden = sequence_output_shape[-1]
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_std)
        self.pooler = keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="pooler")
        self.pooler.build((None, hidden))
        self.classifier = keras.layers.Dense(2, kernel_initializer=init, name="classifier")
        self.classifier.build((None, hidden))
        self.built = True

    def call(self, sequence_output):
        return ops.cast(self.classifier(self.pooler(sequence_output[:, 0, :])), "float32")

    def get_config(self):
        config = super().get_config()
        config.update(initializer_std=self.initializer_std)
        return config
