"""SGDClip against a float64 NumPy reference of the paper's Algorithm 1, and its properties."""

import copy
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from tests import testing_utils as tu

SHAPES = [(7,), (5, 4), (3, 3, 2, 4)]


from tests.references.optimizers import assert_close_to_reference, sgd_clip_reference  # noqa: E402


def run_keras(optimizer, xs, grad_seq):
    variables = [keras.Variable(x, dtype="float32", name=f"v{i}") for i, x in enumerate(xs)]
    scales = []
    for gs in grad_seq:
        optimizer.apply([tf.constant(g, tf.float32) for g in gs], variables)
        scales.append(float(optimizer.clip_scale.numpy()))
    return [v.numpy() for v in variables], scales


def make_problem(seed, steps, grad_scale):
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*s) for s in SHAPES]
    grad_seq = [[grad_scale * rng.randn(*s) * rng.uniform(0.2, 3.0) for s in SHAPES] for _ in range(steps)]
    return xs, grad_seq


# The clip scales are single scalars: float32 roundoff of the two norms (~1e-6).
RTOL = 2e-5


@pytest.mark.parametrize("grad_scale,expect_clip", [(30.0, True), (0.05, False)])
@pytest.mark.parametrize("scheduled", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_float64_reference(grad_scale, expect_clip, scheduled, momentum):
    steps, lam, k = 40, 0.05, 2.0
    xs, grad_seq = make_problem(0, steps, grad_scale)
    if scheduled:
        lr = keras.optimizers.schedules.PiecewiseConstantDecay([10, 25], [0.1, 0.01, 0.001])
        lr_at = lambda t: 0.1 if t <= 10 else (0.01 if t <= 25 else 0.001)  # noqa: E731
    else:
        lr, lr_at = 0.1, (lambda t: 0.1)
    opt = keras_si.SGDClip(learning_rate=lr, weight_decay=lam, clip_factor=k, momentum=momentum)
    got, got_scales = run_keras(opt, xs, grad_seq)
    want, want_scales = sgd_clip_reference(xs, grad_seq, lr_at, lam, k, momentum)
    np.testing.assert_allclose(got_scales, want_scales, rtol=RTOL)
    assert_close_to_reference(got, want)
    n_clipped = sum(s < 1 for s in want_scales)
    # Both branches are exercised: most steps clip with large gradients, none with small.
    assert (n_clipped >= 10) if expect_clip else (n_clipped == 0)
    assert float(opt.clipped_steps.numpy()) == n_clipped


def test_no_clipping_is_sgd_with_weight_decay():
    xs, grad_seq = make_problem(1, 10, 30.0)
    got, scales = run_keras(keras_si.SGDClip(0.1, weight_decay=0.05, clip_factor=None), xs, grad_seq)
    want, _ = sgd_clip_reference(xs, grad_seq, lambda t: 0.1, 0.05, None)
    assert scales == [1.0] * 10
    assert_close_to_reference(got, want)


def test_no_slot_variables_without_momentum():
    opt = keras_si.SGDClip(0.1)
    opt.build([keras.Variable(np.ones((100, 10), "float32"))])
    # Only scalars: iterations, learning rate and the diagnostics.
    assert all(int(np.prod(v.shape)) == 1 for v in opt.variables)


def test_norm_equilibrium():
    """||x||^2 settles at sigma sqrt(eta / (lam (2 - eta lam))) (paper §3.3).

    Toy scale-invariant loss: at unit norm its stochastic gradient has norm
    sigma and is orthogonal to x (Euler), so at norm r it is sigma / r.
    """
    eta, lam, sigma, d = 0.1, 0.05, 3.0, 50
    rng = np.random.RandomState(0)
    x = keras.Variable(rng.randn(d).astype("float32") * 5.0)
    opt = keras_si.SGDClip(eta, weight_decay=lam, clip_factor=2.0)
    directions = tf.constant(rng.randn(3000, d).astype("float32"))

    @tf.function
    def step(u):
        xv = tf.convert_to_tensor(x)
        r = tf.norm(xv)
        u = u - tf.tensordot(u, xv, 1) / r**2 * xv  # orthogonal to x
        g = sigma / r * u / tf.norm(u)
        opt.apply([g], [x])

    for i in range(directions.shape[0]):
        step(directions[i])
    want = sigma * math.sqrt(eta / (lam * (2 - eta * lam)))
    got = float(np.sum(x.numpy() ** 2))
    assert abs(got - want) / want < 0.02, (got, want)
    # At equilibrium ||g|| ~ sqrt(2 lam / eta) ||x||, below the threshold k times that.
    assert float(opt.clipped_steps.numpy()) < 100  # only during the approach from ||x|| = 35


# ------------------------------------------------------------- distribution
def _clipping_sgdclip():
    # lr large enough that most steps clip (checked below).
    return keras_si.SGDClip(learning_rate=0.5, weight_decay=0.01, clip_factor=0.5)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_mirrored_strategy_equals_single_device(momentum):
    make = lambda: keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5, momentum=momentum)  # noqa: E731
    single, model = tu.train_weights(make, steps=4)
    assert float(model.optimizer.clipped_steps.numpy()) >= 2  # the clip is active
    mirrored, _ = tu.train_weights(make, strategy=tu.two_cpu_strategy(), steps=4)
    # Same global batch; only the order of float32 sums differs.
    tu.assert_weights_close(single, mirrored, rtol=1e-5, atol=1e-6)


def test_keras_global_clipnorm_differs_under_mirrored_strategy():
    """The harness can see the bug SGDClip avoids: Keras clips per replica."""
    make = lambda: keras.optimizers.SGD(0.5, global_clipnorm=0.05)  # noqa: E731
    single, _ = tu.train_weights(make, steps=2)
    mirrored, _ = tu.train_weights(make, strategy=tu.two_cpu_strategy(), steps=2)
    diff = max(np.max(np.abs(a - b)) for a, b in zip(single, mirrored))
    assert diff > 1e-3


def test_multioptimizer_norms_over_own_variables_under_strategy():
    strategy = tu.two_cpu_strategy()

    def make():
        def select(v):
            return sgd if "/hidden/" in v.path else adam

        sgd = keras_si.SGDClip(0.1, weight_decay=0.01)
        adam = keras.optimizers.Adam(1e-3)
        return keras.optimizers.MultiOptimizer(select)

    weights, model = tu.train_weights(make, strategy=strategy, steps=2)
    sgd = keras_si.callbacks.find_optimizers(model.optimizer)[0]
    own = [w for w, v in zip(weights, model.trainable_variables) if "/hidden/" in v.path]
    assert len(own) == 2
    # weight_norm is ||x|| before the last step; check it is the norm of the
    # SGDClip group (not of the whole model) by redoing the last step's norm.
    assert 0 < float(sgd.weight_norm.numpy()) < np.sqrt(sum(np.sum(w**2) for w in weights))


def test_gradient_accumulation_rejected_under_strategy():
    with tu.two_cpu_strategy().scope():
        with pytest.raises(ValueError, match="gradient_accumulation_steps"):
            keras_si.SGDClip(0.1, gradient_accumulation_steps=2)
        with pytest.raises(ValueError, match="ema_overwrite_frequency"):
            keras_si.SGDClip(0.1, use_ema=True, ema_overwrite_frequency=2)


def test_ema_works_under_strategy():
    make = lambda: keras_si.SGDClip(0.1, use_ema=True)  # noqa: E731
    single, _ = tu.train_weights(make, steps=3)
    mirrored, _ = tu.train_weights(make, strategy=tu.two_cpu_strategy(), steps=3)
    tu.assert_weights_close(single, mirrored)


def test_gradient_accumulation_matches_reference():
    xs, grad_seq = make_problem(2, 6, 30.0)
    opt = keras_si.SGDClip(0.1, weight_decay=0.05, gradient_accumulation_steps=2)
    got, _ = run_keras(opt, xs, grad_seq)
    averaged = [[(a + b) / 2 for a, b in zip(grad_seq[i], grad_seq[i + 1])] for i in range(0, 6, 2)]
    want, _ = sgd_clip_reference(xs, averaged, lambda t: 0.1, 0.05, 2.0)
    assert_close_to_reference(got, want)


# ----------------------------------------------------------- compilation
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_xla_on_equals_off(momentum):
    make = lambda: keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5, momentum=momentum)  # noqa: E731
    eager, _ = tu.train_weights(make, steps=4, jit_compile=False)
    xla, _ = tu.train_weights(make, steps=4, jit_compile=True)
    # XLA sums the norms in another order (see _norms): float32 roundoff only.
    tu.assert_weights_close(eager, xla, rtol=1e-5, atol=1e-6)


def test_float16_variables_train():
    v = keras.Variable(np.ones((8, 8), "float16") * 100, dtype="float16")
    opt = keras_si.SGDClip(0.1, weight_decay=0.01)
    opt.apply([tf.ones((8, 8), tf.float16) * 1000], [v])
    assert np.isfinite(float(opt.weight_norm.numpy()))
    np.testing.assert_allclose(float(opt.weight_norm.numpy()), 800.0, rtol=1e-3)
    assert np.all(np.isfinite(v.numpy()))


def test_mixed_precision_clip_sees_unscaled_gradients():
    x, y = tu.regression_data(n=32)

    def grad_norm_after_one_step(policy):
        keras.mixed_precision.set_global_policy(policy)
        try:
            model = tu.small_model(seed=0)
            model.compile(optimizer=keras_si.SGDClip(0.01, weight_decay=0.01), loss="mse")
            model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
            if policy == "mixed_float16":
                assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
            return float(keras_si.callbacks.find_optimizers(model.optimizer)[0].grad_norm.numpy())
        finally:
            keras.mixed_precision.set_global_policy("float32")

    full = grad_norm_after_one_step("float32")
    mixed = grad_norm_after_one_step("mixed_float16")
    # float16 activations carry ~1e-3 relative error; the loss scale is 2^15.
    np.testing.assert_allclose(mixed, full, rtol=2e-2)


# --------------------------------------------------------- serialization
def test_get_config_round_trip():
    opt = keras_si.SGDClip(
        keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5),
        weight_decay=0.02, clip_factor=3.0, momentum=0.5, exclude_from_weight_decay=["bias"],
    )
    config = opt.get_config()
    # (from_config and deserialize turn nested dicts into objects in place: copy.)
    clone = keras_si.SGDClip.from_config(copy.deepcopy(config))
    serialized = keras.optimizers.serialize(opt)
    assert keras.optimizers.serialize(clone) == serialized
    restored = keras.optimizers.deserialize(copy.deepcopy(serialized))
    assert isinstance(restored, keras_si.SGDClip)
    assert keras.optimizers.serialize(restored) == serialized


def test_keras_save_load_continues_identically(tmp_path):
    x, y = tu.regression_data(n=64)
    model = tu.small_model(seed=0)
    model.compile(optimizer=keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5, momentum=0.9), loss="mse")
    model.fit(x[:32], y[:32], batch_size=16, verbose=0, shuffle=False)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, keras_si.SGDClip)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    model.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x[32:], y[32:], batch_size=16, verbose=0, shuffle=False)
    tu.assert_weights_close(model.get_weights(), loaded.get_weights(), rtol=0, atol=0)


def test_tf_checkpoint_round_trip(tmp_path):
    xs, grad_seq = make_problem(3, 4, 30.0)
    variables = [tf.Variable(x.astype("float32")) for x in xs]
    opt = keras_si.SGDClip(0.1, weight_decay=0.05, momentum=0.9)
    for gs in grad_seq[:2]:
        opt.apply([tf.constant(g, tf.float32) for g in gs], variables)
    ckpt = tf.train.Checkpoint(optimizer=opt, variables=variables)
    path = ckpt.save(os.path.join(tmp_path, "ckpt"))
    expected_after = None
    for gs in grad_seq[2:]:
        opt.apply([tf.constant(g, tf.float32) for g in gs], variables)
    expected_after = [v.numpy() for v in variables]

    variables2 = [tf.Variable(np.zeros_like(x, "float32")) for x in xs]
    opt2 = keras_si.SGDClip(0.1, weight_decay=0.05, momentum=0.9)
    opt2.build(variables2)
    tf.train.Checkpoint(optimizer=opt2, variables=variables2).restore(path).assert_consumed()
    assert int(opt2.iterations.numpy()) == 2
    for gs in grad_seq[2:]:
        opt2.apply([tf.constant(g, tf.float32) for g in gs], variables2)
    for a, b in zip(expected_after, variables2):
        np.testing.assert_array_equal(a, b.numpy())


# --------------------------------------------------------------- selection


def test_sparse_embedding_gradients_match_dense():
    """Embedding lookups give IndexedSlices with repeated rows; norms must not double count."""
    table = np.random.RandomState(0).randn(10, 4).astype("float32")
    ids = tf.constant([1, 3, 1, 1, 7])

    def grads(v):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(v, ids) ** 2) * 50.0
        return tape.gradient(loss, v)

    sparse_v, dense_v = tf.Variable(table), tf.Variable(table)
    g = grads(sparse_v)
    assert isinstance(g, tf.IndexedSlices)
    opt_s, opt_d = keras_si.SGDClip(0.1, 0.05), keras_si.SGDClip(0.1, 0.05)
    opt_s.apply([g], [sparse_v])
    opt_d.apply([tf.convert_to_tensor(g)], [dense_v])
    assert float(opt_d.clip_scale.numpy()) < 1  # clipped, so the norm matters
    np.testing.assert_allclose(float(opt_s.grad_norm.numpy()), float(opt_d.grad_norm.numpy()), rtol=1e-6)
    np.testing.assert_allclose(sparse_v.numpy(), dense_v.numpy(), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(weight_decay=0.0), "weight_decay"),
        (dict(weight_decay=None), "weight_decay"),
        (dict(clip_factor=0.0), "clip_factor"),
        (dict(clip_factor=-2.0), "clip_factor"),
        (dict(momentum=1.0), "momentum"),
        (dict(global_clipnorm=1.0), "global_clipnorm"),
        (dict(exclude_from_weight_decay=["("]), "exclude_from_weight_decay"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras_si.SGDClip(**kwargs)


def test_weight_decay_zero_allowed_without_clipping():
    keras_si.SGDClip(0.1, weight_decay=0.0, clip_factor=None)


def test_non_float_variables_rejected():
    opt = keras_si.SGDClip(0.1)
    with pytest.raises(ValueError, match="int32"):
        opt.build([keras.Variable(np.ones(3, "float32"), name="w"), keras.Variable(np.ones(3, "int32"), name="steps", trainable=False)])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_non_finite_gradient_skips_step(bad, momentum):
    xs, grad_seq = make_problem(4, 3, 1.0)
    opt = keras_si.SGDClip(0.1, weight_decay=0.05, momentum=momentum)
    variables = [keras.Variable(x, dtype="float32") for x in xs]
    opt.apply([tf.constant(g, tf.float32) for g in grad_seq[0]], variables)
    before = [v.numpy() for v in variables]
    poisoned = [np.array(g) for g in grad_seq[1]]
    poisoned[1][0, 0] = bad
    opt.apply([tf.constant(g, tf.float32) for g in poisoned], variables)
    for v, b in zip(variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    assert float(opt.skipped_steps.numpy()) == 1.0
    opt.apply([tf.constant(g, tf.float32) for g in grad_seq[2]], variables)
    assert all(np.all(np.isfinite(v.numpy())) for v in variables)
    assert not np.allclose(variables[0].numpy(), before[0])


# ---------------------------------------------------------------- callback


def test_loss_scale_factor_gives_the_same_training():
    make_plain = lambda: keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5)  # noqa: E731
    make_scaled = lambda: keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5, loss_scale_factor=256.0)  # noqa: E731
    plain, _ = tu.train_weights(make_plain, steps=3)
    scaled, model = tu.train_weights(make_scaled, steps=3)
    assert float(model.optimizer.clipped_steps.numpy()) >= 1
    # A power of two scales float32 exactly; only the unscaling rounds.
    tu.assert_weights_close(plain, scaled, rtol=1e-6, atol=1e-7)


def _zero_kernel_model():
    # A group whose weights are all zero: the threshold k sqrt(2 lam / eta) ||x|| is 0.
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="zeros")])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_all_zero_weights_with_clipping_raise_at_the_first_step(jit_compile):
    model = _zero_kernel_model()
    model.compile(optimizer=keras_si.SGDClip(0.1, weight_decay=0.01), loss="mse", jit_compile=jit_compile)
    with pytest.raises(ValueError, match=r"all zero \(global norm \|\|x\|\| = 0\).*clip_factor=None"):
        model.fit(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), batch_size=4, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], 0.0)
    # Eagerly too, before anything moved.
    v = keras.Variable(np.zeros((3, 2), "float32"), name="w")
    opt = keras_si.SGDClip(0.1, weight_decay=0.01)
    for _ in range(2):  # and again at the next try: nothing has moved
        with pytest.raises(ValueError, match="all zero"):
            opt.apply([tf.ones((3, 2))], [v])
    np.testing.assert_array_equal(v.numpy(), 0.0)


def test_zero_weights_without_clipping_train_and_the_check_reads_the_first_step():
    x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    # Unclipped SGD + decay moves zero weights: the first step is -eta * g.
    model = _zero_kernel_model()
    model.compile(optimizer=keras_si.SGDClip(0.1, weight_decay=0.01, clip_factor=None), loss="mse")
    model.fit(x, y, batch_size=4, verbose=0)
    # At W = 0, b = 0 the gradient of the mean over 4 samples x 2 outputs of (x W + b - 1)^2
    # is (2 / 8) * sum_n x_n (0 - 1) = -1 per entry, so W becomes 0.1.
    np.testing.assert_allclose(model.get_weights()[0], np.full((3, 2), 0.1), rtol=1e-6)
    # Built on zeros (as when a .keras file is loaded) but non-zero by the first step: no error.
    model = _zero_kernel_model()
    model.compile(optimizer=keras_si.SGDClip(0.1, weight_decay=0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.layers[0].kernel.assign(np.full((3, 2), 0.5, "float32"))
    model.fit(x, y, batch_size=4, verbose=0)
    assert not np.allclose(model.get_weights()[0], 0.5)
