"""A float64 NumPy SAM/ASAM written from the papers' Algorithm 1, and the small problem it is checked on.

Used by tests/keras_si/test_sam.py, which `make test` runs on TensorFlow and tests/test_backends.py on JAX and
PyTorch; it imports no backend itself (NumPy, and Keras only to build the model), so it runs wherever Keras does.
"""

import keras
import numpy as np

D_IN, HIDDEN, D_OUT, BATCH, STEPS = 5, 7, 3, 16, 4
LR, MOMENTUM = 0.1, 0.9


# ---------------------------------------------------------------- the reference
def mlp_loss_and_grads(w, x, y):
    """Loss and gradients of mean((tanh(x W1 + b1) W2 + b2 - y)^2), by hand, float64."""
    w1, b1, w2, b2 = w
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    dout = 2.0 * (out - y) / out.size
    dz = (dout @ w2.T) * (1.0 - h**2)
    return np.mean((out - y) ** 2), [x.T @ dz, dz.sum(0), h.T @ dout, dout.sum(0)]


def reference_ascent(w, g, rho, adaptive, eta):
    """e = rho g / ||g|| (SAM) or rho T^2 g / ||T g|| with T = |w| + eta (ASAM)."""
    t = [np.abs(wi) + eta if adaptive else np.ones_like(wi) for wi in w]
    norm = np.sqrt(sum(np.sum((ti * gi) ** 2) for ti, gi in zip(t, g)))
    return [rho * ti * ti * gi / norm for ti, gi in zip(t, g)]


def reference_sam(w, x, y, rho, adaptive=False, eta=0.01, splits=1):
    """STEPS SAM steps with Keras's SGD momentum (v <- m v - lr g; w <- w + v).

    `splits` > 1 is m-sharpness: the batch is cut into `splits` contiguous parts
    (the replicas' parts under MirroredStrategy), each part is perturbed with its
    own gradient, and the parts' gradients at their perturbed points are averaged.
    """
    w = [wi.astype(np.float64) for wi in w]
    v = [np.zeros_like(wi) for wi in w]
    losses = []
    for s in range(STEPS):
        xb, yb = x[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH]
        losses.append(mlp_loss_and_grads(w, xb, yb)[0])
        total = [np.zeros_like(wi) for wi in w]
        for xp, yp in zip(np.split(xb, splits), np.split(yb, splits)):
            e = reference_ascent(w, mlp_loss_and_grads(w, xp, yp)[1], rho, adaptive, eta)
            g2 = mlp_loss_and_grads([wi + ei for wi, ei in zip(w, e)], xp, yp)[1]
            total = [t + gi / splits for t, gi in zip(total, g2)]
        v = [MOMENTUM * vi - LR * gi for vi, gi in zip(v, total)]
        w = [wi + vi for wi, vi in zip(w, v)]
    return w, losses


# ---------------------------------------------------------------- the Keras side
def data(seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(STEPS * BATCH, D_IN)
    y = np.sin(x @ rng.randn(D_IN, D_OUT)) + 0.1 * rng.randn(STEPS * BATCH, D_OUT)
    return x, y


def mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((D_IN,)),
        keras.layers.Dense(HIDDEN, activation="tanh", name="hidden"),
        keras.layers.Dense(D_OUT, name="out"),
    ])
