"""The scale-invariant feed-forward block: ReLU(u W1 + b1) W2, (0; 2)-homogeneous."""

import keras

from keras_si.layers._checks import check_positive_int, check_rate
from keras_si.layers.dropout import HashedDropout
from keras_si.layers.markers import mark_scale_invariant


@keras.saving.register_keras_serializable(package="keras_si")
class SIFeedForward(keras.layers.Layer):
    """The feed-forward block `ReLU(u W1 + b1) W2`, with no bias after `W2` (Li et al., ICML 2022, Table 2).

    Degrees (Table 2 of Li et al.): `u` has degree 0 (it comes out of a
    LayerNorm without affine); `u W1` degree 1; `+ b1` keeps 1 (a bias may be
    added to a degree-1 term only); ReLU keeps it; `W2` makes it 2. A bias
    after `W2` would add a degree-1 term to a degree-2 one, so there is none.
    ReLU rather than GELU: GELU is not homogeneous.

    Args:
        intermediate_dim: width of the hidden layer, >= 1 (KerasHub's word).
        output_dim: the size of the output's last dimension, >= 1 (default
            None: the input's last dimension). Keras's word for an output
            width that is one int (`keras.layers.Embedding(output_dim=)`);
            `SIMultiHeadAttention` says `output_shape` after
            `keras.layers.MultiHeadAttention`, whose signature it mirrors.
        dropout: dropout on the hidden activations, in [0, 1) (default 0).
        kernel_initializer: for both kernels (default "glorot_uniform"); the
            hidden bias starts at zero.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Raises:
        ValueError: for an argument out of the ranges above.

    Call args:
        inputs: `[..., input_dim]`.
        training: bool: apply the dropout when True.

    Returns:
        `[..., output_dim or input_dim]` in the layer's compute dtype. Each
        position is transformed on its own, so a Keras mask on the input
        passes through unchanged (`supports_masking`).

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import SIFeedForward
    >>> ffn = SIFeedForward(intermediate_dim=16, output_dim=4)
    >>> u = np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")
    >>> y = np.asarray(ffn(u))
    >>> y.shape
    (2, 3, 4)
    >>> for w in ffn.weights:  # (0; 2)-homogeneous: weights times 10, the output times 10**2
    ...     _ = w.assign(10.0 * w)
    >>> np.allclose(np.asarray(ffn(u)), 100.0 * y, rtol=1e-4, atol=1e-5)
    True
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
        self._dropout = HashedDropout(dropout, dtype=self.dtype_policy)
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
