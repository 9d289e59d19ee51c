"""TensorFlow-specific code of keras_si (imported only on the TensorFlow backend)."""

import keras
import tensorflow as tf
from keras import ops

from keras_si.backend import keras_private


def in_xla_context():
    """Whether the code now being traced will be compiled by XLA (`tf.function(jit_compile=True)`).

    TensorFlow marks an XLA compilation by entering an XLA control-flow context
    on the function's graph; nested functions (e.g. `tf.while_loop` bodies)
    get their own graph whose `outer_graph` leads back to it. TensorFlow has no
    public API for this, so it reads the graph's context chain directly.
    """
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        context = graph._get_control_flow_context()  # pylint: disable=protected-access
        while context is not None:
            if context.IsXLAContext():
                return True
            context = context.outer_context
        graph = getattr(graph, "outer_graph", None)
    return False


def sam_train_step(sam, data):
    """SharpnessAwareMinimization's step as Keras's TensorFlow trainer runs `train_step(data)`."""
    from keras_si.optimizers import _norms  # late: keras_si.optimizers imports this package

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    variables = sam.trainable_variables

    # First pass, at w: the step's loss, metrics and state updates, as in Keras's own train_step.
    with tf.GradientTape() as tape:
        y_pred = sam(x, training=True)
        loss = keras_private.compute_loss(sam, x, y, y_pred, sample_weight)
        batch = tf.shape(next(t for t in keras.tree.flatten(x) if t is not None))[0]
        # Keras scales the loss down by the replica count for tf.distribute; the
        # tracker reports the unscaled one.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        keras_private.track_loss(sam, loss * ops.cast(replicas, loss.dtype), batch)
        scaled = sam.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, variables)
    if sam.perturbation == "global":
        grads = _norms.all_reduce_sum(grads)
    e = sam.ascent(grads, variables)

    # Second pass, at w + e, without touching the variables: the stateless
    # scope reads w + e in their place and records, instead of applying, the
    # assignments of the pass (batch-norm statistics, metrics). Writing w + e
    # into the variables would not do: under MirroredStrategy an assignment
    # in replica context is averaged across replicas, which would erase the
    # per-replica perturbations.
    perturbed = [v.value + ops.cast(d, v.dtype) for v, d in zip(variables, e)]
    with tf.GradientTape() as tape:
        tape.watch(perturbed)
        with keras.StatelessScope(state_mapping=list(zip(variables, perturbed)), collect_losses=True) as scope:
            perturbed_pred = sam(x, training=True)
            perturbed_loss = keras_private.compute_loss(sam, x, y, perturbed_pred, sample_weight)
            perturbed_scaled = sam.optimizer.scale_loss(perturbed_loss)
    perturbed_grads = tape.gradient(perturbed_scaled, perturbed)
    _advance_seeds(sam, scope)

    sam.optimizer.apply_gradients(zip(perturbed_grads, variables))
    return sam.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def _advance_seeds(sam, scope):
    # Of the second pass's recorded updates only the random seeds move on, so
    # that the next step's dropout masks differ from this second pass's.
    for state in keras_private.seed_states(sam):
        new = scope.get_current_value(state)
        if new is not None:
            state.assign(new)
