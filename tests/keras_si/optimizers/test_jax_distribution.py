"""On JAX, `keras.distribution.DataParallel` over 2 host CPU devices trains as one device does.

The counterpart of the MirroredStrategy checks on TensorFlow
(tests/keras_si/optimizers/test_strategy_and_xla.py): SGDClip's threshold uses global
norms, which must be those of the global batch's gradient, not of a shard's.
Runs under KERAS_BACKEND=jax (tests/test_backends.py), with the two devices
that tests/conftest.py asks XLA for.
"""

import keras
import numpy as np
import pytest

import keras_si

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="keras.distribution is JAX's")

BATCH, STEPS = 16, 4


def _data():
    rng = np.random.RandomState(0)
    x = rng.randn(BATCH * STEPS, 6).astype("float32")
    y = (3.0 * np.tanh(x @ rng.randn(6, 3))).astype("float32")
    return x, y


def _train(make_optimizer, distribution=None):
    x, y = _data()
    keras.distribution.set_distribution(distribution)
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                                  keras.layers.LayerNormalization(name="norm"), keras.layers.Dense(3, name="out")])
        model.compile(optimizer=make_optimizer(), loss="mse")
        monitor = keras_si.SGDClipMonitor()
        history = model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0,
                            callbacks=[monitor] if isinstance(model.optimizer, keras_si.SGDClip) else [])
        return [np.array(w) for w in model.get_weights()], history.history
    finally:
        keras.distribution.set_distribution(None)


def _two_devices():
    devices = keras.distribution.list_devices("cpu")
    if len(devices) < 2:
        pytest.fail("tests/conftest.py must give JAX 2 host CPU devices (XLA_FLAGS)")
    return keras.distribution.DataParallel(devices=devices[:2])


@pytest.mark.parametrize("name,make", [
    ("SGDClip", lambda: keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5, momentum=0.9)),
    ("AGC(SGD)", lambda: keras_si.AGC(keras.optimizers.SGD(0.5, momentum=0.9), clipping=0.05)),
    ("LARS", lambda: keras_si.LARS(0.5, momentum=0.9, weight_decay=0.01)),
])
def test_data_parallel_equals_one_device(name, make):
    one, history = _train(make)
    two, _ = _train(make, _two_devices())
    if name == "SGDClip":
        assert history["clip_rate"][0] > 0, history  # the threshold was active, so its norms mattered
    # The same float32 step, the batch's sums split in two and added: a few
    # roundings of 6e-8 per step over 4 steps.
    for a, b in zip(two, one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
