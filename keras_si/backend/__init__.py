"""Backend-specific code of keras_si, one small module per Keras backend.

As Keras keeps `keras/src/backend/<name>/optimizer.py`, everything that needs
TensorFlow, JAX or PyTorch itself lives in `keras_si/backend/<name>.py` and is
imported only when Keras runs on that backend: `import keras_si` needs Keras
and one backend, any of the three. The rest of the library is written with
`keras.ops` and reaches these modules through `current()`.

Keras's private API, where it must be used, is used in one place:
`keras_si.backend.keras_private`.
"""

import importlib

import keras

BACKENDS = ("tensorflow", "jax", "torch")


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
