"""Weight-standardised convolution with a learnable gain (Brock et al., 2021, NFNets)."""

import keras
from keras import ops


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
        filters, kernel_size, ...: as `keras.layers.Conv2D`.
        use_gain: learn a per-output-channel gain (initialised to 1).
        epsilon: added to `N * var` (NFNets use 1e-4).
    """

    def __init__(self, filters, kernel_size, use_gain=True, epsilon=1e-4, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.use_gain = use_gain
        self.epsilon = epsilon

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_gain:
            self.gain = self.add_weight(name="gain", shape=(self.filters,), initializer="ones")

    def standardized_kernel(self):
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
