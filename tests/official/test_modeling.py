"""SIBERT is scale invariant (BERT is not); Euler's identity; the paper's equivalent scalings; saving."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_si
from official.nlp import modeling as M

VOCAB, SEQ, PRED = 64, 12, 3
CONFIG = M.get_config("tiny", vocab_size=VOCAB, max_sequence_length=16, hidden_dim=32, num_heads=2,
                      intermediate_dim=64, dropout=0.0, attention_dropout=0.0)


def features(batch=4, seed=0):
    return M.dummy_features(batch, SEQ, PRED, VOCAB, seed=seed)


def labels(batch=4, seed=0):
    rng = np.random.RandomState(seed + 100)
    return {"mlm": rng.randint(0, VOCAB, size=(batch, PRED)), "nsp": rng.randint(0, 2, size=(batch,))}


def build(model_type, seed=0, config=CONFIG, use_nsp=True):
    keras.utils.set_random_seed(seed)
    model = M.Pretrainer(model_type, config, use_nsp=use_nsp)
    model(features())
    return model


def test_presets():
    assert (M.PRESETS["tiny"].num_layers, M.PRESETS["tiny"].hidden_dim) == (2, 128)
    assert (M.PRESETS["base"].num_layers, M.PRESETS["base"].hidden_dim, M.PRESETS["base"].num_heads) == (12, 768, 12)
    assert (M.PRESETS["large"].num_layers, M.PRESETS["large"].hidden_dim) == (24, 1024)
    for name in ("mini", "small", "medium"):
        assert name in M.PRESETS
    with pytest.raises(ValueError, match="divisible"):
        M.EncoderConfig(hidden_dim=100, num_heads=3)
    with pytest.raises(ValueError, match="preset"):
        M.get_config("huge")


def test_sibert_mlm_logits_are_scale_invariant():
    model = build("sibert")
    # Float32 roundoff through 2 blocks: ~1e-6 relative (measured 5e-7).
    report = keras_si.assert_scale_invariant(model, features(), scales=(1e-2, 1e2), rtol=1e-4)
    assert set(report) == {1e-2, 1e2}


def test_bert_is_not_scale_invariant_so_the_check_can_fail():
    model = build("bert")
    encoder_vars = model.encoder.trainable_variables
    report = keras_si.check_scale_invariance(model, features(), variables=encoder_vars)
    assert min(report.values()) > 1e-2
    with pytest.raises(AssertionError, match="not scale invariant"):
        keras_si.assert_scale_invariant(model, features(), variables=encoder_vars)


def test_si_group_is_the_sibert_encoder_and_head_is_untied():
    model = build("sibert")
    si, rest = keras_si.scale_invariant_variables(model)
    assert {id(v) for v in si} == {id(v) for v in model.encoder.trainable_variables}
    assert all("mlm_head" in v.path or "nsp_head" in v.path for v in rest)
    assert any(v.path.endswith("mlm_head/output_kernel") for v in rest)  # untied
    bert = build("bert")
    assert not any(v.path.endswith("output_kernel") for v in bert.trainable_variables)  # tied


def test_homogeneity_report_flags_the_culprit():
    report = keras_si.homogeneity_report(build("sibert"), features())
    assert abs(report.degree("sibert_encoder/embeddings/projection") - 2) < 1e-3
    assert abs(report.degree("sibert_encoder/layer_0/attention") - 2) < 1e-3
    assert abs(report.degree("sibert_encoder/final_norm")) < 1e-3
    bert = build("bert")
    bad = keras_si.homogeneity_report(bert, features(), variables=bert.encoder.trainable_variables)
    assert not all(row["homogeneous"] for row in bad.rows)
    assert "NO" in str(bad)


def _loss_and_grads(model, variables, scale=1.0):
    x, y = features(), labels()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        out = model(x)
        loss = scale * (loss_fn(y["mlm"], out["mlm"]) + loss_fn(y["nsp"], out["nsp"]))
    return loss, tape.gradient(loss, variables)


def test_euler_identity_gradient_orthogonal_to_si_group():
    model = build("sibert")
    si, _ = keras_si.scale_invariant_variables(model)
    _, grads = _loss_and_grads(model, si)
    grads = [tf.convert_to_tensor(g) for g in grads]
    dot = sum(float(tf.reduce_sum(tf.cast(g, tf.float64) * tf.cast(v, tf.float64))) for g, v in zip(grads, si))
    gn = np.sqrt(sum(float(tf.reduce_sum(tf.cast(g, tf.float64) ** 2)) for g in grads))
    xn = np.sqrt(sum(float(tf.reduce_sum(tf.cast(v, tf.float64) ** 2)) for v in si))
    # <g, x> = 0 exactly for a 0-homogeneous loss; float32 gradients give ~1e-6.
    assert abs(dot) / (gn * xn) < 1e-4


def _train_si(model, optimizer, steps, loss_scale=1.0):
    """SGDClip on the SI group only (the head is frozen: it is not scale invariant)."""
    si, _ = keras_si.scale_invariant_variables(model)
    for _ in range(steps):
        _, grads = _loss_and_grads(model, si, loss_scale)
        optimizer.apply(grads, si)
    return [np.array(v, np.float64) for v in si]


def test_loss_scaling_equivalence():
    """(L, eta, lam) -> (cL, eta/c, c lam) gives the same iterates (paper, Lemma 2.4)."""
    c = 8.0  # a power of two: the loss and learning rate scale exactly in float32
    a = _train_si(build("sibert"), keras_si.SGDClip(0.4, weight_decay=0.05, clip_factor=1.0), 5)
    b = _train_si(build("sibert"), keras_si.SGDClip(0.4 / c, weight_decay=0.05 * c, clip_factor=1.0), 5,
                  loss_scale=c)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-4 * np.abs(x).max())


def test_init_scaling_gives_the_same_directions():
    """(x0, eta, lam) -> (c x0, c^2 eta, lam / c^2) gives the same directions x / ||x||."""
    c = 4.0
    m1, m2 = build("sibert"), build("sibert")
    si2, _ = keras_si.scale_invariant_variables(m2)
    for v in si2:
        v.assign(v * c)
    a = _train_si(m1, keras_si.SGDClip(0.4, weight_decay=0.05, clip_factor=1.0), 5)
    b = _train_si(m2, keras_si.SGDClip(0.4 * c**2, weight_decay=0.05 / c**2, clip_factor=1.0), 5)
    na = np.sqrt(sum(np.sum(x**2) for x in a))
    nb = np.sqrt(sum(np.sum(x**2) for x in b))
    np.testing.assert_allclose(nb / na, c, rtol=1e-4)
    for x, y in zip(a, b):
        np.testing.assert_allclose(y / nb, x / na, rtol=1e-3, atol=1e-4 * np.abs(x / na).max())


def _compile(model):
    model.compile(
        optimizer=keras_si.scale_invariant_optimizer(
            model, keras_si.SGDClip(0.1, weight_decay=0.01), keras.optimizers.Lamb(1e-3)
        ),
        loss={
            "mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
    )
    return model


def test_multioptimizer_fit_with_monitor():
    model = _compile(build("sibert"))
    ds = tf.data.Dataset.from_tensors((features(8), labels(8))).repeat(3)
    history = model.fit(ds, verbose=0, shuffle=False, callbacks=[keras_si.SGDClipMonitor()]).history
    sgd = keras_si.callbacks.find_optimizers(model.optimizer)[0]
    si, _ = keras_si.scale_invariant_variables(model)
    assert len(sgd._trainable_variables) == len(si)  # the norms are over the SI group only
    assert np.isfinite(history["loss"][-1]) and "weight_norm" in history and "clip_rate" in history


@pytest.mark.parametrize("model_type", ["sibert", "bert"])
def test_save_load_round_trip(model_type, tmp_path):
    model = build(model_type)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={"mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    model.fit(features(8), labels(8), verbose=0, epochs=1)
    path = os.path.join(tmp_path, "pretrainer.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = features(seed=3)
    for k in ("mlm", "nsp"):
        np.testing.assert_allclose(np.asarray(loaded(x)[k]), np.asarray(model(x)[k]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("model_type", ["sibert", "bert"])
def test_low_precision_forward(policy, model_type):
    full = build(model_type)
    x = features()
    want = np.asarray(full(x)["mlm"])
    keras.mixed_precision.set_global_policy(policy)
    try:
        low = build(model_type)
        low.set_weights(full.get_weights())
        got = low(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert got["mlm"].dtype == tf.float32
    got = np.asarray(got["mlm"])
    assert np.all(np.isfinite(got))
    # bfloat16 keeps 8 bits of mantissa (~4e-3 relative per op).
    tol = 5e-2 if policy == "mixed_bfloat16" else 1e-2
    assert np.abs(got - want).max() <= tol * np.abs(want).max()


def test_sibert_encoder_given_its_own_policy_passes_it_to_every_layer():
    """An encoder built with dtype="mixed_bfloat16" (global policy float32) computes every sublayer in bfloat16."""
    from official.nlp import modeling

    config = modeling.get_config("tiny", vocab_size=50, max_sequence_length=16)
    encoder = modeling.SIBertEncoder(config, dtype="mixed_bfloat16")
    ids = np.ones((2, 8), "int32")
    encoder({"input_word_ids": ids, "input_mask": ids, "input_type_ids": np.zeros_like(ids)})
    for layer in [encoder.embeddings] + encoder.blocks:
        assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
        assert all(v.dtype == "float32" for v in layer.weights if "float" in str(v.dtype))
