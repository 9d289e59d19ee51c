"""The pretraining optimizers: which variables each optimizer gets, and that the heads' biases move."""

import numpy as np

from official.nlp import modeling, optimization


def _sibert(vocab=60):
    model = modeling.Pretrainer("sibert", modeling.get_config("tiny", vocab_size=vocab, max_sequence_length=32))
    model(modeling.dummy_features(2, 16, 3, vocab))
    return model


def test_sibert_groups_encoder_head_matrices_and_head_vectors():
    import keras_si

    model = _sibert()
    opt = optimization.sibert_optimizer(model, 100, head_warmup_steps=10)
    si, rest = keras_si.scale_invariant_variables(model)
    route = {v.path: opt._optimizer_map(v).name for v in model.trainable_variables}
    assert {route[v.path] for v in si} == {"encoder_sgdclip"}
    assert {route[v.path] for v in rest if len(v.shape) <= 1} == {"head_adam"}
    assert {route[v.path] for v in rest if len(v.shape) > 1} == {"head_lamb"}
    assert any(v.path.endswith("bias") for v in rest if len(v.shape) <= 1)


def test_a_zero_initialised_head_bias_moves_like_adam_not_like_lamb():
    """Keras's Lamb scales a step by ||w|| / ||update||: from a zero bias it would stay ~lr after any number of steps."""
    model = _sibert()
    lr, steps = 1e-2, 5
    opt = optimization.sibert_optimizer(model, 1000, head_learning_rate=lr, head_warmup_steps=0)
    variables = model.trainable_variables
    opt.build(variables)
    bias = next(v for v in variables if "mlm_head" in v.path and v.path.endswith("bias"))
    assert not np.any(bias.numpy())
    rng = np.random.default_rng(0)
    g = rng.normal(size=bias.shape).astype("float32")
    grads = [g if v is bias else np.zeros(v.shape, "float32") for v in variables]
    for _ in range(steps):
        opt.apply(grads, variables)
    # NumPy reference, float64: Adam (beta1 0.9, beta2 0.999, epsilon 1e-7 as Keras's Lamb) on a constant gradient with
    # the head schedule lr_t = lr * (1 - t / 1000) (no warm-up), t = 0..4.
    m = v = w = np.zeros(g.shape)
    g64 = g.astype(np.float64)
    for t in range(1, steps + 1):
        m = 0.9 * m + 0.1 * g64
        v = 0.999 * v + 0.001 * g64**2
        alpha = lr * (1 - (t - 1) / 1000) * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w = w - alpha * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(bias.numpy(), w, rtol=1e-5, atol=1e-8)
    assert np.linalg.norm(bias.numpy()) > 0.5 * steps * lr * np.sqrt(g.size)


def test_embedding_tables_can_go_to_the_heads_adam_or_lamb():
    import pytest

    model = _sibert()
    found = {v.path for v in optimization.embedding_table_variables(model.trainable_variables)}
    others = {}
    for choice, where in [("adam", "head_adam"), ("lamb", "head_lamb"), ("sgdclip", "encoder_sgdclip")]:
        opt = optimization.sibert_optimizer(model, 100, head_warmup_steps=10, embedding_tables=choice)
        route = {v.path: opt._optimizer_map(v).name for v in model.trainable_variables}
        tables = [p for p in route if p.endswith(("token_embedding/embeddings", "type_embedding/embeddings",
                                                  "position_embedding"))]
        assert len(tables) == 3 and {route[p] for p in tables} == {where}, choice
        assert found == set(tables)  # what embedding_table_variables finds
        assert route[next(p for p in route if p.endswith("embeddings/projection/kernel"))] == "encoder_sgdclip"
        others[choice] = {p: r for p, r in route.items() if p not in found}
    # Every other variable keeps its route whatever the choice.
    assert others["adam"] == others["lamb"] == others["sgdclip"]
    with pytest.raises(ValueError, match="embedding_tables.*'sgdclip', 'adam', 'lamb'.*'heads'"):
        optimization.sibert_optimizer(model, 100, head_warmup_steps=10, embedding_tables="heads")


def test_the_embedding_tables_flag_reaches_the_optimizer(tmp_path):
    from official.nlp import pretrain

    c = pretrain.PretrainConfig(model="sibert", config="tiny", text_files=("official/nlp/corpus/heldout.txt",),
                                max_seq_length=16, max_predictions_per_seq=3, embedding_tables="adam",
                                model_dir=str(tmp_path))
    model = pretrain.compile_model(pretrain.build_model(c, 60), c)
    route = {v.path: model.optimizer._optimizer_map(v).name for v in model.trainable_variables}
    assert route[next(p for p in route if p.endswith("token_embedding/embeddings"))] == "head_adam"
    import pytest

    with pytest.raises(ValueError, match="embedding_tables"):
        c.replace(embedding_tables="heads").validate()


def test_a_warm_up_as_long_as_the_run_is_refused():
    """It kept the heads' learning rate at 0 for the whole run (the warm-up's target is the decay's value at its end,
    0 at train_steps); it was cut to the run's length without a word."""
    import pytest

    from official.nlp import pretrain

    model = _sibert()
    for make in (lambda: optimization.sibert_optimizer(model, 100),  # the default warm-up, 10,000 steps
                 lambda: optimization.heads_optimizer(model, 20, head_warmup_steps=20),
                 lambda: optimization.bert_optimizer(50, warmup_steps=60)):
        with pytest.raises(ValueError, match=r"warmup_steps` \(\d+\) must be smaller than `train_steps`"):
            make()
    c = pretrain.PretrainConfig(model="sibert", config="tiny", text_files=("official/nlp/corpus/heldout.txt",),
                                train_steps=2000, warmup_steps=2000, model_dir="unused")
    with pytest.raises(ValueError, match=r"^--warmup_steps \(2000\) must be smaller than --train_steps \(2000\)"):
        c.validate()
    c.replace(warmup_steps=300).validate()
    # By default 10% of the run, at most the paper's 10,000: the defaults (1,000 steps) warm up for 100.
    assert pretrain.PretrainConfig().resolved_warmup_steps == 100
    assert c.replace(warmup_steps=None, train_steps=1_000_000).resolved_warmup_steps == 10000
    assert c.replace(warmup_steps=0).resolved_warmup_steps == 0
