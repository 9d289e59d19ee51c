"""keras_si.layers.Dropout: Keras's Dropout semantics, with a generator XLA compiles well."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si

RATE = 0.1
N = 1 << 20


@pytest.mark.parametrize("jit_compile", [False, True])
def test_mask_statistics_and_rescaling(jit_compile):
    x = tf.ones((N // 256, 256))
    layer = keras_si.layers.Dropout(RATE, seed=3)
    call = tf.function(lambda t: layer(t, training=True), jit_compile=jit_compile)
    first, second = call(x).numpy(), call(x).numpy()
    for out in (first, second):
        dropped = np.mean(out == 0)
        # Binomial(N, 0.1): std sqrt(0.1 * 0.9 / N) ~ 3e-4; 5 sigma.
        assert abs(dropped - RATE) < 1.5e-3
        # Kept entries are scaled by 1 / (1 - rate), as Keras does.
        np.testing.assert_array_equal(np.unique(out[out != 0]), np.float32(1.0) / np.float32(1 - RATE))
    # The seed advances: two calls draw different masks.
    assert np.mean((first == 0) != (second == 0)) > 0.1


def test_inference_and_rate_zero_are_identity():
    x = tf.random.normal((4, 8))
    np.testing.assert_array_equal(keras_si.layers.Dropout(RATE)(x, training=False), x)
    np.testing.assert_array_equal(keras_si.layers.Dropout(0.0)(x, training=True), x)


def test_same_seed_same_masks_and_noise_shape_goes_through_keras():
    x = tf.ones((64, 32))
    a = keras_si.layers.Dropout(0.5, seed=7)(x, training=True)
    b = keras_si.layers.Dropout(0.5, seed=7)(x, training=True)
    np.testing.assert_array_equal(a, b)
    shared = keras_si.layers.Dropout(0.5, noise_shape=(64, 1), seed=7)(x, training=True).numpy()
    assert np.all((shared == 0).all(axis=1) | (shared != 0).all(axis=1))  # whole rows kept or dropped


def test_serialization(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras_si.layers.Dropout(0.3, seed=1), keras.layers.Dense(2)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], keras_si.layers.Dropout) and loaded.layers[0].rate == 0.3
