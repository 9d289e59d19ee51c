"""Issue 12: layers that could not be reloaded, and layers that imported from the optimizers."""

import ast
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from keras_si._backend_utils import in_xla_context


def _ws_model(**conv_kwargs):
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras_si.layers.WSConv2D(4, 3, padding="same", **conv_kwargs),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])


def _randomize(model, seed=0):
    # Trained-looking values: the gain's initial ones would hide a gain that is
    # never written (the reloaded layer starts from ones as well).
    rng = np.random.RandomState(seed)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))


@pytest.mark.parametrize("conv_kwargs", [{}, {"use_bias": False}, {"use_gain": False}, {"lora_rank": 2}],
                         ids=["gain_bias", "gain_no_bias", "no_gain", "lora"])
def test_ws_conv_round_trips_with_its_gain(tmp_path, conv_kwargs):
    """The issue's model: `.keras` and `.weights.h5` both restore every weight, the gain included."""
    model = _ws_model(**conv_kwargs)
    _randomize(model)
    x = np.random.RandomState(1).rand(2, 8, 8, 1).astype("float32")
    expected = np.asarray(model(x))

    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(loaded(x)), expected)

    model.save_weights(tmp_path / "m.weights.h5")
    fresh = _ws_model(**conv_kwargs)
    fresh.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_array_equal(np.asarray(fresh(x)), expected)
    if conv_kwargs.get("use_gain", True):
        np.testing.assert_array_equal(np.asarray(fresh.layers[0].gain), np.asarray(model.layers[0].gain))


def test_ws_conv_weights_without_a_gain_are_refused(tmp_path):
    """A file with no gain (as the old code wrote) must not load as gain = 1 silently."""
    _ws_model(use_gain=False).save_weights(tmp_path / "old.weights.h5")
    with pytest.raises(ValueError, match="expected 3 variables, but received 2"):
        _ws_model().load_weights(tmp_path / "old.weights.h5")


def test_in_xla_context_only_inside_jit_compiled_functions():
    seen = {}

    def probe(tag):
        seen[tag] = in_xla_context()
        return tf.constant(0.0)

    probe("eager")
    tf.function(lambda: probe("graph"))()
    tf.function(lambda: probe("xla"), jit_compile=True)()

    # A while-loop body is its own graph nested in the compiled one.
    def body(i):
        probe("xla_loop_body")
        return i + 1

    @tf.function(jit_compile=True)
    def loop():
        return tf.while_loop(lambda i: i < 1, body, [0])

    loop()
    assert seen == {"eager": False, "graph": False, "xla": True, "xla_loop_body": True}


def test_layers_never_import_the_optimizers():
    """Issue 12: keras_si.layers depends on keras, keras_si.layers and neutral keras_si modules only."""
    offenders = []
    for path in pathlib.Path(keras_si.layers.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("keras_si.optimizers", "keras_si.sam"))]
    assert not offenders, offenders
