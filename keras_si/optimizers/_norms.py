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

What depends on the backend (the replica context, sparse gradients, whether
XLA is compiling, the fastest plain reduction) is asked of
`keras_si.backend.optimizer_backend()`; this module itself is written with
`keras.ops` only.

Units
-----
Per-unit statistics (AGC's clipping, the channel view of SGDP/AdamP's
projection) need to know which axes of a variable index its units: a unit is
the slice with those axes fixed, and its statistic reduces over the others.
`unit_axes(variable)` decides, in this order:

1. `variable.unit_axes`, a tuple of axes set on the `keras.Variable` (the way
   Keras itself attaches `regularizer`, `constraint` and
   `overwrite_with_gradient` to a variable). A custom layer states its layout
   in `build`: `self.kernel = self.add_weight(...)` then
   `self.kernel.unit_axes = (0,)`; it is set again whenever the layer is built,
   so it survives saving and loading. `annotate_unit_axes(model)` sets it on
   every built-in Keras layer's kernels by the layer's class (`isinstance`, so
   renamed layers and subclasses too, and `EinsumDense` from its equation).
2. Otherwise the variable path (`variable.path` of a `keras.Variable`, the
   same on every backend, or the scoped name of a raw `tf.Variable`, which is
   what an `update_step` receives on TensorFlow): the variable's own name
   and, for the ambiguous name "kernel", Keras's default name of its layer.
3. Otherwise Keras's Dense/conv layout: the last axis; vectors and scalars
   are one unit.

The units of the built-in layers (Keras's kernel layouts):

| layer                              | variable (shape)                         | unit axes    |
|------------------------------------|------------------------------------------|--------------|
| Dense, Conv1D/2D/3D                | kernel (..., in, out)                    | last         |
| Conv1D/2D/3DTranspose              | kernel (..., out, in)                    | second-last  |
| DepthwiseConv1D/2D                 | kernel (..., in, multiplier)             | last two: output channel in*multiplier + m |
| SeparableConv1D/2D                 | depthwise_kernel (..., in, multiplier)   | last two     |
|                                    | pointwise_kernel (1.., in*mult, out)     | last         |
| EinsumDense                        | kernel                                   | the kernel axes named in the output |
| MultiHeadAttention query/key/value | kernel (dim, heads, head_dim)            | (1, 2): one unit per head and feature |
| Embedding                          | embeddings (vocab, dim)                  | first: one row per token |
| anything else                      | rank >= 2 / vector or scalar             | last / whole |

An embedding row is the unit because a row is what a token's lookup outputs
(the row is the token's "output unit"; the transposed view would make every
unit span the whole vocabulary, so a frequent token's gradient would set the
clipping of all the rare ones), and because a row-wise statistic stays local
to the rows a sparse gradient touches.
"""

import re

import keras
from keras import ops

from keras_si import backend

# Tensors smaller than this are reduced directly: folding them buys nothing.
_FOLD_MIN_SIZE = 1 << 16
# Number of contiguous slices summed elementwise before the serial reduction.
_FOLD_WAYS = 64
# The same for per-unit sums: their remainder keeps a row per unit, so 8 slices
# already make the serial part small; measured on a 30522 x 768 table: plain
# 62 ms, 8 slices 7.4 ms, 64 slices 12.3 ms and 4.5x the compile time.
_UNIT_FOLD_WAYS = 8


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
    product 9.2 ms against 58.8 ms. On GPUs and TPUs the fold only adds kernels.
    """
    return backend.optimizer_backend().reductions_are_serial()


def sum_of_squares(x):
    """Returns `sum(x**2)` as a float32 scalar, accumulated in float32.

    Works for float16/bfloat16/float32/float64 tensors and for
    `tf.IndexedSlices` (the sum over the stored rows, which is exact when the
    indices are unique, as they are after Keras's gradient aggregation).
    A float64 tensor is summed in float64, then rounded once.
    """
    be = backend.optimizer_backend()
    if be.is_sparse(x):
        x = be.sparse_values(x)
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        x = ops.cast(x, "float32")
    s = _folded_sum_of_squares(x) if be.reductions_are_serial() else be.sum_of_squares(x)
    return ops.cast(s, "float32")


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


def replicas_to_reduce():
    """The number of replicas whose gradients `all_reduce_sum` adds up; 1 when there is nothing to sum."""
    return backend.optimizer_backend().replicas_to_reduce()


def all_reduce_sum(grads):
    """Sums per-replica gradients into the global-batch gradient.

    Under a `tf.distribute` strategy with more than one replica, Keras's loss
    is already divided by the number of replicas, so the sum of the replicas'
    gradients is the gradient of the global batch. Outside a strategy (and on
    JAX/torch, whose distribution APIs hand the optimizer global gradients)
    this returns `grads` unchanged. `None` entries are kept in place.
    """
    return backend.optimizer_backend().all_reduce_sum(grads)


def combine_duplicate_rows(grad):
    """Sums the rows of a `tf.IndexedSlices` gradient that share an index.

    The gradient of an embedding lookup arrives as `IndexedSlices` with one row
    per looked-up token, so a token seen twice has two rows. Their sum of
    squares is not the squared norm of the dense gradient, and a cross-replica
    all-reduce concatenates more such rows. Norms must see each index once.
    Dense tensors are returned unchanged.
    """
    be = backend.optimizer_backend()
    return be.combine_duplicate_rows(grad) if be.is_sparse(grad) else grad


def map_values(fn, grad):
    """Applies `fn` to a dense gradient, or to the rows of an IndexedSlices."""
    be = backend.optimizer_backend()
    return be.map_sparse_values(fn, grad) if be.is_sparse(grad) else fn(grad)


def is_sparse(grad):
    """True for a `tf.IndexedSlices` gradient (embedding lookups on TF)."""
    return backend.optimizer_backend().is_sparse(grad)


def _normalize_axes(axes, rank, what="unit_axes"):
    """`axes` as a sorted tuple of non-negative ints < rank; a one-line ValueError naming `what` otherwise."""
    if isinstance(axes, int) and not isinstance(axes, bool):
        axes = (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        raise ValueError(f"`{what}` must be a tuple of ints. Received: {what}={axes!r}") from None
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int) or not -rank <= a < rank:
            raise ValueError(
                f"`{what}` must hold axes in [-{rank}, {rank}) for a rank-{rank} tensor. Received: {what}={axes!r}"
            )
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"`{what}` repeats an axis. Received: {what}={axes!r}")
    return tuple(sorted(out))


def _default_axes(rank):
    # Keras's layout: the output axis of a Dense or conv kernel is the last one;
    # a vector or scalar (bias, gain) is one unit as a whole (NFNets' code).
    return () if rank <= 1 else (rank - 1,)


def unit_sum(fn, *tensors, axes=None):
    """sum(fn(*tensors)) per unit, float32, with the unit axes kept and the others reduced to size 1.

    `fn` is elementwise (e.g. `ops.multiply`). `axes` are the unit axes (see
    `unit_axes`); the default is the last axis (Keras's Dense and conv
    kernels), and `()` makes the whole tensor one unit. The tensor is viewed
    as `(before, units, after)`, the unit axes being made contiguous by a
    transpose when they are not, and reduced over `before` and `after`.

    A reduction over the leading axis of a tall matrix (an embedding table of
    30522 rows) is a slow serial loop on TensorFlow's XLA:CPU, measured 8x an
    SGD step on that table; so there the leading rows are first folded,
    `_UNIT_FOLD_WAYS` contiguous blocks added elementwise with `fn` applied
    inside the fold, as in `_folded_sum`. (Computing several statistics in one
    fold, concatenated on the unit axis, measured 2-5x slower than one fold per
    statistic.)
    """
    xs = [ops.cast(t, "float32") for t in tensors]
    shape = tuple(xs[0].shape)
    rank = len(shape)
    axes = _default_axes(rank) if axes is None else _normalize_axes(axes, rank)
    out_shape = tuple(d if i in axes else 1 for i, d in enumerate(shape))
    if axes and axes != tuple(range(axes[0], axes[-1] + 1)):
        # Non-contiguous unit axes (possible for an EinsumDense kernel): move
        # them last, in order, so that they flatten into one axis.
        perm = [i for i in range(rank) if i not in axes] + list(axes)
        xs = [ops.transpose(t, perm) for t in xs]
        shape = tuple(shape[i] for i in perm)
        axes = tuple(range(rank - len(axes), rank))
    if axes:
        first, last = axes[0], axes[-1] + 1
    else:
        first = last = rank  # one unit: everything is "before"
    def size(dims):
        # None when a dimension is only known at run time (the gathered rows
        # of a sparse gradient under `fit`): reshaped as -1.
        n = 1
        for d in dims:
            n = None if d is None or n is None else n * d
        return n

    before, units, after = size(shape[:first]), size(shape[first:last]), size(shape[last:])
    if [before, units, after].count(None) > 1:
        raise ValueError(f"unit_sum: more than one dimension of {shape} is unknown around unit axes {axes}.")
    if after == 1:
        view, reduce_axes = (before, units), 0
    elif before == 1:
        view, reduce_axes = (units, after), 1
    else:
        view, reduce_axes = (before, units, after), (0, 2)
    flat = [ops.reshape(t, tuple(-1 if d is None else d for d in view)) for t in xs]
    rows = view[0]
    fold = (reduce_axes != 1 and _use_fold() and None not in view and before * units * after >= _FOLD_MIN_SIZE
            and rows >= 2 * _UNIT_FOLD_WAYS)
    if not fold:
        total = ops.sum(fn(*flat), axis=reduce_axes)
    else:
        block = rows // _UNIT_FOLD_WAYS
        body = block * _UNIT_FOLD_WAYS
        partial = fn(*[t[:block] for t in flat])
        for i in range(1, _UNIT_FOLD_WAYS):
            partial = partial + fn(*[t[i * block:(i + 1) * block] for t in flat])
        total = ops.sum(partial, axis=reduce_axes)
        if body < rows:
            total = total + ops.sum(fn(*[t[body:] for t in flat]), axis=reduce_axes)
    return ops.reshape(total, tuple(-1 if d is None else d for d in out_shape))


def unitwise_sum_of_squares(x, axes=None):
    """Per-unit sums of squares for adaptive gradient clipping, float32, broadcastable to `x`.

    `axes` are the unit axes (see `unit_axes`). The default (None) is Keras's
    Dense/conv layout, where the output axis is the last one: for a kernel
    `(in, out)` or `(h, w, in, out)` each output unit's slice is a unit; a
    vector or scalar (bias, gain) is one unit as a whole, as in the NFNets
    reference code.
    """
    x = ops.cast(x, "float32")
    rank = len(x.shape)
    axes = _default_axes(rank) if axes is None else _normalize_axes(axes, rank)
    if not axes:
        return ops.reshape(sum_of_squares(x), (1,) * rank)
    return unit_sum(ops.square, x, axes=axes)


# ------------------------------------------------------------------ unit axes
#
# Which axes of a variable index its units (the output units of a kernel).
# See the section "Units" of the module docstring.

UNIT_AXES_ATTRIBUTE = "unit_axes"

# Keras's default layer names ("conv2d_transpose", "conv2d_transpose_3"): the
# layer name is the part of `variable.path` before the variable's own name.
_TRANSPOSE_LAYER = re.compile(r"conv[123]d_transpose(_\d+)?")
_DEPTHWISE_LAYER = re.compile(r"depthwise_conv[12]d(_\d+)?")
# The EinsumDense sub-layers of keras.layers.MultiHeadAttention, whose names
# are fixed by that class: kernels (dim, heads, head_dim).
_ATTENTION_INPUT_LAYER = re.compile(r"query|key|value")
# TensorFlow's own variable names: "dense/kernel:0", and under a
# MirroredStrategy "dense/kernel/replica_1:0" for the other replicas' copies.
_TF_NAME_SUFFIX = re.compile(r"(/replica_\d+)?(:\d+)?$")


def _path_of(variable):
    path = getattr(variable, "path", None)
    if isinstance(path, str):
        return path
    return _TF_NAME_SUFFIX.sub("", str(getattr(variable, "name", "")))


def _axes_from_path(path, rank):
    """The unit axes of a built-in Keras layer's variable, from its path; None if the path does not say."""
    parts = path.split("/")
    name = parts[-1]
    layer = parts[-2] if len(parts) > 1 else ""
    if name == "embeddings" and rank == 2:
        return (0,)
    if name == "depthwise_kernel" and rank >= 3:
        return (rank - 2, rank - 1)
    if name == "pointwise_kernel" and rank >= 2:
        return (rank - 1,)
    if name == "kernel" and rank >= 3:
        if _TRANSPOSE_LAYER.fullmatch(layer):
            return (rank - 2,)
        if _DEPTHWISE_LAYER.fullmatch(layer):
            return (rank - 2, rank - 1)
        if rank == 3 and _ATTENTION_INPUT_LAYER.fullmatch(layer) and len(parts) > 2:
            return (1, 2)
    return None


def unit_axes(variable):
    """The axes of `variable` that index its units (output channels, embedding rows...).

    A unit is the slice of the variable with these axes fixed; per-unit
    statistics (`keras_si.AGC`'s clip, the channel view of `keras_si.SGDP`
    and `keras_si.AdamP`) reduce over the other axes. Resolution, first match
    wins:

    1. the attribute `variable.unit_axes`, if set (by a layer's `build`, by
       `annotate_unit_axes(model)` or by the user; an int or a tuple of ints,
       negative axes allowed);
    2. the built-in Keras layer named by `variable.path` (its default name,
       e.g. "conv2d_transpose_1/kernel": the second-last axis);
    3. Keras's Dense/conv layout: the last axis, or `()` (the whole tensor
       is one unit) for vectors and scalars.

    The table of the built-in layers' units is in the module
    `keras_si.optimizers._norms`.

    Args:
        variable: a `keras.Variable` (or a `tf.Variable`, read by its name).

    Returns:
        A sorted tuple of non-negative ints smaller than the variable's rank;
        `()` for one unit.

    Raises:
        ValueError: if `variable.unit_axes` is set but is not a tuple of
            distinct axes within the variable's rank.

    Example:

    >>> import keras
    >>> from keras_si.optimizers import unit_axes
    >>> dense = keras.layers.Dense(3)
    >>> dense.build((None, 2))
    >>> unit_axes(dense.kernel), unit_axes(dense.bias)  # kernel (2, 3): 3 units
    ((1,), ())
    >>> table = keras.layers.Embedding(10, 4)
    >>> table.build((None,))
    >>> unit_axes(table.embeddings)  # one unit per token
    (0,)
    """
    rank = len(variable.shape)
    explicit = getattr(variable, UNIT_AXES_ATTRIBUTE, None)
    if explicit is not None:
        return _normalize_axes(explicit, rank, what=f"{_path_of(variable)}.unit_axes")
    from_path = _axes_from_path(_path_of(variable), rank)
    if from_path is not None:
        return from_path
    return _default_axes(rank)


def _einsum_kernel_unit_axes(equation, rank):
    """The kernel axes of an EinsumDense equation ("ab,bcd->acd") that appear in its output."""
    inputs, output = equation.replace(" ", "").split("->")
    kernel = inputs.split(",")[1]
    return tuple(i for i, c in enumerate(kernel) if c in output and i < rank)


def _layer_unit_axes(layer, variable):
    """The unit axes of one of a built-in layer's variables, from the layer's class; None if unknown."""
    name = variable.path.split("/")[-1]
    rank = len(variable.shape)
    layers = keras.layers
    if isinstance(layer, layers.Embedding) and name == "embeddings" and rank == 2:
        return (0,)
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        if name == "depthwise_kernel":
            return (rank - 2, rank - 1)
        if name == "pointwise_kernel":
            return (rank - 1,)
        return None
    if name != "kernel":
        return None
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        return (rank - 2,)
    if isinstance(layer, (layers.DepthwiseConv1D, layers.DepthwiseConv2D)):
        return (rank - 2, rank - 1)
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Dense)):
        return (rank - 1,)
    if isinstance(layer, layers.EinsumDense):
        return _einsum_kernel_unit_axes(layer.equation, rank)
    return None


def annotate_unit_axes(model):
    """Sets `variable.unit_axes` on the kernels of every built-in Keras layer in `model`, by layer class.

    Needed where the variable path cannot tell the layout: renamed layers
    (a `Conv2DTranspose(name="up1")`), subclasses of the built-in layers,
    and `EinsumDense` (whose units follow its equation). Variables that
    already have `unit_axes` are left as they are. Call it after the model is
    built (and again after `keras.models.load_model`: the attribute is not
    saved).

    Args:
        model: a built `keras.layers.Layer` or `keras.Model`.

    Returns:
        A dict `{variable.path: unit axes}` of the variables annotated (a
        sorted tuple of ints each); empty if none needed it.

    Example:

    A renamed transposed convolution: its path no longer names the layer's
    class, so without the annotation its kernel `(3, 3, out, in)` would be
    read as a Dense kernel (units on the last axis).

    >>> import keras
    >>> from keras_si.optimizers import annotate_unit_axes, unit_axes
    >>> model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2DTranspose(4, 3, name="up")], name="net")
    >>> unit_axes(model.layers[0].kernel)
    (3,)
    >>> annotate_unit_axes(model)
    {'net/up/kernel': (2,)}
    >>> unit_axes(model.layers[0].kernel)
    (2,)
    """
    done = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        # The layer's own variables only: `layer.weights` would also list its
        # sub-layers' variables, whose layout is their own class's.
        own = list(getattr(layer, "_trainable_variables", [])) + list(getattr(layer, "_non_trainable_variables", []))
        for variable in own:
            if getattr(variable, UNIT_AXES_ATTRIBUTE, None) is not None:
                continue
            axes = _layer_unit_axes(layer, variable)
            if axes is not None:
                setattr(variable, UNIT_AXES_ATTRIBUTE, axes)
                done[variable.path] = axes
    return done
