"""TensorFlow-specific code of keras_si (imported only on the TensorFlow backend).

The optimizers' entry points (listed in `keras_si.backend.OPTIMIZER_ENTRY_POINTS`)
are here because of three things only TensorFlow has: `tf.distribute`'s
replica context, in which each replica holds its own gradient and the
optimizer must sum them; sparse `tf.IndexedSlices` gradients (embedding
lookups); and functions compiled with XLA next to functions that are not,
where XLA:CPU's reductions to a scalar run as one serial loop. Then
`SharpnessAwareMinimization`'s training step.
"""

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


# ------------------------------------------------------------- distribution


def has_strategy():
    """Whether a `tf.distribute` strategy is in scope (any, even with one replica)."""
    return tf.distribute.has_strategy()


def _replica_context_to_reduce():
    """The replica context whose replicas must be summed, else None."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def replicas_to_reduce():
    """The number of replicas whose gradients `all_reduce_sum` adds up (1 when there is nothing to sum).

    More than 1 only in the replica context of a strategy with several
    replicas, where each replica holds the gradient of its share of the batch.
    """
    ctx = _replica_context_to_reduce()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def all_reduce_sum(grads):
    """Sums per-replica gradients into the global batch's (a list; None entries kept in place).

    Keras divides the loss by the number of replicas, so the sum is the
    global batch's gradient. Outside a strategy's replica context, or with one
    replica, `grads` comes back unchanged.
    """
    ctx = _replica_context_to_reduce()
    if ctx is None:
        return list(grads)
    present = [g for g in grads if g is not None]
    if not present:
        return list(grads)
    reduced = iter(ctx.all_reduce(tf.distribute.ReduceOp.SUM, present))
    return [None if g is None else next(reduced) for g in grads]


def concrete_scalar(fn):
    """`fn()` (a scalar tensor) evaluated now, as a Python float, even while a `tf.function` is traced.

    `tf.init_scope` leaves the function being traced and reads the variables'
    current values eagerly: at the first trace, the values the first step
    starts from.
    """
    with tf.init_scope():
        return float(fn())


# ---------------------------------------------------------------- reductions


def _runs_on_cpu():
    """True when TensorFlow has no GPU or TPU to place the computation on."""
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def reductions_are_serial():
    """True while tracing for XLA on a CPU, whose reductions to a scalar run as one serial loop.

    There `keras_si.optimizers._norms` folds a tensor elementwise before
    reducing it; on GPUs and TPUs XLA's reductions are parallel and the fold
    would only add kernels.
    """
    return in_xla_context() and _runs_on_cpu()


def sum_of_squares(x):
    """sum(x**2) of a dense float32/float64 tensor, in its dtype, without the fold.

    Outside XLA `tf.nn.l2_loss` squares and sums in one parallel pass without
    writing `x**2` out; XLA fuses the square into its reduction itself.
    """
    if in_xla_context():
        return tf.reduce_sum(tf.square(x))
    return 2.0 * tf.nn.l2_loss(x)


# ---------------------------------------------------------- sparse gradients
#
# The gradient of an embedding lookup is a `tf.IndexedSlices`: rows
# (`values`) of the table at `indices`, one row per looked-up token, so a
# token seen twice has two rows. The other backends never produce one, and the
# neutral code calls the functions below only for a gradient for which
# `is_sparse` is True.


def is_sparse(grad):
    """True for a `tf.IndexedSlices` gradient."""
    return isinstance(grad, tf.IndexedSlices)


def sparse_values(grad):
    """The stored rows of a sparse gradient, a tensor `(rows, ...)`."""
    return grad.values


def sparse_indices(grad):
    """The table rows (first-axis indices) of a sparse gradient's stored rows."""
    return grad.indices


def map_sparse_values(fn, grad):
    """The sparse gradient with `fn` applied to its stored rows (same indices)."""
    return tf.IndexedSlices(fn(grad.values), grad.indices, grad.dense_shape)


def cast_sparse(grad, dtype):
    """The sparse gradient with its rows cast to `dtype` and its indices as a tensor.

    Keras's own optimizers accept indices given as a Python tuple; the sparse
    ops (`tf.unique`, densifying) need a tensor.
    """
    return tf.IndexedSlices(tf.cast(grad.values, dtype), tf.convert_to_tensor(grad.indices), grad.dense_shape)


def densify(grad):
    """The dense tensor of a sparse gradient (rows that share an index summed)."""
    return tf.convert_to_tensor(grad)


def combine_duplicate_rows(grad):
    """The sparse gradient with the rows that share an index summed, each index once.

    The sum of squares of duplicated rows is not the squared norm of the
    dense gradient (and a cross-replica all-reduce concatenates more such
    rows): norms must see each index once.
    """
    unique, position = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(unique)[0])
    return tf.IndexedSlices(values, unique, grad.dense_shape)


def gather_rows(variable, indices):
    """The rows of `variable` (first axis) at `indices`, as a tensor."""
    return tf.gather(ops.convert_to_tensor(variable), indices)


# ------------------------------------------------------------------------ SAM


def sam_train_step(sam, data):
    """SharpnessAwareMinimization's step as Keras's TensorFlow trainer runs `train_step(data)`."""
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
        grads = all_reduce_sum(grads)
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
