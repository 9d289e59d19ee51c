"""Prove that a model is scale invariant, find the layer that breaks it, and split its variables.

A model is scale invariant in a group of parameters x if its output does not
change when all of x is multiplied by any c > 0 (Li et al., ICML 2022). One
bias or one GELU in the wrong place silently breaks this, and with it the
guarantees of SGDClip; these tools make it visible:

- `scale_invariant_variables(model)`: the variables of the layers marked as
  scale invariant (keras_si's SI layers, SIBERT's encoder), and the rest;
- `check_scale_invariance(model, inputs)`: the largest relative change of
  the outputs when the group is scaled by each c;
- `homogeneity_report(model, inputs)`: the measured degree of every layer's
  output, so the first layer whose degree is off is the culprit;
- `scale_invariant_optimizer(model, si_optimizer, other_optimizer)`: a
  `keras.optimizers.MultiOptimizer` routing the group to `si_optimizer`.

The examples below share one small model: a scale-invariant feed-forward
block (marked, degree 2 in its weights), a LayerNorm without affine (degree
0), and a head outside the group; the model's output is invariant to the
scale of the block's weights.
"""

import contextlib
import math
import re

import keras
import numpy as np

from keras_si.layers.markers import is_marked_scale_invariant


def _all_layers(model):
    return model._flatten_layers(include_self=True, recursive=True)


def _layer_names(model):
    """Qualified names ("encoder/layer_0/attention") of the model's sub-layers."""
    names = {}

    def walk(layer, prefix):
        for child in layer._flatten_layers(include_self=False, recursive=False):
            if id(child) not in names:
                names[id(child)] = f"{prefix}{child.name}"
                walk(child, f"{prefix}{child.name}/")

    walk(model, "")
    return names


def scale_invariant_variables(model):
    """Splits `model.trainable_variables` into (scale-invariant group, the rest).

    The group is every trainable variable of every layer marked as scale
    invariant (`keras_si.layers.mark_scale_invariant`), its sub-layers'
    included, in model order. The group is what Li et al. (ICML 2022) scale
    together: SGDClip's guarantees are stated for it.

    Args:
        model: a built `keras.Model` (or any layer).

    Returns:
        A pair of lists of variables `(group, rest)` partitioning
        `model.trainable_variables`, each in its order; `group` is empty
        when no layer is marked.

    Example:

    >>> import keras, numpy as np, keras_si
    >>> from keras_si.layers import SIFeedForward, layer_normalization_without_affine
    >>> model = keras.Sequential([keras.Input((4, 8)), SIFeedForward(16, name="ffn"),
    ...                           layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")],
    ...                          name="model")
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    >>> _ = model(x)
    >>> group, rest = keras_si.scale_invariant_variables(model)
    >>> [v.path for v in group]
    ['model/ffn/inner/kernel', 'model/ffn/inner/bias', 'model/ffn/outer/kernel']
    >>> [v.path for v in rest]
    ['model/head/kernel', 'model/head/bias']
    """
    si_ids = set()
    for layer in _all_layers(model):
        if is_marked_scale_invariant(layer):
            si_ids.update(id(v) for v in layer.trainable_variables)
    si = [v for v in model.trainable_variables if id(v) in si_ids]
    rest = [v for v in model.trainable_variables if id(v) not in si_ids]
    return si, rest


def scale_invariant_optimizer(model, si_optimizer, other_optimizer):
    """A `MultiOptimizer` giving the scale-invariant group to `si_optimizer`, the rest to `other_optimizer`.

    The routing is a `keras.optimizers.OptimizerMap` of the group's exact
    variable paths, so it is saved with the model. `si_optimizer`'s norms (e.g.
    SGDClip's) are then taken over the group only. Build the model first:
    the group is read from its variables now.

    Args:
        model: a built `keras.Model` with at least one marked layer.
        si_optimizer: a `keras.optimizers.Optimizer` for the group (e.g.
            `keras_si.SGDClip`).
        other_optimizer: a `keras.optimizers.Optimizer` for every other
            trainable variable (heads, biases outside the group).

    Returns:
        `keras.optimizers.MultiOptimizer`.

    Raises:
        ValueError: if the model has no variable in a marked layer (e.g. it
            is not built yet).
        TypeError: from Keras, if an optimizer is not a Keras optimizer.

    Example:

    >>> import keras, numpy as np, keras_si
    >>> from keras_si.layers import SIFeedForward, layer_normalization_without_affine
    >>> model = keras.Sequential([keras.Input((4, 8)), SIFeedForward(16, name="ffn"),
    ...                           layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")],
    ...                          name="model")
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    >>> _ = model(x)
    >>> optimizer = keras_si.scale_invariant_optimizer(model, keras.optimizers.SGD(0.1), keras.optimizers.Adam(1e-3))
    >>> before = [np.asarray(v) for v in model.trainable_variables]
    >>> optimizer.apply([keras.ops.ones_like(v) for v in model.trainable_variables], model.trainable_variables)
    >>> [round(float(np.abs(b - np.asarray(v)).max()), 4) for b, v in zip(before, model.trainable_variables)]
    [0.1, 0.1, 0.1, 0.001, 0.001]
    """
    si, _ = scale_invariant_variables(model)
    if not si:
        raise ValueError(f"Model {model.name!r} has no variables in a layer marked as scale invariant.")
    pattern = "|".join(re.escape(v.path) for v in si)
    mapping = keras.optimizers.OptimizerMap(other_optimizer, {pattern: si_optimizer})
    return keras.optimizers.MultiOptimizer(mapping)


@contextlib.contextmanager
def scaled_variables(variables, c):
    """Multiplies `variables` by `c` inside the `with` block; restores the exact values after.

    The product is taken in float64 and cast back to each variable's dtype;
    the saved values are restored exactly, also when the block raises.

    Args:
        variables: an iterable of Keras variables.
        c: the factor, a real number.

    Yields:
        None.

    Example:

    >>> import keras, numpy as np
    >>> from keras_si.invariance import scaled_variables
    >>> v = keras.Variable([1.0, 2.0])
    >>> with scaled_variables([v], 3.0):
    ...     print(np.asarray(v))
    [3. 6.]
    >>> print(np.asarray(v))
    [1. 2.]
    """
    saved = [keras.ops.convert_to_numpy(v) for v in variables]
    try:
        for v, value in zip(variables, saved):
            v.assign((value.astype(np.float64) * c).astype(value.dtype))
        yield
    finally:
        for v, value in zip(variables, saved):
            v.assign(value)


def _group(model, inputs, variables, training):
    if not model.built:
        model(inputs, training=training)  # create the variables
    if variables is None:
        variables, _ = scale_invariant_variables(model)
    variables = list(variables)
    if not variables:
        raise ValueError(
            f"No variables to scale: model {model.name!r} has no layer marked as scale invariant "
            "(keras_si.layers.mark_scale_invariant); pass `variables`."
        )
    return variables


def _outputs(model, inputs, training):
    out = model(inputs, training=training)
    return [np.asarray(keras.ops.convert_to_numpy(t), np.float64) for t in keras.tree.flatten(out)]


def check_scale_invariance(model, inputs, variables=None, scales=(1e-2, 1e2), training=False):
    """Largest relative change of the model's outputs when `variables` are scaled.

    For each c in `scales`, multiplies all `variables` (default: the model's
    scale-invariant group) by c, runs the model on `inputs`, restores the
    variables exactly, and measures `||out_c - out_1|| / ||out_1||` for each
    output tensor (norms in float64). A scale-invariant model gives values at
    float32 rounding, about 1e-7 to 1e-5; a model that is not gives values
    of order 1.

    Args:
        model: a `keras.Model` (built on `inputs` if it is not built yet).
        inputs: what `model` is called with (array, tensor, dict, ...).
        variables: the variables to scale together (default None: the
            model's scale-invariant group, `scale_invariant_variables`).
        scales: the factors c, each > 0 (default (1e-2, 1e2)).
        training: passed to the model's call (default False: dropout off).

    Returns:
        dict: `{c: largest relative change over the outputs}` (floats,
        unitless), one entry per scale.

    Raises:
        ValueError: if there are no variables to scale (no marked layer and
            no `variables`), or if a scale is not > 0.

    Example:

    >>> import keras, numpy as np, keras_si
    >>> from keras_si.layers import SIFeedForward, layer_normalization_without_affine
    >>> model = keras.Sequential([keras.Input((4, 8)), SIFeedForward(16, name="ffn"),
    ...                           layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")],
    ...                          name="model")
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    >>> report = keras_si.check_scale_invariance(model, x)
    >>> sorted(report), all(r < 1e-4 for r in report.values())
    ([0.01, 100.0], True)
    >>> head_too = model.trainable_variables  # the head is not invariant
    >>> keras_si.check_scale_invariance(model, x, variables=head_too, scales=(2.0,))[2.0] > 0.1
    True
    """
    variables = _group(model, inputs, variables, training)
    base = _outputs(model, inputs, training)
    report = {}
    for c in scales:
        if not c > 0:
            raise ValueError(f"`scales` must all be > 0. Received: scales={scales!r}")
        with scaled_variables(variables, c):
            scaled = _outputs(model, inputs, training)
        report[c] = max(
            float(np.linalg.norm(s - b) / max(np.linalg.norm(b), 1e-300)) for s, b in zip(scaled, base)
        )
    return report


def assert_scale_invariant(model, inputs, variables=None, scales=(1e-2, 1e2), rtol=1e-4, training=False):
    """Raises AssertionError unless every relative change of `check_scale_invariance` is below `rtol`.

    For tests: the message names every failing scale and the tool that
    finds the culprit (`homogeneity_report`).

    Args:
        model: as `check_scale_invariance`.
        inputs: as `check_scale_invariance`.
        variables: as `check_scale_invariance` (default None: the group).
        scales: as `check_scale_invariance` (default (1e-2, 1e2)).
        training: as `check_scale_invariance` (default False).
        rtol: the largest allowed relative change, > 0 (default 1e-4: float32
            rounding through a few normalisations stays below it).

    Returns:
        dict: `check_scale_invariance`'s report, when it passes.

    Raises:
        AssertionError: if some relative change is not below `rtol`.
        ValueError: as `check_scale_invariance`.

    Example:

    >>> import keras, numpy as np, keras_si
    >>> from keras_si.layers import SIFeedForward, layer_normalization_without_affine
    >>> model = keras.Sequential([keras.Input((4, 8)), SIFeedForward(16, name="ffn"),
    ...                           layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")],
    ...                          name="model")
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    >>> _ = keras_si.assert_scale_invariant(model, x)  # passes
    >>> try:
    ...     keras_si.assert_scale_invariant(model, x, variables=model.trainable_variables)
    ... except AssertionError as e:
    ...     print(str(e).split(":")[0])
    model is not scale invariant within rtol=0.0001
    """
    report = check_scale_invariance(model, inputs, variables, scales, training)
    bad = {c: r for c, r in report.items() if not r < rtol}
    if bad:
        raise AssertionError(
            f"{model.name} is not scale invariant within rtol={rtol}: relative output change "
            + ", ".join(f"{r:.3g} at c={c:g}" for c, r in bad.items())
            + ". Run keras_si.homogeneity_report(model, inputs) to find the layer that breaks it."
        )
    return report


@contextlib.contextmanager
def _recording_calls(layers):
    """Records the outputs of every call of each of `layers` (eager execution)."""
    records = []
    originals = {}
    for layer in layers:
        call = layer.call

        def recorder(*args, __layer=layer, __call=call, **kwargs):
            out = __call(*args, **kwargs)
            records.append((__layer, out))
            return out

        originals[id(layer)] = (layer, "call" in layer.__dict__, call)
        layer.call = recorder
    try:
        yield records
    finally:
        for layer, had_own, call in originals.values():
            if had_own:
                layer.call = call
            else:
                del layer.call


def _norm(out):
    flat = [np.asarray(keras.ops.convert_to_numpy(t), np.float64).ravel() for t in keras.tree.flatten(out)]
    return float(np.linalg.norm(np.concatenate(flat))) if flat else 0.0


def homogeneity_report(model, inputs, variables=None, c=10.0, training=False):
    """The measured degree in the parameters of every layer's output.

    Runs the model on `inputs` with `variables` (default: the model's
    scale-invariant group) scaled by 1/c, 1 and c, and for each call of each
    sub-layer computes `log(||out(c)|| / ||out(1)||) / log(c)` on both sides.
    A layer whose output is k-homogeneous shows degree k on both sides; a
    layer whose two estimates disagree is not homogeneous (e.g. a softmax, a
    GELU, or a sum of terms of different degrees).

    Args:
        model: a `keras.Model` (built on `inputs` if it is not built yet).
        inputs: what `model` is called with.
        variables: the variables to scale (default None: the model's
            scale-invariant group).
        c: the factor, > 0 and != 1 (default 10.0; large enough that
            rounding does not blur the degrees, small enough that float32
            does not overflow for degrees up to about 4).
        training: passed to the model's call (default False).

    Returns:
        `HomogeneityReport`: `.rows` is a list of dicts (path, class, call,
        degree_up, degree_down, homogeneous) in call order; degrees are
        floats (NaN for an all-zero output); `str(report)` is a table.

    Raises:
        ValueError: if `c` is not a number > 0 other than 1, or if there are
            no variables to scale.

    Example:

    >>> import keras, numpy as np, keras_si
    >>> from keras_si.layers import SIFeedForward, layer_normalization_without_affine
    >>> model = keras.Sequential([keras.Input((4, 8)), SIFeedForward(16, name="ffn"),
    ...                           layer_normalization_without_affine("norm"), keras.layers.Dense(2, name="head")],
    ...                          name="model")
    >>> x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    >>> report = keras_si.homogeneity_report(model, x)
    >>> round(report.degree("ffn"), 3), round(abs(report.degree("norm")), 3)
    (2.0, 0.0)
    >>> [row["path"] for row in report.rows if not row["homogeneous"]]  # the head's input has degree 0
    []
    """
    if isinstance(c, bool) or not isinstance(c, (int, float, np.floating, np.integer)) or not (c > 0 and c != 1):
        raise ValueError(f"`c` must be a number > 0 other than 1. Received: c={c!r}")
    variables = _group(model, inputs, variables, training)
    layers = [layer for layer in _all_layers(model) if layer is not model]
    names = _layer_names(model)
    norms = {}
    order = []
    for scale in (1.0, c, 1.0 / c):
        with scaled_variables(variables, scale), _recording_calls(layers) as records:
            model(inputs, training=training)
        counts = {}
        for layer, out in records:
            key = (id(layer), counts.get(id(layer), 0))
            counts[id(layer)] = key[1] + 1
            if scale == 1.0:
                order.append((key, layer))
            norms.setdefault(key, {})[scale] = _norm(out)
    rows = []
    for key, layer in order:
        n = norms[key]
        if n[1.0] == 0.0 or n.get(c, 0.0) == 0.0 or n.get(1.0 / c, 0.0) == 0.0:
            up = down = float("nan")
        else:
            up = math.log(n[c] / n[1.0]) / math.log(c)
            down = math.log(n[1.0] / n[1.0 / c]) / math.log(c)
        rows.append({
            "path": names.get(id(layer), layer.name),
            "class": type(layer).__name__,
            "call": key[1],
            "degree_up": up,
            "degree_down": down,
            "homogeneous": bool(abs(up - down) < 0.05 and abs(up - round(up)) < 0.05),
        })
    return HomogeneityReport(rows, c)


class HomogeneityReport:
    """The rows of `homogeneity_report`, printable as a table.

    Attributes:
        rows: a list of dicts, one per call of a sub-layer, in call order:
            `path` (e.g. "encoder/layer_0/attention"), `class`, `call` (0 for
            a layer's first call), `degree_up` and `degree_down` (the degree
            measured scaling by c and by 1/c), `homogeneous` (both agree and
            are an integer, within 0.05).
        c: the factor the report used.

    Args:
        rows: as the attribute.
        c: as the attribute.

    Example:

    >>> from keras_si.invariance import HomogeneityReport
    >>> row = dict(path="ffn", call=0, degree_up=2.0, degree_down=2.0, homogeneous=True)
    >>> row["class"] = "SIFeedForward"
    >>> print(HomogeneityReport([row], c=10.0))
    layer  class                     degree  homogeneous (c=10)
    ffn    SIFeedForward              2.000  yes
    """

    def __init__(self, rows, c):
        self.rows = rows
        self.c = c

    def degree(self, path, call=0):
        """The measured degree (c side) of the layer at `path` (else the first whose path ends with it).

        Args:
            path: a layer's path as in the rows ("encoder/layer_0/ffn"), or
                its tail ("ffn").
            call: which call of the layer (default 0, the first).

        Returns:
            float: the row's `degree_up`.

        Raises:
            KeyError: if no row's path is, or ends with, `path` for that call.

        Example:

        >>> from keras_si.invariance import HomogeneityReport
        >>> row = {"path": "block/ffn", "class": "SIFeedForward", "call": 0, "degree_up": 2.0,
        ...        "degree_down": 2.0, "homogeneous": True}
        >>> HomogeneityReport([row], c=10.0).degree("ffn")
        2.0
        """
        rows = [r for r in self.rows if r["call"] == call]
        for row in rows:
            if row["path"] == path:
                return row["degree_up"]
        for row in rows:
            if row["path"].endswith(path):
                return row["degree_up"]
        raise KeyError(path)

    def __str__(self):
        width = max([len(r["path"]) for r in self.rows] + [5])
        lines = [f"{'layer':{width}s}  {'class':24s} {'degree':>7s}  homogeneous (c={self.c:g})"]
        for r in self.rows:
            name = r["path"] + (f" #{r['call']}" if r["call"] else "")
            lines.append(
                f"{name:{width}s}  {r['class']:24s} {r['degree_up']:7.3f}  "
                f"{'yes' if r['homogeneous'] else 'NO (' + format(r['degree_down'], '.3f') + ' on the 1/c side)'}"
            )
        return "\n".join(lines)

    __repr__ = __str__
