"""The Keras 3 optimizer contract, run through every public keras_si optimizer and wrapper.

What every Keras optimizer guarantees (keras/src/optimizers/*_test.py), written
here from scratch as properties with a right value each: a second computation
that must give the same step (the large batch for gradient accumulation, the
unscaled gradient for loss scaling, the dense gradient for a sparse one, ...),
or a NumPy value (EMA, Keras's clip options). The algorithms themselves are
checked against float64 references in the other modules of this folder.

Tolerances: "same computation" comparisons (a clone, a restored state, a cast
that loses nothing) must agree exactly; "same math, other rounding" ones
(NumPy-summed gradients, an EMA in float64, XLA's fusions) get `RTOL` of the
tensor's largest magnitude: a few float32 roundings (6e-8 each) over 3-4 steps
stay near 1e-6, and a wrong step is off by > 1e-2.

Backend-neutral: `make test` runs it on TensorFlow and tests/test_backends.py
under KERAS_BACKEND=jax and =torch. What exists on TensorFlow only
(tf.IndexedSlices gradients, tf.Variable, tf.train.Checkpoint) is skipped
elsewhere with the reason. SAM is a model wrapper, not an optimizer:
tests/keras_si/test_sam.py.
"""

import os
import pickle
import warnings

import keras
import numpy as np
import pytest

import keras_si
from tests.references.optimizers import assert_close_to_reference

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf

tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow-only API")
# JAX and PyTorch differentiate an embedding lookup into a dense gradient;
# only TensorFlow hands optimizers sparse tf.IndexedSlices.
sparse_only = pytest.mark.skipif(BACKEND != "tensorflow",
                                 reason="sparse (IndexedSlices) gradients exist on TensorFlow only")


def tensor(x, dtype="float32"):
    """A backend tensor of `x` in `dtype` (what Keras's trainers hand the optimizer)."""
    return keras.ops.convert_to_tensor(np.asarray(x), dtype=dtype)

# One line per public optimizer. `**kw` takes Keras's own optimizer arguments
# (use_ema, loss_scale_factor, clipnorm, ...); AGC forwards them to its inner
# optimizer, which applies them. Weight decay is on everywhere, so that the
# decay paths are exercised; gradients are large enough that SGDClip and AGC clip.
OPTIMIZERS = [
    ("SGDClip", lambda **kw: keras_si.SGDClip(0.1, weight_decay=1e-2, **kw)),
    ("SGDClip(momentum)", lambda **kw: keras_si.SGDClip(0.1, weight_decay=1e-2, momentum=0.9, **kw)),
    ("SGDP", lambda **kw: keras_si.SGDP(0.1, momentum=0.9, weight_decay=1e-2, **kw)),
    ("AdamP", lambda **kw: keras_si.AdamP(0.01, weight_decay=1e-2, **kw)),
    ("LARS", lambda **kw: keras_si.LARS(0.5, momentum=0.9, weight_decay=1e-2, trust_coefficient=0.02, **kw)),
    ("RAdam", lambda **kw: keras_si.RAdam(0.01, beta_2=0.9, weight_decay=1e-2, **kw)),
    ("AGC(SGD)", lambda **kw: keras_si.AGC(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-2, **kw),
                                           clipping=0.05)),
]
MAKE = dict(OPTIMIZERS)
NAMES = [name for name, _ in OPTIMIZERS]

# (optimizer, behaviour) pairs that fail today because of known, owned bugs.
# strict=True: the test fails loudly ("XPASS(strict)") the day the fix lands;
# then delete the line.
_AGC_PENDING = "AGC wrapper fixes pending"
PENDING = {
    # e.g. ("AGC(SGD)", "sparse_fit"): _AGC_PENDING. Emptied by 828a6eb, which
    # fixed the three AGC pairs this suite found (unique names, the sparse clip
    # under `fit`, the clip of a float32 gradient of a float64 variable).
}

# Optimizers that reject Keras's clipnorm/clipvalue/global_clipnorm (their own
# clip replaces them), and wrappers whose inner optimizer takes them and
# applies them after the wrapper's own clip.
REJECTS_KERAS_CLIP = {"SGDClip", "SGDClip(momentum)"}
INNER_KERAS_CLIP = {"AGC(SGD)"}


def cases(behaviour, names=NAMES):
    """The registry as pytest params, with the pending pairs of `behaviour` as strict xfails."""
    out = []
    for name in names:
        reason = PENDING.get((name, behaviour))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


# ---------------------------------------------------------------- helpers
SHAPES = [(3,), (4, 3), (2, 2, 2, 3)]  # bias-like vector, dense kernel, conv kernel (HWIO)
VAR_NAMES = ["bias", "kernel", "conv_kernel"]
RTOL = 1e-5


def problem(seed=0, steps=3, grad_scale=3.0):
    rng = np.random.RandomState(seed)
    xs = [rng.randn(*s).astype("float32") for s in SHAPES]
    grads = [[(grad_scale * rng.randn(*s)).astype("float32") for s in SHAPES] for _ in range(steps)]
    return xs, grads


def variables(xs, dtype="float32"):
    return [keras.Variable(x, dtype=dtype, name=n) for x, n in zip(xs, VAR_NAMES)]


def run(optimizer, xs, grad_seq, dtype="float32"):
    """Applies each step's gradients (NumPy arrays, cast to `dtype`) to fresh variables; returns their values."""
    vs = variables(xs, dtype)
    for gs in grad_seq:
        optimizer.apply([tensor(g, dtype) for g in gs], vs)
    return [v.numpy() for v in vs]


def assert_equal(got, want):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=f"tensor {i}")


def optimizer_variable_values(optimizer):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables]


# -------------------------------------------------------------- behaviours
@pytest.mark.parametrize("name", cases("iterations"))
def test_iterations_count_applied_steps(name):
    opt = MAKE[name]()
    xs, grads = problem(steps=3)
    vs = variables(xs)
    assert int(opt.iterations) == 0
    for t, gs in enumerate(grads, start=1):
        opt.apply([tensor(g) for g in gs], vs)
        assert int(opt.iterations) == t


@pytest.mark.parametrize("name", cases("none_gradients"))
def test_missing_gradients_leave_their_variables_alone(name):
    xs, grads = problem(steps=2)
    opt = MAKE[name]()
    vs = variables(xs)
    for gs in grads:
        with pytest.warns(UserWarning, match="Gradients do not exist"):
            opt.apply([None, tensor(gs[1]), None], vs)
    np.testing.assert_array_equal(vs[0].numpy(), xs[0])
    np.testing.assert_array_equal(vs[2].numpy(), xs[2])
    assert int(opt.iterations) == 2
    # The others take the steps an optimizer of those variables alone takes.
    alone = keras.Variable(xs[1], name="kernel")
    ref = MAKE[name]()
    for gs in grads:
        ref.apply([tensor(gs[1])], [alone])
    assert_equal([vs[1].numpy()], [alone.numpy()])
    with pytest.raises(ValueError, match="No gradients provided"):
        MAKE[name]().apply([None, None, None], variables(xs))


@pytest.mark.parametrize("name", cases("ema"))
def test_ema_with_overwrite_frequency(name):
    """Keras's EMA: avg <- var at the first step, then m avg + (1 - m) var; var <- avg every k steps."""
    momentum, every = 0.6, 2
    xs, grads = problem(steps=5)
    opt = MAKE[name](use_ema=True, ema_momentum=momentum, ema_overwrite_frequency=every)
    vs = variables(xs)
    # The same optimizer without EMA, its variables overwritten by a float64 NumPy EMA.
    twin = MAKE[name]()
    twin_vs = variables(xs)
    avg = None
    for t, gs in enumerate(grads):
        opt.apply([tensor(g) for g in gs], vs)
        twin.apply([tensor(g) for g in gs], twin_vs)
        values = [v.numpy().astype(np.float64) for v in twin_vs]
        avg = values if avg is None else [momentum * a + (1 - momentum) * x for a, x in zip(avg, values)]
        if (t + 1) % every == 0:
            for v, a in zip(twin_vs, avg):
                v.assign(a.astype(np.float32))
        assert_close_to_reference([v.numpy() for v in vs], [v.numpy() for v in twin_vs], rtol=RTOL)
    holder = getattr(opt, "inner_optimizer", opt)
    assert_close_to_reference([a.numpy() for a in holder._model_variables_moving_average], avg, rtol=RTOL)


@pytest.mark.parametrize("name", cases("gradient_accumulation"))
def test_gradient_accumulation_equals_the_large_batch_step(name):
    """k accumulated micro-batch gradients take the step of their mean, once every k applies."""
    k = 2
    xs, grads = problem(steps=2 * k)
    opt = MAKE[name](gradient_accumulation_steps=k)
    vs = variables(xs)
    large = [[np.mean([grads[s + j][i] for j in range(k)], axis=0).astype(np.float32) for i in range(len(SHAPES))]
             for s in range(0, len(grads), k)]
    ref = MAKE[name]()
    ref_vs = variables(xs)
    for t, gs in enumerate(grads):
        before = [v.numpy() for v in vs]
        opt.apply([tensor(g) for g in gs], vs)
        if (t + 1) % k:
            assert_equal([v.numpy() for v in vs], before)  # a micro-batch moves nothing
        else:
            ref.apply([tensor(g) for g in large[t // k]], ref_vs)
            assert_close_to_reference([v.numpy() for v in vs], [v.numpy() for v in ref_vs], rtol=RTOL)
            assert int(opt.iterations) == (t + 1) // k


@pytest.mark.parametrize("name", cases("loss_scale_factor"))
def test_loss_scale_factor_unscales_before_everything(name):
    """With loss_scale_factor=s, gradients of the s-times-scaled loss take the unscaled step (s a power of 2: exact)."""
    s = 64.0
    xs, grads = problem(steps=3)
    got = run(MAKE[name](loss_scale_factor=s), xs, [[s * g for g in gs] for gs in grads])
    assert_equal(got, run(MAKE[name](), xs, grads))


@pytest.mark.skipif(BACKEND == "jax", reason="Keras 3.15's LossScaleOptimizer.apply fails eagerly on JAX for Keras's "
                    "own SGD too (UnexpectedTracerError in its cond); mixed_float16 fit on JAX: tests/keras_si/test_sam.py")
@pytest.mark.parametrize("name", cases("loss_scale_optimizer"))
def test_loss_scale_optimizer(name):
    scale = 2.0**10
    xs, grads = problem(steps=3)
    lso = keras.optimizers.LossScaleOptimizer(MAKE[name](), initial_scale=scale)
    vs = variables(xs)
    want_vs = variables(xs)
    plain = MAKE[name]()
    for gs in grads:
        lso.apply([tensor(scale * g) for g in gs], vs)
        plain.apply([tensor(g) for g in gs], want_vs)
    assert_equal([v.numpy() for v in vs], [v.numpy() for v in want_vs])
    # An overflowing step is skipped and halves the scale.
    lso.apply([tensor(np.full(s, np.inf, np.float32)) for s in SHAPES], vs)
    assert_equal([v.numpy() for v in vs], [v.numpy() for v in want_vs])
    assert float(lso.dynamic_scale.numpy()) == scale / 2


@pytest.mark.parametrize("name", cases("callable_learning_rate"))
def test_callable_learning_rate(name):
    xs, grads = problem(steps=2)
    assert_equal(run(_with_lr(name, lambda: 0.05), xs, grads), run(_with_lr(name, 0.05), xs, grads))


def _with_lr(name, lr):
    """The registry's optimizer with its learning rate replaced by `lr` (value, callable or schedule)."""
    opt = MAKE[name]()
    opt.learning_rate = lr
    return opt


@pytest.mark.parametrize("name", cases("schedule"))
def test_learning_rate_schedule_is_read_at_each_step(name):
    """PiecewiseConstantDecay([1], [a, b]): steps 0 and 1 at a, step 2 on at b (Keras passes `iterations`)."""
    a, b = 0.05, 0.01
    xs, grads = problem(steps=4)
    sched = keras.optimizers.schedules.PiecewiseConstantDecay([1], [a, b])
    got = run(_with_lr(name, sched), xs, grads)
    ref = _with_lr(name, a)
    vs = variables(xs)
    for t, gs in enumerate(grads):
        if t == 2:
            ref.learning_rate = b
        ref.apply([tensor(g) for g in gs], vs)
    assert_close_to_reference(got, [v.numpy() for v in vs], rtol=RTOL)


def _keras_clip(kind, value, grads):
    """Keras's clip options, in float64 NumPy."""
    g64 = [np.asarray(g, np.float64) for g in grads]
    if kind == "clipvalue":
        return [np.clip(g, -value, value) for g in g64]
    if kind == "clipnorm":
        return [g * min(1.0, value / np.linalg.norm(g)) for g in g64]
    total = np.sqrt(sum(float(np.sum(g * g)) for g in g64))
    return [g * min(1.0, value / total) for g in g64]


def _agc_clip(grads, weights, clipping, epsilon):
    """Brock et al. 2021, Sec. 4.1, in float64 NumPy: units are output channels (last axis), vectors whole."""
    out = []
    for g, w in zip(grads, weights):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        axes = tuple(range(g.ndim - 1)) if g.ndim > 1 else None
        w_norm = np.sqrt(np.sum(w * w, axis=axes, keepdims=True))
        g_norm = np.sqrt(np.sum(g * g, axis=axes, keepdims=True))
        max_norm = clipping * np.maximum(w_norm, epsilon)
        out.append(np.where(g_norm > max_norm, g * max_norm / np.maximum(g_norm, 1e-30), g))
    return out


@pytest.mark.parametrize("kind,value", [("clipnorm", 0.05), ("clipvalue", 0.02), ("global_clipnorm", 0.1)])
@pytest.mark.parametrize("name", cases("keras_clip"))
def test_keras_clip_options(name, kind, value):
    """Keras's clip of the gradient, then the step; a wrapper's inner optimizer clips what the wrapper hands it."""
    if name in REJECTS_KERAS_CLIP:
        with pytest.raises(ValueError, match=kind):
            MAKE[name](**{kind: value})
        return
    xs, grads = problem(steps=2)
    opt = MAKE[name](**{kind: value})
    vs = variables(xs)
    if name in INNER_KERAS_CLIP:
        # AGC's clip first (NumPy, on the weights of each step), then the inner
        # optimizer's Keras clip: the reference is that inner optimizer alone.
        inner = opt.inner_optimizer
        ref = type(inner).from_config({**inner.get_config(), kind: None})
        pre_clip = lambda gs, ws: _agc_clip(gs, ws, opt.clipping, opt.epsilon)  # noqa: E731
    else:
        ref = MAKE[name]()
        pre_clip = lambda gs, ws: gs  # noqa: E731
    ref_vs = variables(xs)
    active = False
    for gs in grads:
        g_in = pre_clip(gs, [v.numpy() for v in ref_vs])
        clipped = [c.astype(np.float32) for c in _keras_clip(kind, value, g_in)]
        active |= any(not np.allclose(c, g) for c, g in zip(clipped, g_in))
        opt.apply([tensor(g) for g in gs], vs)
        ref.apply([tensor(c) for c in clipped], ref_vs)
    assert active  # the Keras clip changed a gradient
    assert_close_to_reference([v.numpy() for v in vs], [v.numpy() for v in ref_vs], rtol=RTOL)


@pytest.mark.parametrize("name", cases("exclude_from_weight_decay"))
def test_exclude_from_weight_decay(name):
    """With zero gradients only the decay moves a variable: the excluded one stays, the others shrink."""
    xs, _ = problem()
    zero = [np.zeros(s, np.float32) for s in SHAPES]
    opt = MAKE[name]()
    opt.exclude_from_weight_decay(var_names=["bias"])
    got = run(opt, xs, [zero, zero])
    np.testing.assert_array_equal(got[0], xs[0])
    for g, x in zip(got[1:], xs[1:]):
        assert np.linalg.norm(g) < np.linalg.norm(x) * (1 - 1e-5)
    if isinstance(opt, keras_si.optimizers.Optimizer):
        # keras_si's exclusions (regexes on variable.path) survive get_config;
        # Keras's own optimizers (AGC's inner one here) do not save them.
        clone = type(opt).from_config(opt.get_config())
        assert_equal(run(clone, xs, [zero, zero]), got)


def _duplicate_rows_gradient(rng, index_type):
    """An IndexedSlices gradient of a (5, 3) table with a repeated index, and its dense sum."""
    indices = [0, 3, 0, 4]
    values = rng.randn(len(indices), 3).astype(np.float32)
    dense = np.zeros((5, 3), np.float32)
    for i, row in zip(indices, values):
        dense[i] += row
    idx = tuple(indices) if index_type == "tuple" else tf.constant(indices, tf.int64)
    return tf.IndexedSlices(tf.constant(values), idx, tf.constant([5, 3], tf.int64)), dense


@sparse_only
@pytest.mark.parametrize("index_type", ["tensor", "tuple"])
@pytest.mark.parametrize("name", cases("sparse"))
def test_sparse_gradient_equals_the_dense_one(name, index_type):
    """A step on tf.IndexedSlices (duplicate indices summed) equals the step on the dense gradient."""
    rng = np.random.RandomState(3)
    table = rng.randn(5, 3).astype(np.float32)
    kernel = rng.randn(3, 2).astype(np.float32)
    opt_s, opt_d = MAKE[name](), MAKE[name]()
    vs_s = [keras.Variable(table, name="embeddings"), keras.Variable(kernel, name="kernel")]
    vs_d = [keras.Variable(table, name="embeddings"), keras.Variable(kernel, name="kernel")]
    for _ in range(3):
        sparse, dense = _duplicate_rows_gradient(rng, index_type)
        g_kernel = tf.constant(rng.randn(3, 2).astype(np.float32))
        opt_s.apply([sparse, g_kernel], vs_s)
        opt_d.apply([tf.constant(dense), g_kernel], vs_d)
    assert_close_to_reference([v.numpy() for v in vs_s], [v.numpy() for v in vs_d], rtol=1e-6)


@sparse_only
@pytest.mark.parametrize("name", cases("sparse_fit"))
def test_embedding_model_fit_takes_the_densified_step(name):
    """Under `fit` the embedding's gradient reaches the optimizer as tf.IndexedSlices (row 1 twice).

    Right value: the same step taken by hand on the densified gradients.
    """
    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((2,), dtype="int32"), keras.layers.Embedding(5, 3),
                                 keras.layers.Flatten(), keras.layers.Dense(1)])

    x, y = np.array([[1, 1], [2, 3]], np.int32), np.array([[1.0], [-1.0]], np.float32)
    fitted = model()
    fitted.compile(optimizer=MAKE[name](), loss="mse")
    fitted.fit(x, y, batch_size=2, verbose=0)
    by_hand = model()
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, by_hand(x))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, by_hand.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    MAKE[name]().apply([tf.convert_to_tensor(g) for g in grads], by_hand.trainable_variables)
    assert_close_to_reference(fitted.get_weights(), by_hand.get_weights(), rtol=RTOL)


@pytest.mark.parametrize("name", cases("mixed_dtypes"))
def test_float64_variable_with_float32_gradient(name):
    """As Keras's optimizers do, the gradient is cast to the variable's dtype (exact here: float32 -> float64)."""
    xs, grads = problem(steps=2)
    opt = MAKE[name]()
    vs = variables(xs, "float64")
    for gs in grads:
        opt.apply([tensor(g, 'float32') for g in gs], vs)
    assert all(v.dtype == "float64" for v in vs)
    assert_equal([v.numpy() for v in vs], run(MAKE[name](), xs, grads, dtype="float64"))


@pytest.mark.parametrize("name", cases("config"))
def test_get_config_from_config_and_serialize(name):
    opt = MAKE[name]()
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == config
    xs, grads = problem(steps=2)
    assert_equal(run(clone, xs, grads), run(MAKE[name](), xs, grads))


@pytest.mark.parametrize("name", cases("pickle"))
def test_pickle_keeps_the_config(name):
    opt = MAKE[name]()
    assert pickle.loads(pickle.dumps(opt)).get_config() == opt.get_config()


@pytest.mark.parametrize("name", cases("constraints"))
def test_variable_constraints_are_applied_after_the_step(name):
    """Right value: the constraint (NonNeg) of the unconstrained step's result."""
    xs, grads = problem(steps=1)
    constrained = variables(xs)
    for v in constrained:
        v.constraint = keras.constraints.NonNeg()  # (keras.Variable takes no `constraint` argument)
    MAKE[name]().apply([tensor(g) for g in grads[0]], constrained)
    free = run(MAKE[name](), xs, grads)
    assert any(np.any(f < 0) for f in free)
    assert_equal([v.numpy() for v in constrained], [np.maximum(f, 0.0) for f in free])


@tf_only
@pytest.mark.parametrize("name", cases("tf_variables"))
def test_plain_tf_variables_mixed_with_keras_variables(name):
    """tf.Variables (no `path`) step as Keras variables do."""
    xs, grads = problem(steps=2)
    vs = [tf.Variable(xs[0], name="bias")] + variables(xs)[1:]
    opt = MAKE[name]()
    for gs in grads:
        opt.apply([tensor(g) for g in gs], vs)
    assert_equal([v.numpy() for v in vs], run(MAKE[name](), xs, grads))


@pytest.mark.parametrize("name", cases("set_weights"))
def test_set_weights_and_variables(name):
    xs, grads = problem(steps=3)
    trained = MAKE[name]()
    vs = variables(xs)
    for gs in grads[:2]:
        trained.apply([tensor(g) for g in gs], vs)
    fresh = MAKE[name]()
    with pytest.raises(ValueError):
        fresh.set_weights(trained.variables)  # not built yet
    fresh_vs = variables([v.numpy() for v in vs])
    fresh.build(fresh_vs)
    assert len(fresh.variables) == len(trained.variables)
    fresh.set_weights([keras.ops.convert_to_numpy(v) for v in trained.variables])
    assert_equal(optimizer_variable_values(fresh), optimizer_variable_values(trained))
    # Same state, same next step.
    trained.apply([tensor(g) for g in grads[2]], vs)
    fresh.apply([tensor(g) for g in grads[2]], fresh_vs)
    assert_equal([v.numpy() for v in fresh_vs], [v.numpy() for v in vs])
    assert_equal(optimizer_variable_values(fresh), optimizer_variable_values(trained))


def _data(n=24):
    rng = np.random.RandomState(5)
    x = rng.randn(n, 4).astype(np.float32)
    return x, np.tanh(x @ rng.randn(4, 2)).astype(np.float32)


def _fit_model(name, x, y, **compile_kw):
    """A tiny two-layer model (its tracing and XLA compilation dominate these tests) after `fit` in batches of 8."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh", name="hidden"),
                              keras.layers.Dense(2, name="out")])
    model.compile(optimizer=MAKE[name](), loss="mse", **compile_kw)
    model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    return model


@tf_only
@pytest.mark.parametrize("name", cases("tf_checkpoint"))
def test_tf_checkpoint_round_trip(name, tmp_path):
    x, y = _data()
    model = _fit_model(name, x[:16], y[:16])
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    path = ckpt.save(os.path.join(tmp_path, "ckpt"))
    weights = model.get_weights()
    state = optimizer_variable_values(model.optimizer)
    model.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    next_weights = model.get_weights()
    ckpt.restore(path).assert_consumed()
    assert_equal(model.get_weights(), weights)
    assert_equal(optimizer_variable_values(model.optimizer), state)
    model.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    assert_equal(model.get_weights(), next_weights)


@pytest.mark.parametrize("name", cases("keras_save_load"))
def test_keras_save_load_takes_the_same_next_step(name, tmp_path):
    x, y = _data()
    model = _fit_model(name, x[:16], y[:16])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert_equal(optimizer_variable_values(loaded.optimizer), optimizer_variable_values(model.optimizer))
    model.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    loaded.fit(x[16:], y[16:], batch_size=8, shuffle=False, verbose=0)
    assert_equal(loaded.get_weights(), model.get_weights())


@pytest.mark.parametrize("name", cases("jit_compile"))
def test_jit_compile_on_equals_off(name):
    if BACKEND == "torch" and name != "SGDClip(momentum)":
        # On PyTorch jit_compile means torch.compile (not XLA): 20-110 s per
        # optimizer on 2 CPU cores, so one optimizer stands for the others.
        pytest.skip("torch.compile checked on SGDClip(momentum) only (time)")
    x, y = _data()
    eager = _fit_model(name, x, y, jit_compile=False)
    xla = _fit_model(name, x, y, jit_compile=True)
    assert_close_to_reference(xla.get_weights(), eager.get_weights(), rtol=RTOL)


@pytest.mark.parametrize("name", cases("unique_names"))
def test_default_names_are_unique(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, second = MAKE[name](), MAKE[name]()
    assert first.name != second.name
