"""keras_si.layers.HashedDropout: Keras's Dropout semantics, with a generator XLA compiles well."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from keras_si.layers.dropout import hash_keep_mask

RATE = 0.1
N = 1 << 20


@pytest.mark.parametrize("jit_compile", [False, True])
def test_mask_statistics_and_rescaling(jit_compile):
    x = tf.ones((N // 256, 256))
    layer = keras_si.layers.HashedDropout(RATE, seed=3)
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
    np.testing.assert_array_equal(keras_si.layers.HashedDropout(RATE)(x, training=False), x)
    np.testing.assert_array_equal(keras_si.layers.HashedDropout(0.0)(x, training=True), x)


def test_same_seed_same_masks_and_noise_shape_goes_through_keras():
    x = tf.ones((64, 32))
    a = keras_si.layers.HashedDropout(0.5, seed=7)(x, training=True)
    b = keras_si.layers.HashedDropout(0.5, seed=7)(x, training=True)
    np.testing.assert_array_equal(a, b)
    shared = keras_si.layers.HashedDropout(0.5, noise_shape=(64, 1), seed=7)(x, training=True).numpy()
    assert np.all((shared == 0).all(axis=1) | (shared != 0).all(axis=1))  # whole rows kept or dropped


def test_serialization(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras_si.layers.HashedDropout(0.3, seed=1), keras.layers.Dense(2)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], keras_si.layers.HashedDropout) and loaded.layers[0].rate == 0.3


def _lowbias32(x):
    """NumPy reference of the mixer (C. Wellons's lowbias32), on uint64 arrays reduced mod 2**32."""
    m = np.uint64(0xFFFFFFFF)
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x7FEB352D)) & m
    x = x ^ (x >> np.uint64(15))
    x = (x * np.uint64(0x846CA68B)) & m
    return x ^ (x >> np.uint64(16))


def _reference_keep_mask(shape, seed, rate):
    """hash_keep_mask from its docstring: keep entry i iff mix(mix(i + k1) ^ k2) >= round(rate * 2**32)."""
    m = np.uint64(0xFFFFFFFF)
    s0, s1 = (np.uint64(int(s) % 2**32) for s in seed)
    k1 = _lowbias32(s0 ^ np.uint64(0x9E3779B9))
    k2 = _lowbias32((s1 + k1) & m)
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    bits = _lowbias32(_lowbias32((index + k1) & m) ^ k2)
    return bits >= np.uint64(min(round(rate * 2.0**32), 2**32 - 1))


@pytest.mark.parametrize("shape,seed,rate", [
    ((1000,), (0, 0), 0.1),
    ((7, 33, 5), (12345, 2**32 - 1), 0.5),
    ((4, 3, 16, 16), (-3, 2**40 + 7), 0.9),  # int64 seed words wrap to their low 32 bits
])
def test_hash_mask_equals_numpy_reference(shape, seed, rate):
    got = hash_keep_mask(shape, tf.constant(seed, tf.int64), rate).numpy()
    np.testing.assert_array_equal(got, _reference_keep_mask(shape, seed, rate))


def test_hash_mask_statistics():
    """Drop rate, and no correlation between neighbours or between consecutive seeds.

    Keras's SeedGenerator advances the second seed word by one per draw, the
    weakest case for a counter-based generator. Each joint rate below is a
    Binomial proportion with p = 0.01 over ~N draws (std ~1e-4); 5 sigma.
    """
    shape = (64, 128, 128)
    first = ~hash_keep_mask(shape, tf.constant([5, 7], tf.int64), RATE).numpy()
    second = ~hash_keep_mask(shape, tf.constant([5, 8], tf.int64), RATE).numpy()
    for dropped in (first, second):
        assert abs(dropped.mean() - RATE) < 5 * np.sqrt(RATE * (1 - RATE) / dropped.size)
    pairs = {
        "consecutive seeds": (first, second),
        "neighbours along the last axis": (first[..., 1:], first[..., :-1]),
        "neighbours along the second axis": (first[:, 1:], first[:, :-1]),
        "entries 2**16 apart": (first.reshape(-1)[2**16:], first.reshape(-1)[:-2**16]),
    }
    for name, (a, b) in pairs.items():
        both = np.mean(a & b)
        assert abs(both - RATE**2) < 5 * np.sqrt(RATE**2 / a.size), (name, both)


def test_dynamic_batch_under_xla():
    """Under XLA with an unknown batch dimension the mask is still the hashed one, with the right rate."""
    layer = keras_si.layers.HashedDropout(RATE, seed=5)
    call = tf.function(lambda t: layer(t, training=True), jit_compile=True,
                       input_signature=[tf.TensorSpec([None, 512], tf.float32)])
    seed = layer.seed_generator.state.numpy()
    out = call(tf.ones((1024, 512))).numpy()
    np.testing.assert_array_equal(out != 0, hash_keep_mask((1024, 512), tf.constant(seed), RATE).numpy())
