"""Weight-standardised convolution with a learnable gain (Brock et al., 2021, NFNets)."""

import keras
from keras import ops

from keras_si.layers._checks import check_non_negative


@keras.saving.register_keras_serializable(package="keras_si")
class WSConv2D(keras.layers.Conv2D):
    """`Conv2D` whose kernel is standardised per output channel before use.

    Scaled weight standardisation of the normaliser-free networks (Qiao et
    al., 2019; Brock et al., ICLR 2021 "Characterizing signal propagation...",
    and NFNets, 2021): for each output channel o (Keras layout: the kernel's
    last axis) with fan-in N = kh * kw * in_channels,

        W_hat[..., o] = gain[o] * (W[..., o] - mean_o) / sqrt(N * var_o + eps)

    so each output channel's kernel has mean 0 and variance 1/N (times the
    gain squared): activations keep their scale without a normalisation layer,
    and the convolution is invariant to the scale of `W` (not of `gain`).

    Args:
        filters: number of output channels, >= 1 (as `keras.layers.Conv2D`).
        kernel_size: an int or a pair of ints (as `keras.layers.Conv2D`).
        use_gain: learn a per-output-channel gain, initialised to 1 (default
            True). The name is NFNets' ("gain"); Keras's normalisation layers
            call the same factor `scale`/`gamma`, but there it scales
            normalised activations, here a standardised kernel.
        epsilon: added to `N * var`, >= 0 (default 1e-4, as in NFNets).
        **kwargs: every other `keras.layers.Conv2D` argument (`strides`,
            `padding`, `use_bias`, `lora_rank`, `name`, `dtype`, ...).

    Weights: `kernel`, `bias` (if `use_bias`), `gain` (if `use_gain`), all
    written to `.keras` / `.weights.h5` files and read back.

    Raises:
        ValueError: if `epsilon` is negative; when loading weights saved
            without the gain into a layer with `use_gain=True`; Keras's for
            its own arguments.

    Returns:
        (when called) as `keras.layers.Conv2D`: `[batch, rows', cols',
        filters]` with the default "channels_last", in the compute dtype.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import WSConv2D
    >>> conv = WSConv2D(4, 3, padding="same", epsilon=0.0)  # epsilon 0: exactly invariant
    >>> x = np.random.default_rng(0).normal(size=(1, 6, 6, 2)).astype("float32")
    >>> y = np.asarray(conv(x))
    >>> y.shape
    (1, 6, 6, 4)
    >>> _ = conv.kernel.assign(5.0 * conv.kernel)  # the kernel's scale does not matter
    >>> np.allclose(np.asarray(conv(x)), y, rtol=1e-5, atol=1e-5)
    True
    """

    def __init__(self, filters, kernel_size, use_gain=True, epsilon=1e-4, **kwargs):
        epsilon = check_non_negative("epsilon", epsilon)
        super().__init__(filters, kernel_size, **kwargs)
        self.use_gain = use_gain
        self.epsilon = epsilon

    def build(self, input_shape):
        # With `lora_rank`, Keras's build ends by enabling LoRA, which locks the
        # layer's state: no weight can be added after it. So build the plain
        # convolution, add the gain, then enable LoRA as Keras would have.
        lora_rank, self.lora_rank = self.lora_rank, None
        try:
            super().build(input_shape)
        finally:
            self.lora_rank = lora_rank
        if self.use_gain:
            self.gain = self.add_weight(name="gain", shape=(self.filters,), initializer="ones", dtype=self.dtype)
        else:
            self.gain = None
        if lora_rank:
            self.enable_lora(lora_rank, lora_alpha=self.lora_alpha)

    # Keras's convolutions override save_own_variables/load_own_variables with
    # an explicit list (kernel, then bias) instead of the default "every
    # variable the layer tracks", so a subclass's own weights are neither
    # written nor read by them: the trained gain was lost on save and
    # `load_model` failed ("expected 3 variables, but received 2"). The store
    # keys stay "0" (kernel) and "1" (bias, if any) as Keras writes them, and
    # the gain takes the next index; any variable a subclass adds must be
    # listed in `_own_extra_variables`.
    def _own_extra_variables(self):
        return [self.gain] if self.use_gain else []

    def save_own_variables(self, store):
        if not self.built:
            return
        super().save_own_variables(store)
        first = 1 + int(self.use_bias)
        for i, variable in enumerate(self._own_extra_variables(), start=first):
            store[str(i)] = variable

    def load_own_variables(self, store):
        # Keras's load first checks that the store holds as many entries as
        # the layer tracks variables (gain included), so a file written
        # without the gain fails loudly rather than silently resetting it.
        super().load_own_variables(store)
        if not self.built:
            return
        first = 1 + int(self.use_bias)
        for i, variable in enumerate(self._own_extra_variables(), start=first):
            variable.assign(store[str(i)])

    def standardized_kernel(self):
        """The kernel the convolution uses: `W_hat`, standardised per output channel, times the gain.

        Computed in float32 whatever the variable dtype, so the mean and
        variance of a float16 kernel do not lose precision, then cast to the
        compute dtype. Call it after the layer is built.

        Returns:
            A tensor of the kernel's shape, `[kh, kw, in_channels, filters]`,
            in the layer's compute dtype: for each output channel, mean 0 and
            variance `gain**2 * var / (N * var + epsilon)`, about
            `gain**2 / N` (N = kh * kw * in_channels, the fan-in).

        Example:

        >>> import numpy as np
        >>> from keras_si.layers import WSConv2D
        >>> conv = WSConv2D(8, 3)
        >>> conv.build((None, 5, 5, 4))
        >>> w = np.asarray(conv.standardized_kernel())
        >>> w.shape
        (3, 3, 4, 8)
        >>> np.allclose(w.mean(axis=(0, 1, 2)), 0.0, atol=1e-6), np.allclose(w.var(axis=(0, 1, 2)) * 36, 1.0, atol=1e-3)
        (True, True)
        """
        kernel = ops.cast(self.kernel, "float32")
        axes = tuple(range(len(kernel.shape) - 1))
        fan_in = 1
        for d in kernel.shape[:-1]:
            fan_in *= d
        mean = ops.mean(kernel, axis=axes, keepdims=True)
        var = ops.var(kernel, axis=axes, keepdims=True)
        w = (kernel - mean) * ops.rsqrt(var * fan_in + self.epsilon)
        if self.use_gain:
            w = w * ops.cast(self.gain, "float32")
        return ops.cast(w, self.compute_dtype)

    def convolution_op(self, inputs, kernel):
        # Keras's Conv2D.call passes self.kernel here; use the standardised one.
        return super().convolution_op(inputs, self.standardized_kernel())

    def get_config(self):
        config = super().get_config()
        config.update(use_gain=self.use_gain, epsilon=self.epsilon)
        return config
