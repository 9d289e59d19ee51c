"""Helpers shared by the tests: training runs to compare across set-ups."""

import keras
import numpy as np
import tensorflow as tf


_STRATEGY = []


def two_cpu_strategy():
    """The MirroredStrategy over the two logical CPU devices made in conftest.py.

    One instance serves the whole test session: every new MirroredStrategy
    restarts its collective instance keys, and TF's collective executor then
    confuses an all-reduce of one strategy with an earlier one of another
    strategy over the same devices ("Shape mismatch in the collective
    instance 100") as soon as the two differ in shape.
    """
    if not _STRATEGY:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
        if len(devices) < 2:
            raise RuntimeError("conftest.py must configure 2 logical CPU devices")
        _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
    return _STRATEGY[0]


def regression_data(n=32, d_in=6, d_out=3, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d_in).astype("float32")
    w = rng.randn(d_in, d_out).astype("float32")
    y = (np.tanh(x @ w) + 0.1 * rng.randn(n, d_out)).astype("float32")
    return x, y


def small_model(d_in=6, d_out=3, seed=0, conv=False):
    """A small model with dense kernels, biases and a LayerNorm (optionally a conv)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((d_in,))]
    if conv:
        layers += [
            keras.layers.Reshape((d_in, 1, 1)),
            keras.layers.Conv2D(4, (3, 1), padding="same", activation="relu", name="conv"),
            keras.layers.Flatten(),
        ]
    layers += [
        keras.layers.Dense(16, activation="relu", name="hidden"),
        keras.layers.LayerNormalization(name="norm"),
        keras.layers.Dense(d_out, name="out"),
    ]
    # Fixed layer names give fixed `variable.path`s ("hidden/kernel", ...).
    return keras.Sequential(layers, name="small_model")


def train_weights(make_optimizer, strategy=None, steps=4, batch_size=16, jit_compile=False,
                  conv=False, loss="mse", data=None, seed=0):
    """Trains `small_model` for `steps` batches and returns its weights (list of arrays).

    Shuffling is off and the global batch is the same with or without
    `strategy`, so two runs differ only in how the step is computed.
    """
    x, y = data if data is not None else regression_data(n=steps * batch_size, seed=seed)
    scope = strategy.scope() if strategy is not None else _null_scope()
    with scope:
        model = small_model(d_in=x.shape[1], d_out=y.shape[1], seed=seed, conv=conv)
        model.compile(optimizer=make_optimizer(), loss=loss, jit_compile=jit_compile)
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return [np.array(w) for w in model.get_weights()], model


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def assert_weights_close(a, b, rtol=1e-5, atol=1e-6):
    assert len(a) == len(b)
    for i, (wa, wb) in enumerate(zip(a, b)):
        np.testing.assert_allclose(wa, wb, rtol=rtol, atol=atol, err_msg=f"weight {i}")


def apply_gradient_sequence(optimizer, xs, grad_seq, names=None):
    """Applies fixed float gradients step by step to float32 variables made from `xs`; returns their values."""
    names = names or [f"v{i}" for i in range(len(xs))]
    variables = [keras.Variable(x, dtype="float32", name=n) for x, n in zip(xs, names)]
    for gs in grad_seq:
        optimizer.apply([tf.constant(g, tf.float32) for g in gs], variables)
    return [v.numpy() for v in variables]


def checkpoint_variables(path):
    """{name: value} of the variables saved in a tf.train checkpoint."""
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if n.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
    return {n: reader.get_tensor(n) for n in names}


def assert_checkpoints_close(actual, expected, rtol, atol, ignore=()):
    """Two checkpoints hold the same (more than 20) variables with values within the tolerances.

    `ignore`: name prefixes left out (e.g. "save_counter", the number of saves so far, which depends on
    how often the run checkpointed, not on what it trained).
    """
    a, b = (({n: v for n, v in checkpoint_variables(p).items() if not n.startswith(tuple(ignore))})
            for p in (actual, expected))
    assert sorted(a) == sorted(b), "the checkpoints hold different variables"
    assert len(a) > 20, f"only {len(a)} variables in {actual}"
    for name in b:
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, err_msg=name)
