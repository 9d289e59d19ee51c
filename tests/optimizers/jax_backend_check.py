"""SGDClip on the JAX backend vs the float64 reference; run in its own process.

    KERAS_BACKEND=jax python tests/optimizers/jax_backend_check.py

`test_jax_backend.py` runs it where JAX is installed (CI has no JAX; a GPU
machine with JAX but without TensorFlow can run it directly). It checks the
update inside `jax.jit(stateless_apply)` (how the JAX trainer runs
optimizers), the exclusion by `variable.path`, and a `model.fit`.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_si  # noqa: E402
from tests.optimizers.sgd_clip_reference import assert_close_to_reference, sgd_clip_reference  # noqa: E402

assert keras.backend.backend() == "jax"


def check_reference(momentum):
    rng = np.random.RandomState(0)
    shapes = [(7,), (5, 4), (3, 3, 2, 4), (300, 300)]  # the last takes the folded norm path
    xs = [rng.randn(*s) for s in shapes]
    grad_seq = [[20.0 * rng.randn(*s) for s in shapes] for _ in range(15)]
    opt = keras_si.SGDClip(0.1, weight_decay=0.05, momentum=momentum, exclude_from_weight_decay=["v1$"])
    variables = [keras.Variable(x.astype("float32"), name=f"v{i}") for i, x in enumerate(xs)]
    opt.build(variables)
    step = jax.jit(opt.stateless_apply)
    opt_vals, var_vals = [v.value for v in opt.variables], [v.value for v in variables]
    for gs in grad_seq:
        var_vals, opt_vals = step(opt_vals, [jax.numpy.asarray(g, "float32") for g in gs], var_vals)
    want, scales = sgd_clip_reference(xs, grad_seq, lambda t: 0.1, 0.05, 2.0, momentum,
                                      decay_mask=[True, False, True, True])
    assert sum(s < 1 for s in scales) > 5
    assert_close_to_reference(var_vals, want)


def check_fit():
    rng = np.random.RandomState(0)
    x = rng.randn(64, 6).astype("float32")
    y = rng.randn(64, 1).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5), loss="mse")
    h = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[keras_si.SGDClipMonitor()]).history
    assert h["clip_rate"][0] > 0 and np.isfinite(h["loss"][-1]), h


if __name__ == "__main__":
    for momentum in (0.0, 0.9):
        check_reference(momentum)
    check_fit()
    print("jax backend: SGDClip matches the float64 reference; fit + monitor ok; devices:", jax.devices())
