"""Adaptive gradient clipping against a float64 reference from the NFNets paper, and under tf.distribute."""

import copy
import os

import keras
import numpy as np
import pytest

import keras_si
from tests import testing_utils as tu
from tests.references.optimizers import agc_sgd_reference, assert_close_to_reference

SHAPES = [(7,), (5, 4), (3, 3, 2, 4)]


run = tu.apply_gradient_sequence


@pytest.mark.parametrize("grad_scale,clips", [(5.0, True), (1e-4, False)])
def test_matches_reference(grad_scale, clips):
    rng = np.random.RandomState(0)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[grad_scale * rng.randn(*s) for s in SHAPES] for _ in range(10)]
    got = run(keras_si.AGC(keras.optimizers.SGD(0.1), clipping=0.05), xs, grads)
    want, clipped_any = agc_sgd_reference(xs, grads, 0.1, 0.05, 1e-3)
    assert clipped_any == clips
    assert_close_to_reference(got, want)


def test_exclude_by_path():
    rng = np.random.RandomState(1)
    xs = [rng.randn(*s) for s in SHAPES]
    grads = [[5.0 * rng.randn(*s) for s in SHAPES] for _ in range(5)]
    got = run(keras_si.AGC(keras.optimizers.SGD(0.1), clipping=0.05, exclude_from_clipping=["classifier"]), xs, grads,
              names=["bias", "kernel", "classifier_kernel"])
    want, _ = agc_sgd_reference(xs, grads, 0.1, 0.05, 1e-3, clip_mask=[True, True, False])
    assert_close_to_reference(got, want)


def test_config_and_keras_round_trip(tmp_path):
    opt = keras_si.AGC(keras.optimizers.Adam(1e-3), clipping=0.02, epsilon=1e-4, exclude_from_clipping=["out"])
    clone = keras_si.AGC.from_config(copy.deepcopy(opt.get_config()))
    assert clone.get_config() == opt.get_config()
    x, y = tu.regression_data(n=64)
    model = tu.small_model(seed=0)
    model.compile(optimizer=keras_si.AGC(keras.optimizers.SGD(0.5, momentum=0.9), clipping=0.01), loss="mse")
    model.fit(x[:32], y[:32], batch_size=16, verbose=0, shuffle=False)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, keras_si.AGC)
    model.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    tu.assert_weights_close(model.get_weights(), loaded.get_weights(), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(clipping=-0.1), "clipping"), (dict(clipping=0.0), "clipping"), (dict(epsilon=-1.0), "epsilon"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_si.AGC(keras.optimizers.SGD(0.1), **kwargs)
    with pytest.raises(ValueError, match="inner_optimizer"):
        keras_si.AGC("sgd")


# ------------------------------------------------------------------ the wrapper
import tensorflow as tf  # noqa: E402


def _vars(xs, names=None, dtype="float32"):
    names = names or [f"v{i}" for i in range(len(xs))]
    return [keras.Variable(np.asarray(x, dtype), name=n) for x, n in zip(xs, names)]


def _case(seed=0, scale=5.0, steps=1):
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*s) for s in SHAPES]
    return xs, [[scale * rng.randn(*s) for s in SHAPES] for _ in range(steps)]


def test_set_weights_restores_the_inner_state():
    xs, grads = _case(steps=3)
    o1 = keras_si.AGC(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.05)
    v1 = _vars(xs)
    for gs in grads:
        o1.apply([tf.constant(g, tf.float32) for g in gs], v1)
    o2 = keras_si.AGC(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.05)
    v2 = _vars([v.numpy() for v in v1])
    o2.build(v2)
    o2.set_weights([v.numpy() for v in o1.variables])
    assert int(o2.iterations) == 3
    for a, b in zip(o1.variables, o2.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    g = [tf.constant(g, tf.float32) for g in grads[0]]
    o1.apply(g, v1)
    o2.apply(g, v2)
    tu.assert_weights_close([v.numpy() for v in v1], [v.numpy() for v in v2], rtol=0, atol=0)
    with pytest.raises(ValueError, match="weights"):
        o2.set_weights([v.numpy() for v in o1.variables][:-1])


def test_checkpoint_carries_the_inner_state(tmp_path):
    xs, grads = _case(steps=2)
    o1 = keras_si.AGC(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.05)
    v1 = _vars(xs)
    for gs in grads:
        o1.apply([tf.constant(g, tf.float32) for g in gs], v1)
    path = tf.train.Checkpoint(optimizer=o1).save(os.path.join(tmp_path, "ckpt"))
    o2 = keras_si.AGC(keras.optimizers.SGD(0.1, momentum=0.9), clipping=0.05)
    o2.build(_vars(xs))
    tf.train.Checkpoint(optimizer=o2).restore(path).assert_consumed()
    assert int(o2.iterations) == 2
    for a, b in zip(o1.variables, o2.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_exclude_from_weight_decay_reaches_the_inner_optimizer():
    xs, grads = _case()
    opt = keras_si.AGC(keras.optimizers.SGD(1.0, weight_decay=0.004), clipping=0.05)
    opt.exclude_from_weight_decay(var_names=["x"])
    got = run(opt, xs, grads, names=["x", "y", "z"])
    # Keras decays before the step: w <- w (1 - lr wd) - lr clip(g; w before decay).
    want, clipped = agc_sgd_reference(xs, grads, 1.0, 0.05, 1e-3)
    assert clipped
    want = [want[0]] + [w - 0.004 * np.asarray(x, np.float64) for w, x in zip(want[1:], xs[1:])]
    assert_close_to_reference(got, want)


@pytest.mark.parametrize("kwargs,match", [
    (dict(use_ema=True), "use_ema"), (dict(weight_decay=0.1), "weight_decay"), (dict(clipnorm=1.0), "clipnorm"),
    (dict(gradient_accumulation_steps=2), "gradient_accumulation_steps"), (dict(learning_rate=0.1), "learning_rate"),
    (dict(loss_scale_factor=8.0), "loss_scale_factor"), (dict(bogus=1), "unknown arguments: bogus"),
])
def test_base_arguments_belong_to_the_inner_optimizer(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        keras_si.AGC(keras.optimizers.SGD(0.1), **kwargs)
    assert "\n" not in str(e.value)
    if match != "unknown arguments: bogus":
        assert "inner optimizer" in str(e.value)
    # The defaults are accepted.
    keras_si.AGC(keras.optimizers.SGD(0.1), use_ema=False, weight_decay=None, ema_momentum=0.99)


def test_gradient_accumulation_clips_the_accumulated_gradient():
    xs, grads = _case(steps=2)
    got = run(keras_si.AGC(keras.optimizers.SGD(1.0, gradient_accumulation_steps=2), clipping=0.05), xs, grads)
    mean = [[(a + b) / 2 for a, b in zip(*grads)]]
    want, clipped = agc_sgd_reference(xs, mean, 1.0, 0.05, 1e-3)
    assert clipped
    # Clipping each micro-batch gives another step: the test can tell them apart.
    per_micro, _ = agc_sgd_reference(xs, grads, 0.5, 0.05, 1e-3)
    assert max(np.max(np.abs(a - b)) for a, b in zip(want, per_micro)) > 1e-2
    assert_close_to_reference(got, want)


def test_loss_scale_factor_clips_the_unscaled_gradient():
    xs, grads = _case()
    opt = keras_si.AGC(keras.optimizers.SGD(1.0, loss_scale_factor=128.0), clipping=0.05)
    assert float(opt.scale_loss(2.0)) == 256.0
    got = run(opt, xs, [[128.0 * g for g in grads[0]]])
    want, clipped = agc_sgd_reference(xs, grads, 1.0, 0.05, 1e-3)
    assert clipped
    assert_close_to_reference(got, want)


def test_overwrite_with_gradient_variables_pass_untouched():
    xs, grads = _case()
    v = _vars(xs)
    v[1].overwrite_with_gradient = True
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([tf.constant(g, tf.float32) for g in grads[0]], v)
    np.testing.assert_array_equal(v[1].numpy(), grads[0][1].astype("float32"))
    want, _ = agc_sgd_reference([xs[0], xs[2]], [[grads[0][0], grads[0][2]]], 1.0, 0.05, 1e-3)
    assert_close_to_reference([v[0].numpy(), v[2].numpy()], want)


@pytest.mark.parametrize("name", ["embeddings", "kernel"])
def test_sparse_gradient_with_duplicates_steps_like_the_dense_one(name):
    """`embeddings` (a row per token: clipped row by row) and `kernel` (units span rows: densified)."""
    rng = np.random.RandomState(5)
    x = rng.randn(6, 4)
    values = 5.0 * rng.randn(5, 4)
    indices = np.array([1, 3, 1, 0, 3])
    dense = np.zeros((6, 4))
    np.add.at(dense, indices, values)
    sparse_var, dense_var = _vars([x, x], [name, name])
    sparse = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices), tf.constant([6, 4]))
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([sparse], [sparse_var])
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([tf.constant(dense, tf.float32)], [dense_var])
    np.testing.assert_allclose(sparse_var.numpy(), dense_var.numpy(), rtol=1e-6, atol=1e-6)
    # And the dense step is AGC's, with the units of that name (rows for an embedding table).
    axes = (1,) if name == "embeddings" else (0,)
    wn = np.sqrt(np.sum(x**2, axis=axes, keepdims=True))
    gn = np.sqrt(np.sum(dense**2, axis=axes, keepdims=True))
    factor = np.where(gn > 0.05 * np.maximum(wn, 1e-3), 0.05 * np.maximum(wn, 1e-3) / np.maximum(gn, 1e-30), 1.0)
    assert (factor < 1).any()
    assert_close_to_reference([dense_var.numpy()], [x - dense * factor])


def test_float64_variable_with_float32_gradient():
    xs, grads = _case()
    v = _vars(xs, dtype="float64")
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([tf.constant(g, tf.float32) for g in grads[0]], v)
    assert all(keras.backend.standardize_dtype(t.dtype) == "float64" for t in v)
    want, clipped = agc_sgd_reference(xs, grads, 1.0, 0.05, 1e-3)
    assert clipped
    assert_close_to_reference([t.numpy() for t in v], want)


def test_one_agc_per_inner_optimizer_and_no_loss_scale_inner():
    inner = keras.optimizers.SGD(0.1)
    keras_si.AGC(inner)
    with pytest.raises(ValueError, match="already wrapped"):
        keras_si.AGC(inner)
    with pytest.raises(ValueError, match="LossScaleOptimizer"):
        keras_si.AGC(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)))


def test_float32_gradient_clipped_in_the_float64_variable_dtype():
    xs, grads = _case()
    v32, v64 = _vars(xs, dtype="float64"), _vars(xs, dtype="float64")
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([tf.constant(g, tf.float32) for g in grads[0]], v32)
    g64 = [tf.constant(np.float32(g), tf.float64) for g in grads[0]]  # the same values, exactly
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply(g64, v64)
    tu.assert_weights_close([v.numpy() for v in v32], [v.numpy() for v in v64], rtol=0, atol=0)


def test_default_names_are_unique():
    assert keras_si.AGC(keras.optimizers.SGD(0.1)).name != keras_si.AGC(keras.optimizers.SGD(0.1)).name


def test_sparse_gradient_under_a_traced_step():
    """In a tf.function the gathered rows' count is unknown: same step as eager."""
    rng = np.random.RandomState(6)
    x, values, indices = rng.randn(6, 4), 5.0 * rng.randn(5, 4), np.array([1, 3, 1, 0, 3])
    traced_var, eager_var = _vars([x, x], ["embeddings", "embeddings"])
    traced_opt = keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05)
    traced_opt.build([traced_var])

    @tf.function(input_signature=[tf.TensorSpec([None, 4]), tf.TensorSpec([None], tf.int32)])
    def step(v, i):
        traced_opt.apply([tf.IndexedSlices(v, i, tf.constant([6, 4]))], [traced_var])

    step(tf.constant(values, tf.float32), tf.constant(indices, tf.int32))
    sparse = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices, tf.int32), tf.constant([6, 4]))
    keras_si.AGC(keras.optimizers.SGD(1.0), clipping=0.05).apply([sparse], [eager_var])
    np.testing.assert_allclose(traced_var.numpy(), eager_var.numpy(), rtol=1e-6, atol=1e-6)
