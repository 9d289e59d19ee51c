"""Backend facts that both `keras_si.layers` and `keras_si.optimizers` need.

A neutral module with no keras_si imports beyond `keras_si.backend`, so that
layers never depend on the optimizers package (issue 12) and either package
can import it. The TensorFlow code itself is in `keras_si/backend/tensorflow.py`.
"""

from keras_si import backend


def in_xla_context():
    """Whether the code now being traced will be compiled by TensorFlow's XLA.

    True while tracing a `tf.function(jit_compile=True)` (which is how Keras's
    TensorFlow trainer compiles with `jit_compile=True`), or any function nested
    in one; False in eager mode, in plain `tf.function`s, and on every backend
    other than TensorFlow (JAX always compiles with XLA: callers that care ask
    `keras.backend.backend()` themselves).

    Returns:
        bool.
    """
    # The backend's module is imported only for the backend in use, which
    # keeps JAX/PyTorch installs free of TensorFlow.
    return backend.optimizer_backend().in_xla_context()
