"""Backend facts that both `keras_si.layers` and `keras_si.optimizers` need.

A neutral module with no keras_si imports, so that layers never depend on the
optimizers package (issue 12) and either package can import it.
"""

import keras


def in_xla_context():
    """Whether the code now being traced will be compiled by TensorFlow's XLA.

    True while tracing a `tf.function(jit_compile=True)` (which is how Keras's
    TensorFlow trainer compiles with `jit_compile=True`), or any function nested
    in one; False in eager mode, in plain `tf.function`s, and on every backend
    other than TensorFlow (JAX always compiles with XLA: callers that care ask
    `keras.backend.backend()` themselves).

    TensorFlow marks an XLA compilation by entering an XLA control-flow context
    on the function's graph; nested functions (e.g. `tf.while_loop` bodies)
    get their own graph whose `outer_graph` leads back to it. TensorFlow has no
    public API for this, so it reads the graph's context chain directly.

    Returns:
        bool.
    """
    if keras.backend.backend() != "tensorflow":
        # Not importing TensorFlow here keeps JAX/PyTorch installs free of it.
        return False
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        context = graph._get_control_flow_context()  # pylint: disable=protected-access
        while context is not None:
            if context.IsXLAContext():
                return True
            context = context.outer_context
        graph = getattr(graph, "outer_graph", None)
    return False
