"""keras_si's optimizers against their float64 references on JAX or PyTorch; run in its own process.

    KERAS_BACKEND=jax python tests/backend_reference_check.py
    KERAS_BACKEND=torch python tests/backend_reference_check.py

tests/test_backends.py runs it for both (a machine with JAX or PyTorch but
without TensorFlow can run it directly). It checks SGDClip and the toolbox
optimizers (LARS, RAdam, AGC, SGDP/AdamP with the projection on and off)
against their float64 references as each backend's trainer runs optimizers
(JAX: inside `jax.jit(stateless_apply)`; PyTorch: `apply` under
`torch.no_grad`), SGDClip's exclusion by `variable.path`, and a `model.fit`
with the monitor. On JAX also: `keras_si.layers.HashedDropout`'s JAX path
(the hashed mask: statistics, rescaling, seeding, equal to the
backend-neutral `hash_keep_mask`) and a `model.fit` of the BERT and SIBERT
pretrainers with their optimizers. SAM/ASAM's float64 checks are
tests/keras_si/test_sam.py, which test_backends.py runs on both backends too.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_si  # noqa: E402
from tests.references import optimizers as ref  # noqa: E402
from tests.references.optimizers import assert_close_to_reference  # noqa: E402

BACKEND = keras.backend.backend()
assert BACKEND in ("jax", "torch"), BACKEND


def _jit_sequence(opt, xs, grads_at):
    """Runs the optimizer's steps as the backend's trainer does; `grads_at(t, values)` gives step t's gradients."""
    variables = [keras.Variable(np.asarray(x, "float32"), name=f"v{i}") for i, x in enumerate(xs)]
    opt.build(variables)
    if BACKEND == "torch":
        import torch

        t = 0
        while True:
            grads = grads_at(t, [np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in variables])
            if grads is None:
                return [keras.ops.convert_to_numpy(v) for v in variables]
            with torch.no_grad():
                opt.apply([keras.ops.convert_to_tensor(np.asarray(g, "float32")) for g in grads], variables)
            t += 1
    import jax

    step = jax.jit(opt.stateless_apply)
    opt_vals, var_vals = [v.value for v in opt.variables], [v.value for v in variables]
    t = 0
    while True:
        grads = grads_at(t, [np.asarray(v, np.float64) for v in var_vals])
        if grads is None:
            return [np.asarray(v) for v in var_vals]
        var_vals, opt_vals = step(opt_vals, [jax.numpy.asarray(g, "float32") for g in grads], var_vals)
        t += 1


def _fixed(grad_seq):
    """`grads_at` for `_jit_sequence` that replays a fixed gradient sequence."""
    return lambda t, _: grad_seq[t] if t < len(grad_seq) else None


def check_reference(momentum):
    rng = np.random.RandomState(0)
    shapes = [(7,), (5, 4), (3, 3, 2, 4), (300, 300)]  # the last is big enough for TF's folded norms
    xs = [rng.randn(*s) for s in shapes]
    grad_seq = [[20.0 * rng.randn(*s) for s in shapes] for _ in range(15)]
    opt = keras_si.SGDClip(0.1, weight_decay=0.05, momentum=momentum, exclude_from_weight_decay=["v1$"])
    got = _jit_sequence(opt, xs, _fixed(grad_seq))  # variables named v0, v1, ...
    want, scales = ref.sgd_clip_reference(xs, grad_seq, lambda t: 0.1, 0.05, 2.0, momentum,
                                          decay_mask=[True, False, True, True])
    assert sum(s < 1 for s in scales) > 5
    assert_close_to_reference(got, want)


def check_toolbox():
    """LARS, RAdam, SGDP, AdamP and AGC in `jax.jit(stateless_apply)` against their float64 references."""
    rng = np.random.RandomState(0)
    shapes = [(7,), (20, 4), (3, 3, 5, 4), (300, 300)]
    xs = [rng.randn(*s) for s in shapes]
    seq = [[rng.randn(*s) for s in shapes] for _ in range(8)]

    got = _jit_sequence(keras_si.LARS(0.5, momentum=0.9, weight_decay=0.01, trust_coefficient=0.05), xs, _fixed(seq))
    assert_close_to_reference(got, ref.lars_reference(xs, seq, 0.5, 0.9, 0.01, 0.05))
    got = _jit_sequence(keras_si.RAdam(0.01, beta_2=0.9, weight_decay=0.01), xs, _fixed(seq))
    want, rectified = ref.radam_reference(xs, seq, 0.01, 0.9, 0.9, 1e-8, 0.01)
    assert any(rectified) and not all(rectified)
    assert_close_to_reference(got, want)
    big = [[5.0 * g for g in gs] for gs in seq]
    got = _jit_sequence(keras_si.AGC(keras.optimizers.SGD(0.1), clipping=0.05), xs, _fixed(big))
    want, clipped = ref.agc_sgd_reference(xs, big, 0.1, 0.05, 1e-3)
    assert clipped
    assert_close_to_reference(got, want)
    for kind, expect in (("channel", True), ("generic", False)):
        def grads_at(t, values, kind=kind):
            return None if t == len(seq) else [ref.gradient(w, r, kind) for w, r in zip(values, seq[t])]

        got = _jit_sequence(keras_si.SGDP(0.05, momentum=0.9, weight_decay=0.01), xs, grads_at)
        want, flags = ref.sgdp_ref(xs, seq, kind, 0.05, 0.9, 0.01, False)
        assert all(flags[k] == expect for k in range(len(flags)) if k % len(shapes) != 0)
        assert_close_to_reference(got, want)
        got = _jit_sequence(keras_si.AdamP(0.01, weight_decay=0.1), xs, grads_at)
        want, flags = ref.adamp_ref(xs, seq, kind, 0.01, 0.9, 0.999, 0.1, False)
        assert all(flags[k] == expect for k in range(len(flags)) if k % len(shapes) != 0)
        assert_close_to_reference(got, want)


def check_fit():
    rng = np.random.RandomState(0)
    x = rng.randn(64, 6).astype("float32")
    y = rng.randn(64, 1).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras_si.SGDClip(0.5, weight_decay=0.01, clip_factor=0.5), loss="mse")
    h = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[keras_si.SGDClipMonitor()]).history
    assert h["clip_rate"][0] > 0 and np.isfinite(h["loss"][-1]), h


def check_dropout():
    import jax

    from keras_si.layers.dropout import hash_keep_mask

    rate, x = 0.1, jax.numpy.ones((256, 1024))
    layer = keras_si.layers.HashedDropout(rate, seed=3)
    seed_before = layer.seed_generator.state.value
    # Compiled (how the trainer runs it: stateless, the seed state in and out) and eager give the same mask.
    jitted, _ = jax.jit(lambda s, t: layer.stateless_call([], [s], t, training=True))(seed_before, x)
    first = np.asarray(layer(x, training=True))
    np.testing.assert_array_equal(np.asarray(jitted), first)
    second = np.asarray(layer(x, training=True))
    # Binomial(2**18, 0.1): std 6e-4; 5 sigma.
    for out in (first, second):
        assert abs(np.mean(out == 0) - rate) < 3e-3, np.mean(out == 0)
        np.testing.assert_array_equal(np.unique(out[out != 0]), np.float32(1.0) / np.float32(1 - rate))
    assert np.mean((first == 0) != (second == 0)) > 0.1  # the seed advances
    # The mask is hash_keep_mask of the seed the layer drew (its first draw: the initial state).
    want = np.asarray(hash_keep_mask(x.shape, seed_before, rate))
    np.testing.assert_array_equal(first != 0, want)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), np.asarray(x))


def check_pretrainer_fit():
    from official.nlp import modeling, optimization

    config = modeling.EncoderConfig(vocab_size=64, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                                    max_sequence_length=32)
    features = modeling.dummy_features(16, 16, 3, config.vocab_size)
    rng = np.random.RandomState(0)
    labels = {"mlm": rng.randint(0, config.vocab_size, (16, 3)).astype("int32"),
              "nsp": rng.randint(0, 2, 16).astype("int32")}
    for model_type in ("bert", "sibert"):
        keras.utils.set_random_seed(0)
        model = modeling.Pretrainer(model_type, config)
        model(features)
        opt = (optimization.sibert_optimizer(model, 10, head_warmup_steps=2) if model_type == "sibert"
               else optimization.bert_optimizer(10, warmup_steps=2))
        metrics, weighted = optimization.pretraining_metrics()
        model.compile(optimizer=opt, loss=optimization.pretraining_losses(), metrics=metrics,
                      weighted_metrics=weighted, jit_compile=True, steps_per_execution=2)
        h = model.fit(features, labels, batch_size=4, epochs=2, verbose=0).history
        assert all(np.isfinite(h["loss"])), (model_type, h)


if __name__ == "__main__":
    for momentum in (0.0, 0.9):
        check_reference(momentum)
    check_toolbox()
    check_fit()
    if BACKEND == "jax":
        check_dropout()
        check_pretrainer_fit()
    print(f"{BACKEND} backend: SGDClip, LARS, RAdam, AGC, SGDP and AdamP match their float64 references; "
          "fit + monitor ok" + ("; HashedDropout ok; BERT/SIBERT fit ok" if BACKEND == "jax" else ""))
