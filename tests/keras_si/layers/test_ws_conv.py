"""WSConv2D (keras_si/layers/ws_conv.py): standardisation and kernel-scale invariance (saving: test_layer_saving.py)."""

import numpy as np

from keras_si import layers as L
from keras_si.invariance import scaled_variables


def test_ws_conv_standardizes_and_is_invariant_to_kernel_scale():
    rng = np.random.RandomState(10)
    x = rng.randn(2, 9, 9, 3).astype("float32")
    conv = L.WSConv2D(5, 3, epsilon=0.0)
    y = np.asarray(conv(x))
    w = np.asarray(conv.standardized_kernel(), np.float64).reshape(-1, 5)
    np.testing.assert_allclose(w.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(w.var(axis=0) * w.shape[0], 1.0, rtol=1e-4)
    with scaled_variables([conv.kernel], 37.0):
        np.testing.assert_allclose(np.asarray(conv(x)), y, rtol=1e-4, atol=1e-5)
