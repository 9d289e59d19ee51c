"""Fast, float32-accumulating, distribution-correct norms and reductions.

Every keras_si optimizer that needs a norm calls this module, so that there is
one place that decides how a sum of squares is taken and how gradients are
combined across replicas.

Why not `keras.ops.sum(ops.square(x))`? Under TensorFlow's XLA on CPU a
reduction of a large tensor to a scalar was emitted as one serial loop (one
core, one accumulator), which made Keras's `global_clipnorm` 8x slower than the
SGD step it guards on BERT-base-sized weights; TF 2.21's XLA writes `x**2` out
and reduces it in a tree, still 3x slower than the fold below (15-18 ms against
4.8 ms for a 30522 x 768 table). Elementwise fusions, on the other hand,
are vectorised and spread over all cores. So under XLA we first fold a tensor
of `n` elements into `n / 64` partial sums with *elementwise* adds of 64
contiguous slices (one fused, parallel pass over the data), and only the small
remainder goes through the serial reduction. Outside XLA, TensorFlow's own
kernels are already parallel, and `tf.nn.l2_loss` squares and sums in one pass
without materialising `x**2`; on GPUs and TPUs XLA's own reductions are
parallel, so the plain reduction is used there, and so it is on JAX's XLA:CPU,
whose reductions are fast (see `_use_fold`). `benchmarks/optimizer_step.py`
measures both.
"""

import keras
from keras import ops

# Tensors smaller than this are reduced directly: folding them buys nothing.
_FOLD_MIN_SIZE = 1 << 16
# Number of contiguous slices summed elementwise before the serial reduction.
_FOLD_WAYS = 64
# The same for per-unit sums: their remainder keeps a row per unit, so 8 slices
# already make the serial part small; measured on a 30522 x 768 table: plain
# 62 ms, 8 slices 7.4 ms, 64 slices 12.3 ms and 4.5x the compile time.
_UNIT_FOLD_WAYS = 8


def _in_xla_context():
    """True while tracing a function that TensorFlow compiles with XLA."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    graph = tf.compat.v1.get_default_graph()
    return control_flow_util.GraphOrParentsInXlaContext(graph)


def _runs_on_cpu():
    """True when TensorFlow has no GPU or TPU to place the computation on.

    The fold is a remedy for XLA:CPU's serial reductions; on accelerators
    XLA's reductions are parallel and the fold only adds kernels.
    """
    import tensorflow as tf

    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _folded_sum(x, fn=None):
    """sum(fn(x)) for float32 `x`, as a parallel elementwise fold then a reduce.

    `fn` (elementwise) is applied to each slice inside the fold: applied to
    the whole tensor first, XLA materialises it (measured 2x slower).
    """
    fn = fn or (lambda t: t)
    flat = ops.reshape(x, (-1,))
    n = flat.shape[0]
    if n is None or n < _FOLD_MIN_SIZE:
        return ops.sum(fn(flat))
    body = (n // _FOLD_WAYS) * _FOLD_WAYS
    rows = ops.reshape(flat[:body], (_FOLD_WAYS, body // _FOLD_WAYS))
    partial = fn(rows[0])
    for i in range(1, _FOLD_WAYS):
        partial = partial + fn(rows[i])
    total = ops.sum(partial)
    if body < n:
        total = total + ops.sum(fn(flat[body:]))
    return total


def _folded_sum_of_squares(x):
    """sum(x**2) for float32 `x`."""
    return _folded_sum(x, ops.square)


def _use_fold():
    """True where XLA:CPU's serial reductions are the bottleneck (see the module docstring).

    That is TensorFlow's XLA on a CPU. JAX's XLA:CPU (jax 0.10) reduces at
    memory speed and the fold only slows it down: on a 30522 x 768 table,
    sum of squares 5.0 ms plain against 18.0 ms folded, per-unit sums of a
    product 9.2 ms against 58.8 ms.
    """
    return keras.backend.backend() == "tensorflow" and _in_xla_context() and _runs_on_cpu()


def sum_of_squares(x):
    """Returns `sum(x**2)` as a float32 scalar, accumulated in float32.

    Works for float16/bfloat16/float32/float64 tensors and for
    `tf.IndexedSlices` (the sum over the stored rows, which is exact when the
    indices are unique, as they are after Keras's gradient aggregation).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(x, tf.IndexedSlices):
            x = x.values
        x = tf.cast(x, tf.float32) if x.dtype != tf.float64 else x
        if _in_xla_context():
            s = _folded_sum_of_squares(x) if _runs_on_cpu() else tf.reduce_sum(tf.square(x))
        else:
            s = 2.0 * tf.nn.l2_loss(x)
        return tf.cast(s, tf.float32)
    x = ops.convert_to_tensor(x)
    if x.dtype != "float64":
        x = ops.cast(x, "float32")
    return ops.cast(ops.sum(ops.square(x)), "float32")


def global_sum_of_squares(tensors):
    """Sum of squares over a list of tensors (Nones skipped), float32."""
    parts = [sum_of_squares(t) for t in tensors if t is not None]
    if not parts:
        return ops.zeros((), dtype="float32")
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def global_norm(tensors):
    """The L2 norm of the concatenation of `tensors`, as a float32 scalar."""
    return ops.sqrt(global_sum_of_squares(tensors))


def _replica_context_to_reduce():
    """The TF replica context whose replicas must be summed, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def all_reduce_sum(grads):
    """Sums per-replica gradients into the global-batch gradient.

    Under a `tf.distribute` strategy with more than one replica, Keras's loss
    is already divided by the number of replicas, so the sum of the replicas'
    gradients is the gradient of the global batch. Outside a strategy (and on
    JAX/torch, whose distribution APIs hand the optimizer global gradients)
    this returns `grads` unchanged. `None` entries are kept in place.
    """
    ctx = _replica_context_to_reduce()
    if ctx is None:
        return list(grads)
    import tensorflow as tf

    present = [g for g in grads if g is not None]
    if not present:
        return list(grads)
    reduced = iter(ctx.all_reduce(tf.distribute.ReduceOp.SUM, present))
    return [None if g is None else next(reduced) for g in grads]


def combine_duplicate_rows(grad):
    """Sums the rows of a `tf.IndexedSlices` gradient that share an index.

    The gradient of an embedding lookup arrives as `IndexedSlices` with one row
    per looked-up token, so a token seen twice has two rows. Their sum of
    squares is not the squared norm of the dense gradient, and a cross-replica
    all-reduce concatenates more such rows. Norms must see each index once.
    Dense tensors are returned unchanged.
    """
    if keras.backend.backend() != "tensorflow":
        return grad
    import tensorflow as tf

    if not isinstance(grad, tf.IndexedSlices):
        return grad
    unique, position = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(
        grad.values, position, tf.shape(unique)[0]
    )
    return tf.IndexedSlices(values, unique, grad.dense_shape)


def map_values(fn, grad):
    """Applies `fn` to a dense gradient, or to the rows of an IndexedSlices."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(grad, tf.IndexedSlices):
            return tf.IndexedSlices(fn(grad.values), grad.indices, grad.dense_shape)
    return fn(grad)


def is_sparse(grad):
    """True for a `tf.IndexedSlices` gradient (embedding lookups on TF)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(grad, tf.IndexedSlices)


def unit_sum(fn, *tensors):
    """sum(fn(*tensors)) per output unit: over all axes but the last, keepdims, float32.

    `fn` is elementwise (e.g. `ops.multiply`). Units follow Keras's layout (the
    output axis of a Dense or conv kernel is the last one). A reduction over
    the leading axis of a tall matrix (an embedding table of 30522 rows) is a
    slow serial loop on TensorFlow's XLA:CPU, measured 8x an SGD step on that table; so
    there the rows are first folded, `_UNIT_FOLD_WAYS` contiguous blocks added
    elementwise with `fn` applied inside the fold, as in `_folded_sum`. (Computing several
    statistics in one fold, concatenated on the unit axis, measured 2-5x
    slower than one fold per statistic.)
    """
    xs = [ops.cast(t, "float32") for t in tensors]
    shape = xs[0].shape
    units = shape[-1]
    rows = 1
    for d in shape[:-1]:
        rows *= d
    flat = [ops.reshape(t, (rows, units)) for t in xs]
    if not _use_fold() or rows * units < _FOLD_MIN_SIZE or rows < 2 * _UNIT_FOLD_WAYS:
        total = ops.sum(fn(*flat), axis=0)
    else:
        block = rows // _UNIT_FOLD_WAYS
        body = block * _UNIT_FOLD_WAYS
        partial = fn(*[t[:block] for t in flat])
        for i in range(1, _UNIT_FOLD_WAYS):
            partial = partial + fn(*[t[i * block:(i + 1) * block] for t in flat])
        total = ops.sum(partial, axis=0)
        if body < rows:
            total = total + ops.sum(fn(*[t[body:] for t in flat]), axis=0)
    return ops.reshape(total, (1,) * (len(shape) - 1) + (units,))


def unitwise_sum_of_squares(x):
    """Per-unit sums of squares for adaptive gradient clipping, float32, broadcastable to `x`.

    Units follow Keras's layout, where the output axis is the last one: for a
    Dense kernel `(in, out)` or a conv kernel `(h, w, in, out)` each output
    unit's slice (all axes but the last) is a unit; a vector or scalar (bias,
    gain) is one unit as a whole (as in the NFNets reference code).
    """
    x = ops.cast(x, "float32")
    if len(x.shape) <= 1:
        return ops.reshape(sum_of_squares(x), (1,) * len(x.shape))
    return unit_sum(ops.square, x)
