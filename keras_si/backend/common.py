"""The optimizer entry points of a backend with dense, global gradients (JAX, PyTorch).

`keras_si.backend.jax` and `keras_si.backend.torch` re-export these, and
`keras_si.backend.optimizer_backend()` falls back to this module on a Keras
backend keras_si does not train on ("numpy", where a saved model and its
optimizer can still be loaded for inference). Only `keras` is imported here.

What makes these the right defaults: on JAX and PyTorch Keras hands an
optimizer the gradients of the global batch (`keras.distribution` shards the
batch inside one traced step), as dense arrays; there is no replica context
to sum over and no sparse gradient type. The entry points are listed, with
their contracts, in `keras_si.backend.OPTIMIZER_ENTRY_POINTS`.
"""

import keras
from keras import ops


def in_xla_context():
    """False: only TensorFlow compiles some functions with XLA and others not."""
    return False


def has_strategy():
    """False: no distribution strategy changes how the optimizer must sum gradients."""
    return False


def replicas_to_reduce():
    """1: the gradients are already the global batch's."""
    return 1


def all_reduce_sum(grads):
    """`grads` as a list, unchanged: they are already the global batch's."""
    return list(grads)


def is_sparse(grad):
    """False: every gradient is a dense array on these backends."""
    return False


def reductions_are_serial():
    """False: XLA's (JAX) and PyTorch's reductions are parallel; no fold is needed."""
    return False


def sum_of_squares(x):
    """sum(x**2) of a dense float32/float64 tensor, in its dtype."""
    return ops.sum(ops.square(x))


def concrete_scalar(fn):
    """`fn()` as a Python float (PyTorch runs eagerly, so the value is always concrete)."""
    return float(keras.ops.convert_to_numpy(fn()))
