"""Quickstart: train a small scale-invariant network with SGDClip.

The data is generated here (no download): 20-dimensional Gaussian inputs
labelled into 5 classes by a random "teacher" network. The model's body is
scale invariant: bias-free Dense layers each followed by a LayerNorm without
gain and bias, so multiplying all body weights by any c > 0 leaves the output
unchanged. The body is trained with SGDClip (SGD + weight decay + relative
global clipping, Li et al., ICML 2022); the small classifier head, which is
not scale invariant, with Adam, through `keras.optimizers.MultiOptimizer`.

To show the recipe's robustness, the body is trained twice: from the usual
initialisation and from one 100x larger. SGD + weight decay shrinks the large
weights back to the equilibrium norm (it needs about ln(100^2) / (2 eta lam)
steps, so eta * lam = 0.01 here), and both runs reach a similar accuracy.
Watch `weight_norm`, `effective_learning_rate` (eta / ||x||^2) and `clip_rate` on the
progress bar.

    .venv/bin/python examples/quickstart.py
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_si  # noqa: E402

CLASSES, DIM = 5, 20


def make_data(n, seed):
    rng = np.random.RandomState(seed)
    teacher = [rng.randn(DIM, 64), rng.randn(64, CLASSES)]
    x = rng.randn(n, DIM).astype("float32")
    y = np.argmax(np.maximum(x @ teacher[0], 0) @ teacher[1], axis=1)
    return x, y


def make_model(init_scale):
    def ln():  # LayerNorm without gain and bias: output degree 0 in the weights
        return keras.layers.LayerNormalization(center=False, scale=False, epsilon=1e-9)

    init = keras.initializers.RandomNormal(stddev=0.2 * init_scale, seed=1)
    inputs = keras.Input((DIM,))
    h = keras.layers.Dense(128, use_bias=False, kernel_initializer=init, name="body_1")(inputs)
    h = keras.layers.ReLU()(ln()(h))
    h = keras.layers.Dense(128, use_bias=False, kernel_initializer=init, name="body_2")(h)
    h = keras.layers.ReLU()(ln()(h))
    outputs = keras.layers.Dense(CLASSES, name="head")(h)
    return keras.Model(inputs, outputs)


def train(init_scale, x, y, x_val, y_val, epochs=10):
    keras.utils.set_random_seed(0)
    model = make_model(init_scale)
    # The paper's schedule: constant, divided by 10 at 60% and 90% of training.
    steps = epochs * (len(x) // 64)
    lr = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(0.6 * steps), int(0.9 * steps)], [0.2, 0.02, 0.002]
    )
    body = keras_si.SGDClip(learning_rate=lr, weight_decay=5e-2, clip_factor=2.0)
    head = keras.optimizers.Adam(3e-3)
    model.compile(
        optimizer=keras.optimizers.MultiOptimizer(lambda v: body if v.path.startswith("body_") else head),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"\n=== body initialised at {init_scale:g}x the usual scale ===")
    history = model.fit(
        x, y, batch_size=64, epochs=epochs, validation_data=(x_val, y_val), verbose=2,
        callbacks=[keras_si.SGDClipMonitor()],
    )
    return history.history


def main():
    x_all, y_all = make_data(10000, seed=0)
    x, y, x_val, y_val = x_all[:8000], y_all[:8000], x_all[8000:], y_all[8000:]
    results = {scale: train(scale, x, y, x_val, y_val) for scale in (1.0, 100.0)}
    print("\ninit scale | final ||x|| | clip rate (last epoch) | val accuracy")
    for scale, h in results.items():
        print(f"{scale:10g} | {h['weight_norm'][-1]:11.3f} | {h['clip_rate'][-1]:22.3f} | {h['val_accuracy'][-1]:.3f}")


if __name__ == "__main__":
    main()
