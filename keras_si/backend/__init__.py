"""Backend-specific code of keras_si, one small module per Keras backend.

As Keras keeps `keras/src/backend/<name>/optimizer.py`, everything that needs
TensorFlow, JAX or PyTorch itself lives in `keras_si/backend/<name>.py` and is
imported only when Keras runs on that backend: `import keras_si` needs Keras
and one backend, any of the three. The rest of the library is written with
`keras.ops` and reaches these modules through `current()` (SAM's training
step) and `optimizer_backend()` (the optimizers' entry points below).

The optimizers' entry points, the same names in every backend module (as
Keras's `keras/src/backend/<name>/optimizer.py` give its optimizers one
interface); `keras_si.backend.common` holds the defaults of a backend with
dense, global gradients, which JAX and PyTorch re-export:

- `in_xla_context()`: whether the code being traced is compiled by XLA while
  other code is not (TensorFlow's `jit_compile=True`).
- `has_strategy()`: whether a distribution strategy is in scope whose
  limits the optimizer must check (`tf.distribute`).
- `replicas_to_reduce()`: how many replicas' gradients `all_reduce_sum` adds.
- `all_reduce_sum(grads)`: the global batch's gradients from per-replica ones.
- `concrete_scalar(fn)`: `fn()` as a Python float now, or None where it is traced.
- `reductions_are_serial()`: whether reductions to a scalar compile to a
  serial loop (TensorFlow's XLA:CPU), so that norms fold first.
- `sum_of_squares(x)`: the backend's fastest sum(x**2) of a dense tensor.
- `is_sparse(grad)`: whether `grad` is a sparse (row) gradient. Only where it
  can be True (TensorFlow's `tf.IndexedSlices`), the module also has
  `sparse_values`, `sparse_indices`, `map_sparse_values`, `cast_sparse`,
  `densify`, `combine_duplicate_rows` and `gather_rows`.

Keras's private API, where it must be used, is used in one place:
`keras_si.backend.keras_private`.
"""

import importlib

import keras

BACKENDS = ("tensorflow", "jax", "torch")

# The entry points every backend module has (tests/keras_si/backend checks it).
OPTIMIZER_ENTRY_POINTS = (
    "in_xla_context",
    "has_strategy",
    "replicas_to_reduce",
    "all_reduce_sum",
    "concrete_scalar",
    "reductions_are_serial",
    "sum_of_squares",
    "is_sparse",
)
# ... and those of a backend with sparse gradients.
SPARSE_ENTRY_POINTS = (
    "sparse_values",
    "sparse_indices",
    "map_sparse_values",
    "cast_sparse",
    "densify",
    "combine_duplicate_rows",
    "gather_rows",
)

# Modules by Keras backend name: the optimizers ask on every traced step.
_modules = {}


def current():
    """The keras_si backend module of the Keras backend in use.

    Returns:
        The module `keras_si.backend.tensorflow`, `.jax` or `.torch`.

    Raises:
        NotImplementedError: on another Keras backend (e.g. "numpy", which cannot train).
    """
    name = keras.backend.backend()
    if name not in BACKENDS:
        raise NotImplementedError(
            f"keras_si runs on the Keras backends {BACKENDS}; the Keras backend is {name!r} "
            "(set KERAS_BACKEND to one of them)."
        )
    return importlib.import_module(f"keras_si.backend.{name}")


def optimizer_backend():
    """The module whose entry points keras_si's optimizers call on the Keras backend in use.

    `current()` on TensorFlow, JAX and PyTorch; on another Keras backend
    (e.g. "numpy", which cannot train but can load a saved model with its
    optimizer) `keras_si.backend.common`, whose entry points assume dense
    gradients on one device.

    Returns:
        A module with the functions named in `OPTIMIZER_ENTRY_POINTS`.
    """
    name = keras.backend.backend()
    module = _modules.get(name)
    if module is None:
        module = current() if name in BACKENDS else importlib.import_module("keras_si.backend.common")
        _modules[name] = module
    return module
