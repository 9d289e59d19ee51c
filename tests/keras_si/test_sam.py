"""SharpnessAwareMinimization against a float64 NumPy SAM/ASAM written from the papers' Algorithm 1.

Backend-neutral: `make test` runs it on TensorFlow, and tests/test_backends.py
again under KERAS_BACKEND=jax and =torch (MirroredStrategy is TensorFlow's).
"""

import keras
import numpy as np
import pytest

import keras_si
from keras_si.backend import keras_private
from tests.references.sam import BATCH, D_IN, D_OUT, LR, MOMENTUM, data, mlp, reference_sam

BACKEND = keras.backend.backend()


# ---------------------------------------------------------------- the Keras side
def train_sam(strategy=None, jit_compile=False, **sam_kwargs):
    x, y = data()
    with strategy.scope() if strategy is not None else _nullcontext():
        model = mlp()
        w0 = [np.array(w, np.float64) for w in model.get_weights()]
        sam = keras_si.SharpnessAwareMinimization(model, **sam_kwargs)
        sam.compile(optimizer=keras.optimizers.SGD(LR, momentum=MOMENTUM), loss="mse", jit_compile=jit_compile)
    history = sam.fit(x.astype("float32"), y.astype("float32"), batch_size=BATCH, epochs=1, shuffle=False,
                      verbose=0)
    return w0, [np.array(w) for w in model.get_weights()], history.history["loss"][0]


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# float32 against float64 over 4 steps: each gradient carries ~1e-7 relative
# rounding, amplified by 1/||g|| and the momentum sum (at most ~10x here), so
# the weights agree to ~1e-6; 2e-5 leaves headroom, far below the size of e
# (rho = 0.05 moves the gradients by percents, which the SAM/plain test shows).
TOL = dict(rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("adaptive,rho", [(False, 0.05), (True, 0.5)])
def test_matches_reference(adaptive, rho, jit_compile):
    if BACKEND == "torch" and jit_compile and adaptive:
        # torch.compile of the two-pass step takes ~30 s on 2 CPU cores; the SAM case covers it.
        pytest.skip("torch.compile is checked on the SAM case only (time)")
    x, y = data()
    w0, got, loss = train_sam(jit_compile=jit_compile, rho=rho, adaptive=adaptive)
    want, losses = reference_sam(w0, x, y, rho, adaptive=adaptive)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)
    # The logged loss is the first pass's (at w), averaged over the epoch's steps.
    np.testing.assert_allclose(loss, np.mean(losses), rtol=1e-5)


def test_differs_from_plain_training_and_rho_zero_is_plain_training():
    x, y = data()
    w0, sam_w, _ = train_sam(rho=0.05)
    _, zero_w, _ = train_sam(rho=0.0)
    plain, _ = reference_sam(w0, x, y, rho=0.0)
    for z, p in zip(zero_w, plain):
        np.testing.assert_allclose(z, p, **TOL)
    assert max(np.abs(s - p).max() for s, p in zip(sam_w, plain)) > 1e-3


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute.MirroredStrategy is TensorFlow's")
@pytest.mark.parametrize("perturbation,splits", [("global", 1), ("replica", 2)])
def test_mirrored_strategy(perturbation, splits):
    """'global' is one-device SAM on the global batch; 'replica' perturbs each replica's half by its own gradient."""
    from tests.testing_utils import two_cpu_strategy

    x, y = data()
    w0, got, _ = train_sam(strategy=two_cpu_strategy(), rho=0.05, perturbation=perturbation)
    want, _ = reference_sam(w0, x, y, 0.05, splits=splits)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL)
    # The two definitions really differ here, so the test tells them apart.
    other, _ = reference_sam(w0, x, y, 0.05, splits=3 - splits)
    assert max(np.abs(g - o).max() for g, o in zip(got, other)) > 1e-4


def test_batch_norm_statistics_and_metrics_updated_once():
    x, y = data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((D_IN,)), keras.layers.BatchNormalization(momentum=0.9, name="bn"),
                              keras.layers.Dense(D_OUT, name="out")])
    sam = keras_si.SAM(model, rho=0.5)
    sam.compile(optimizer=keras.optimizers.SGD(LR), loss="mse", metrics=["mae"])
    history = sam.fit(x[:BATCH].astype("float32"), y[:BATCH].astype("float32"), batch_size=BATCH, verbose=0)
    # One update of the moving mean, from the clean pass (the BN input is x itself).
    np.testing.assert_allclose(model.get_layer("bn").moving_mean.numpy(), 0.1 * x[:BATCH].mean(0), rtol=1e-5,
                               atol=1e-6)
    assert history.history["mae"][0] > 0
    # The metric saw one pass: its value is the clean pass's mean absolute error,
    # whose outputs use the batch statistics; recompute them in NumPy.
    xb = x[:BATCH]
    bn = model.get_layer("bn")
    z = (xb - xb.mean(0)) / np.sqrt(xb.var(0) + bn.epsilon)  # gamma 1, beta 0 at initialisation
    kernel0, bias0 = _initial_dense(seed=0)
    np.testing.assert_allclose(history.history["mae"][0], np.abs(z @ kernel0 + bias0 - y[:BATCH]).mean(),
                               rtol=1e-5)


def _initial_dense(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((D_IN,)), keras.layers.BatchNormalization(momentum=0.9, name="bn"),
                              keras.layers.Dense(D_OUT, name="out")])
    return [w.numpy().astype(np.float64) for w in model.get_layer("out").weights]


def test_dropout_seeds_advance_past_the_second_pass():
    model = keras.Sequential([keras.Input((D_IN,)), keras.layers.Dropout(0.5, name="drop"),
                              keras.layers.Dense(D_OUT, name="out")])
    sam = keras_si.SAM(model, rho=0.05)
    sam.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    state = model.get_layer("drop").seed_generator.state
    before = state.numpy().copy()
    x, y = data()
    sam.fit(x[:BATCH].astype("float32"), y[:BATCH].astype("float32"), batch_size=BATCH, verbose=0)
    # Two training passes, two draws: the same state as two calls of the layer.
    probe = keras.layers.Dropout(0.5)
    probe.seed_generator.state.assign(before)
    for _ in range(2):
        probe(x[:BATCH].astype("float32"), training=True)
    np.testing.assert_array_equal(state.numpy(), probe.seed_generator.state.numpy())


def test_non_finite_gradient_gives_no_perturbation():
    sam = keras_si.SAM(mlp(), rho=0.05)
    variables = sam.trainable_variables
    grads = [keras.ops.full(v.shape, np.inf) for v in variables]
    e = sam.ascent(grads, variables)
    assert all(np.all(keras.ops.convert_to_numpy(t) == 0) for t in e)
    # A zero gradient also gives e = 0 (eps in the denominator), and a missing one is treated as zero.
    e = sam.ascent([None] + [keras.ops.zeros(v.shape) for v in variables[1:]], variables)
    assert all(np.all(keras.ops.convert_to_numpy(t) == 0) for t in e)


def test_mixed_float16():
    x, y = data()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        w0, got, loss = train_sam(rho=0.05)
    finally:
        keras.config.set_dtype_policy("float32")
    want, losses = reference_sam(w0, x, y, 0.05)
    # float16 activations carry 2^-11 ~ 5e-4 relative rounding per operation;
    # over 4 steps the weights stay within 1e-2 of the float64 run.
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(loss, np.mean(losses), rtol=1e-2)


def test_config_and_keras_file_round_trip(tmp_path):
    x, _ = data()
    sam = keras_si.SAM(mlp(), rho=0.3, adaptive=True, adaptive_offset=0.02, perturbation="global")
    sam.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    config = sam.get_config()
    clone = keras_si.SharpnessAwareMinimization.from_config(config)
    assert (clone.rho, clone.adaptive, clone.adaptive_offset, clone.perturbation) == (0.3, True, 0.02, "global")
    path = str(tmp_path / "sam.keras")
    sam.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, keras_si.SharpnessAwareMinimization) and loaded.rho == 0.3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), sam.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(rho=-0.1), "rho"),
    (dict(rho=float("nan")), "rho"),
    (dict(adaptive_offset=-1.0), "adaptive_offset"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(perturbation="local"), "perturbation"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_si.SAM(mlp(), **kwargs)


def test_model_must_be_a_keras_model():
    with pytest.raises(TypeError, match="model"):
        keras_si.SAM(lambda x: x)


@pytest.mark.parametrize("old", ["eta", "eps"])
def test_renamed_arguments_are_refused(old):
    """0.1.0 renamed eta -> adaptive_offset and eps -> epsilon (CHANGELOG): Keras refuses the old names by name."""
    with pytest.raises(ValueError, match=old):
        keras_si.SAM(mlp(), **{old: 0.1})


def test_adaptive_offset_is_used():
    """ASAM's e for one variable, by hand: rho T^2 g / ||T g|| with T = |w| + adaptive_offset."""
    sam = keras_si.SAM(mlp(), rho=0.5, adaptive=True, adaptive_offset=0.3)
    variables = sam.trainable_variables
    rng = np.random.RandomState(0)
    grads = [rng.randn(*v.shape).astype("float32") for v in variables]
    t = [np.abs(keras.ops.convert_to_numpy(v).astype(np.float64)) + 0.3 for v in variables]
    norm = np.sqrt(sum(np.sum((ti * g) ** 2) for ti, g in zip(t, grads)))
    for got, ti, g in zip(sam.ascent([keras.ops.convert_to_tensor(g) for g in grads], variables), t, grads):
        # float32 products and one norm: a few roundings of 6e-8.
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), 0.5 * ti * ti * g / norm, rtol=1e-5, atol=1e-7)


def test_keras_private_api_is_still_there():
    """Fails with a message naming the attribute when a Keras upgrade removes private API SAM relies on."""
    keras_private.check()
