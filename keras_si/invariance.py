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
    invariant (`keras_si.layers.mark_scale_invariant`), in model order.
    """
    si_ids = set()
    for layer in _all_layers(model):
        if is_marked_scale_invariant(layer):
            si_ids.update(id(v) for v in layer.trainable_variables)
    si = [v for v in model.trainable_variables if id(v) in si_ids]
    rest = [v for v in model.trainable_variables if id(v) not in si_ids]
    return si, rest


def scale_invariant_optimizer(model, si_optimizer, other_optimizer):
    """A `MultiOptimizer` giving the scale-invariant group to `si_optimizer`.

    The routing is a `keras.optimizers.OptimizerMap` of the group's exact
    variable paths, so it is saved with the model. `si_optimizer`'s norms (e.g.
    SGDClip's) are then taken over the group only.
    """
    si, _ = scale_invariant_variables(model)
    if not si:
        raise ValueError(f"Model {model.name!r} has no variables in a layer marked as scale invariant.")
    pattern = "|".join(re.escape(v.path) for v in si)
    mapping = keras.optimizers.OptimizerMap(other_optimizer, {pattern: si_optimizer})
    return keras.optimizers.MultiOptimizer(mapping)


@contextlib.contextmanager
def scaled_variables(variables, c):
    """Multiplies `variables` by `c` inside the block; restores the exact values after."""
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
    output tensor.

    Returns:
        A dict `{c: largest relative change over the outputs}`.
    """
    variables = _group(model, inputs, variables, training)
    base = _outputs(model, inputs, training)
    report = {}
    for c in scales:
        if not c > 0:
            raise ValueError(f"scales must be > 0. Received: {c}")
        with scaled_variables(variables, c):
            scaled = _outputs(model, inputs, training)
        report[c] = max(
            float(np.linalg.norm(s - b) / max(np.linalg.norm(b), 1e-300)) for s, b in zip(scaled, base)
        )
    return report


def assert_scale_invariant(model, inputs, variables=None, scales=(1e-2, 1e2), rtol=1e-4, training=False):
    """Raises AssertionError unless every relative change is below `rtol`."""
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

    Returns:
        `HomogeneityReport`: `.rows` is a list of dicts (path, class,
        degree_up, degree_down, homogeneous) in call order; `str(report)` is a
        table.
    """
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
    """The rows of `homogeneity_report`, printable as a table."""

    def __init__(self, rows, c):
        self.rows = rows
        self.c = c

    def degree(self, path, call=0):
        """The measured degree (c side) of the layer at `path` (else the first whose path ends with it)."""
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
