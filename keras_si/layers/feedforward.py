"""The scale-invariant feed-forward block: ReLU(u W1 + b1) W2, (0; 2)-homogeneous."""

import keras

from keras_si.layers.base import check_positive_int, check_rate, mark_scale_invariant
from keras_si.layers.dropout import Dropout


@keras.saving.register_keras_serializable(package="keras_si")
class SIFeedForward(keras.layers.Layer):
    """`ReLU(u W1 + b1) W2`, with no bias after `W2`.

    Degrees (Table 2 of Li et al.): `u` has degree 0 (it comes out of a
    LayerNorm without affine); `u W1` degree 1; `+ b1` keeps 1 (a bias may be
    added to a degree-1 term only); ReLU keeps it; `W2` makes it 2. A bias
    after `W2` would add a degree-1 term to a degree-2 one, so there is none.
    ReLU rather than GELU: GELU is not homogeneous.

    Args:
        intermediate_dim: width of the hidden layer, >= 1.
        output_dim: output width (default None: the input's last dimension).
        dropout: dropout on the hidden activations, in [0, 1) (default 0).
        kernel_initializer: for both kernels (default "glorot_uniform").

    Raises:
        ValueError: for an argument out of the ranges above.

    Each position is transformed on its own, so a Keras mask on the input
    passes through unchanged (`supports_masking`).
    """

    def __init__(self, intermediate_dim, output_dim=None, dropout=0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        output_dim = check_positive_int("output_dim", output_dim, allow_none=True)
        dropout = check_rate("dropout", dropout)
        self.intermediate_dim = intermediate_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._inner = keras.layers.Dense(
            intermediate_dim, activation="relu", kernel_initializer=self.kernel_initializer, name="inner",
            dtype=self.dtype_policy,
        )
        self._dropout = Dropout(dropout, dtype=self.dtype_policy)
        self._outer = None
        self.supports_masking = True
        mark_scale_invariant(self)

    def build(self, input_shape):
        self._inner.build(input_shape)
        self._outer = keras.layers.Dense(
            self.output_dim or input_shape[-1], use_bias=False,
            kernel_initializer=self.kernel_initializer, name="outer",
            dtype=self.dtype_policy,
        )
        self._outer.build(tuple(input_shape[:-1]) + (self.intermediate_dim,))
        self.built = True

    def call(self, inputs, training=None):
        return self._outer(self._dropout(self._inner(inputs), training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            intermediate_dim=self.intermediate_dim, output_dim=self.output_dim, dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
