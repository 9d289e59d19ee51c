"""The pretraining entry point: flags, an end-to-end run, export/serve, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from official.nlp import pretrain
from tests import testing_utils as tu

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")

SMALL = dict(model="sibert", config="tiny", vocab_file=os.path.join(CORPUS, "vocab.txt"),
             text_files=[os.path.join(CORPUS, "heldout.txt")], eval_text_files=[os.path.join(CORPUS, "heldout.txt")],
             eval_batches=1, global_batch_size=4, max_seq_length=32, max_predictions_per_seq=5, train_steps=4,
             steps_per_epoch=2, warmup_steps=2, learning_rate=0.5, verbose=0)


def flag_values(**overrides):
    """The config of a small run (SMALL), with `overrides`."""
    return pretrain.PretrainConfig(**{**SMALL, **overrides})


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(text_files=None), "exactly one of"),
        (dict(input_files=["x"]), "exactly one of"),
        (dict(max_predictions_per_seq=40), "max_predictions_per_seq"),
        (dict(strategy="tpu"), "--tpu"),
        (dict(tpu="local"), "only used with --strategy=tpu"),
        (dict(global_batch_size=0), "global_batch_size"),
        (dict(steps_per_execution=3), "multiple of"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(dropout=1.0), "--dropout"),
        (dict(lr_decay_at=["0.9", "0.6"]), "lr_decay_at"),
        (dict(weight_decay=0.0), "weight_decay"),
        (dict(model_dir=None), "model_dir"),
    ],
)
def test_bad_flags(overrides, match, tmp_path):
    values = flag_values(**{"model_dir": str(tmp_path), **overrides})
    with pytest.raises(ValueError, match=match):
        values.validate()


def test_missing_input_glob(tmp_path):
    with pytest.raises(ValueError, match="no file matches"):
        pretrain.run(flag_values(model_dir=str(tmp_path), text_files=[str(tmp_path / "none-*.txt")]))


def test_pretraining_from_a_tfds_text_dataset(tmp_path):
    """--tfds_name reads a prepared TFDS text dataset: TFDS's mock data here, so nothing is downloaded."""
    import tensorflow_datasets as tfds

    from official.nlp.data import pretrain_dataloader as loader

    name = "wikipedia/20230601.en"
    with tfds.testing.mock_data(num_examples=8):
        texts = [e["text"].decode() for e in tfds.load(name, split="train").as_numpy_iterator()]
        assert loader.load_documents(tfds_name=name) == [[t.strip()] for t in texts]  # mock text has no '.'
        _, summary = pretrain.run(flag_values(model_dir=str(tmp_path / "run"), text_files=None, tfds_name=name,
                                              train_steps=2, warmup_steps=1, export=False))
        assert summary["steps"] == 2 and np.isfinite(summary["final"]["loss"])
        with pytest.raises(ValueError, match=r"has no feature 'body' \(--tfds_text_key\); its features are"):
            loader.load_documents(tfds_name=name, tfds_text_key="body")
    with pytest.raises(ValueError, match="TFDS dataset lm1b is not prepared in .*empty.*tfds build lm1b"):
        loader.load_documents(tfds_name="lm1b", tfds_data_dir=str(tmp_path / "empty"))
    # A really prepared dataset (TFDS's test builder, generated locally) knows its splits.
    tfds.testing.DummyDataset(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    with pytest.raises(ValueError, match=r"dummy_dataset has no split 'dev'; it has \['train'\]"):
        loader.load_documents(tfds_name="dummy_dataset", tfds_data_dir=str(tmp_path / "tfds"), tfds_split="dev")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run"))
    model, summary = pretrain.run(flag_values(model_dir=model_dir))
    return model, summary, model_dir


def test_run_writes_checkpoints_logs_and_export(trained):
    _, summary, model_dir = trained
    files = os.listdir(model_dir)
    assert {"ckpt-2.index", "ckpt-4.index", "checkpoint", "flags.json", "summary.json", "logs", "export"} <= set(files)
    assert summary["steps"] == 4 and summary["heldout"]["after"]["mlm_accuracy"] >= 0
    assert summary["step"] == 4 and summary["initial_step"] == 0
    for key in ("weight_norm", "clip_rate", "effective_learning_rate", "mlm_accuracy", "nsp_accuracy",
                "lr/encoder_sgdclip"):
        assert key in summary["final"], key
    assert tf.io.gfile.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents.*"))


def test_export_reload_and_serve(trained):
    model, _, model_dir = trained
    loaded = tf.saved_model.load(os.path.join(model_dir, "export"))
    out = loaded.signatures["serving_default"](text=tf.constant(["the [MASK] is imported", "no mask here"]))
    assert out["num_masks"].numpy().tolist() == [1, 0]
    assert out["predicted_tokens"].dtype == tf.string and out["predicted_tokens"].shape == (2, 5)
    assert out["sequence_output"].shape == (2, 32, 128)
    # The id signature gives the Keras model's own logits.
    ids = np.zeros((1, 32), np.int32)
    ids[0, :4] = [2, 50, 4, 3]
    inputs = {"input_word_ids": ids, "input_mask": (ids > 0).astype(np.int32), "input_type_ids": np.zeros_like(ids),
              "masked_lm_positions": np.array([[2, 0, 0, 0, 0]], np.int32)}
    served = loaded.signatures["serve_ids"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(served["mlm_logits"].numpy(), model(inputs)["mlm"].numpy(), rtol=1e-5, atol=1e-5)


def test_export_top_k_are_the_most_likely_tokens(trained):
    """The text signature's top-k equal a NumPy softmax and sort of the id signature's logits (float64)."""
    _, _, model_dir = trained
    loaded = tf.saved_model.load(os.path.join(model_dir, "export"))
    out = loaded.signatures["serving_default"](text=tf.constant(["the [MASK] is [MASK] imported"]))
    positions = out["masked_positions"].numpy()
    assert out["num_masks"].numpy().tolist() == [2] and positions[0, :2].tolist() == [2, 4]
    # The same input through the id signature: [CLS] the [MASK] is [MASK] imported [SEP].
    vocab = [line.rstrip("\n") for line in open(os.path.join(CORPUS, "vocab.txt"), encoding="utf-8")]
    words = ["[CLS]", "the", "[MASK]", "is", "[MASK]", "imported", "[SEP]"]
    ids = np.zeros((1, 32), np.int32)
    ids[0, :7] = [vocab.index(w) for w in words]
    logits = loaded.signatures["serve_ids"](
        input_word_ids=tf.constant(ids), input_mask=tf.constant((ids > 0).astype(np.int32)),
        input_type_ids=tf.constant(np.zeros_like(ids)), masked_lm_positions=tf.constant(positions))["mlm_logits"]
    z = logits.numpy().astype(np.float64)[0, :2]
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    expected_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :5]
    top_ids = out["top_k_ids"].numpy()[0, :2]
    np.testing.assert_array_equal(top_ids, expected_ids)
    np.testing.assert_allclose(out["top_k_probabilities"].numpy()[0, :2], np.take_along_axis(probs, expected_ids, -1),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(out["predicted_ids"].numpy()[0, :2], top_ids[:, 0])
    assert [t.decode() for t in out["top_k_tokens"].numpy()[0, 0]] == [vocab[i] for i in top_ids[0]]
    from official.nlp import export

    with pytest.raises(ValueError, match=r"top_k must be in \[1, vocabulary size"):
        export.PretrainerServing(trained[0], os.path.join(CORPUS, "vocab.txt"), 32, 5, top_k=0)


def test_serving_one_string_is_a_batch_of_one(trained):
    """Issue 13, item 7: one string (a scalar) gave `InvalidArgumentError ... strided_slice`."""
    _, _, model_dir = trained
    serve = tf.saved_model.load(os.path.join(model_dir, "export")).signatures["serving_default"]
    one = serve(text=tf.constant("the [MASK] is imported"))
    batch = serve(text=tf.constant(["the [MASK] is imported"]))
    assert one["num_masks"].numpy().tolist() == [1] and set(one) == set(batch)
    for key in batch:
        if batch[key].dtype.is_floating:  # the same graph on the same input: equal to float32 rounding
            np.testing.assert_allclose(one[key].numpy(), batch[key].numpy(), rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(one[key].numpy(), batch[key].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="one string or a 1-D batch of strings"):
        serve(text=tf.constant([["a [MASK]"]]))


def test_the_drivers_do_not_import_each_other():
    """export and finetune rebuild a run from its directory (model_config.json), without pretrain's code."""
    code = ("import sys, official.nlp.export, official.nlp.finetune, official.nlp.fill_mask; "
            "print(sorted(m for m in sys.modules if m == 'official.nlp.pretrain'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


RESUME_COMMAND = [sys.executable, "-m", "official.nlp.pretrain", "--model=sibert", "--config=tiny",
                  f"--text_files={CORPUS}/heldout.txt", "--global_batch_size=4", "--max_seq_length=32",
                  "--max_predictions_per_seq=5", "--train_steps=12", "--warmup_steps=2", "--learning_rate=0.5",
                  "--deterministic", "--export=false", "--verbose=0", "--seed=3"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    full = str(tmp_path_factory.mktemp("full"))
    subprocess.run(RESUME_COMMAND + ["--steps_per_epoch=2", f"--model_dir={full}"], cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    return full


def _start_and_wait_for(model_dir, checkpoint, steps_per_epoch):
    proc = subprocess.Popen(RESUME_COMMAND + [f"--steps_per_epoch={steps_per_epoch}", f"--model_dir={model_dir}"],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(model_dir, f"{checkpoint}.index")) and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return proc


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, uninterrupted):
    killed = str(tmp_path / "killed")
    proc = _start_and_wait_for(killed, "ckpt-4", 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    latest = tf.train.latest_checkpoint(killed)
    assert latest is not None and not latest.endswith("ckpt-12"), "the run was not interrupted mid-way"
    subprocess.run(RESUME_COMMAND + ["--steps_per_epoch=2", f"--model_dir={killed}"], cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    tu.assert_checkpoints_close(killed + "/ckpt-12", uninterrupted + "/ckpt-12", rtol=1e-6, atol=1e-7)
    # summary.json says where the run is and what the resumed invocation trained.
    resumed_from = int(latest.rsplit("-", 1)[1])
    summary = json.load(open(os.path.join(killed, "summary.json")))
    assert (summary["step"], summary["initial_step"], summary["steps"]) == (12, resumed_from, 12 - resumed_from)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_checkpoints_the_step_reached_and_a_rerun_resumes_exactly(tmp_path, uninterrupted, sig):
    """Preemption (SIGTERM) or Ctrl-C mid-epoch: one line, a checkpoint at that step, the shell's exit code."""
    stopped = str(tmp_path / "stopped")
    proc = _start_and_wait_for(stopped, "ckpt-6", 6)  # epochs of 6 steps: the signal lands mid-epoch
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig.value, err
    step = int(tf.train.latest_checkpoint(stopped).rsplit("-", 1)[1])
    assert 6 < step < 12, (step, out)
    assert out.strip().splitlines()[-1] == (f"Stopped at step {step} ({sig.name}); the checkpoint is written: run the "
                                            "same command to resume.")
    assert "Traceback" not in err
    again = subprocess.run(RESUME_COMMAND + ["--steps_per_epoch=6", f"--model_dir={stopped}"], cwd=ROOT, env=ENV,
                           check=True, capture_output=True, text=True)
    assert f"Resuming from {stopped}/ckpt-{step} (step {step})" in again.stdout
    tu.assert_checkpoints_close(stopped + "/ckpt-12", uninterrupted + "/ckpt-12", rtol=1e-6, atol=1e-7,
                                ignore=("save_counter",))


def test_heldout_metrics_equal_an_independent_computation_from_the_logits(trained, capsys):
    """Every held-out number printed equals TensorFlow's cross-entropy over all real positions of all batches.

    Keras's evaluate() on this dataset divided by N+1 batches for N (printed 5.482 for 5.825): the regression
    uses 3 batches, where that error is 25%.
    """
    model, _, _ = trained
    f = flag_values(eval_batches=3)
    from official.nlp.data.vocab import Vocab

    data = pretrain.eval_dataset(f, Vocab(f.vocab_file))
    m = pretrain.heldout_metrics(model, data)
    ce, w, hits, nsp_ce, nsp_hits, n, targets = 0.0, 0.0, 0.0, 0.0, 0.0, 0, []
    from official.nlp import modeling

    for batch in data:
        x, y, sw = modeling.pretraining_targets(batch)
        out = model(x, training=False)
        per = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y["mlm"], tf.int32), out["mlm"]).numpy()
        weight = sw["mlm"].numpy().astype(np.float64)
        ce += float((per * weight).sum())
        w += float(weight.sum())
        hits += float(((np.argmax(out["mlm"], -1) == y["mlm"].numpy()) * weight).sum())
        targets += list(y["mlm"].numpy()[weight > 0])
        nsp = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(y["nsp"], tf.int32), out["nsp"]).numpy()
        nsp_ce += float(nsp.sum())
        nsp_hits += float((np.argmax(out["nsp"], -1) == y["nsp"].numpy()).sum())
        n += len(nsp)
    assert m["positions"] == w == len(targets)
    np.testing.assert_allclose(m["mlm_loss"], ce / w, rtol=1e-5)  # float32 logits, float64 sums
    assert m["mlm_accuracy"] == pytest.approx(hits / w, abs=1e-12)
    np.testing.assert_allclose(m["nsp_loss"], nsp_ce / n, rtol=1e-5)
    assert m["nsp_accuracy"] == pytest.approx(nsp_hits / n, abs=1e-12)
    counts = np.unique(targets, return_counts=True)[1] / len(targets)
    assert m["unigram_loss"] == pytest.approx(-(counts * np.log(counts)).sum(), rel=1e-12)
    assert m["unigram_accuracy"] == pytest.approx(counts.max(), rel=1e-12)
    # With the training text's frequencies: its cross-entropy on the held-out targets, counted independently.
    from official.nlp.data import pretrain_dataloader as loader

    vocab = Vocab(f.vocab_file)
    unigram = pretrain.unigram_distribution(loader.load_documents(f.text_files), vocab)
    tokenizer = vocab.tokenizer()
    text = [s for d in loader.load_documents(f.text_files) for s in d]
    ids = np.concatenate([np.asarray(t) for t in tokenizer.tokenize(text).merge_dims(-2, -1).to_list()])
    freq = (np.bincount(ids, minlength=len(vocab)) + 1.0) / (len(ids) + len(vocab))
    np.testing.assert_allclose(unigram, freq, rtol=1e-12)
    with_train = pretrain.heldout_metrics(model, data, unigram)
    assert with_train["unigram_source"] == "training text" and with_train["mlm_loss"] == m["mlm_loss"]
    assert with_train["unigram_loss"] == pytest.approx(-np.mean(np.log(freq[np.asarray(targets)])), rel=1e-12)
    # The line the driver prints carries the same numbers.
    print(pretrain.format_heldout(m))
    line = capsys.readouterr().out
    assert f"MLM loss {ce / w:.3f}, accuracy {hits / w:.2%}" in line and f"NSP loss {nsp_ce / n:.3f}" in line


def test_init_scale_multiplies_exactly_the_scale_invariant_group():
    import keras

    import keras_si

    keras.utils.set_random_seed(7)
    base = pretrain.build_model(flag_values(), 800)
    keras.utils.set_random_seed(7)
    scaled = pretrain.build_model(flag_values(init_scale=0.01), 800)

    si, rest = keras_si.scale_invariant_variables(base)
    si_scaled, rest_scaled = keras_si.scale_invariant_variables(scaled)
    assert any("norm" in v.path and "gamma" in v.path for v in si), "the embedding normalisation's gain is in the group"
    for a, b in zip(si, si_scaled):
        np.testing.assert_allclose(b.numpy(), 0.01 * a.numpy(), rtol=1e-6, atol=0)
    for a, b in zip(rest, rest_scaled):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    from official.nlp import modeling

    x = modeling.dummy_features(2, 32, 5, 800)
    np.testing.assert_allclose(scaled(x)["mlm"], base(x)["mlm"], rtol=1e-3, atol=1e-4)


def _snapshot(directory):
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            out[path] = open(path, "rb").read()
    return out


def test_a_mistaken_rerun_changes_nothing_and_a_finished_run_says_so(tmp_path):
    model_dir = str(tmp_path / "run")
    args = [sys.executable, "-m", "official.nlp.pretrain", "--model=sibert", "--config=tiny",
            f"--text_files={CORPUS}/heldout.txt", "--global_batch_size=4", "--max_seq_length=32",
            "--max_predictions_per_seq=5", "--train_steps=2", "--steps_per_epoch=2", "--warmup_steps=1",
            "--learning_rate=0.5", "--verbose=0", f"--model_dir={model_dir}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True)
    before = _snapshot(model_dir)
    bad = subprocess.run(args + ["--config=mini"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"error: --config=mini differs from the run in --model_dir={model_dir}, which was started with "
        "--config=tiny: give the same value to continue that run, or another --model_dir.")
    assert _snapshot(model_dir) == before
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "is complete" in again.stdout and "Resuming" not in again.stdout
    assert _snapshot(model_dir) == before


def test_train_steps_not_a_multiple_of_the_epoch_trains_exactly_that_many(tmp_path, capsys):
    """--train_steps=5 with epochs of 2: a last, shorter epoch, a checkpoint at step 5 (it trained to 6 before);
    resuming to 7 with a new learning rate says so and trains 2 more."""
    model_dir = str(tmp_path / "run")
    model, summary = pretrain.run(flag_values(model_dir=model_dir, train_steps=5, export=False,
                                              eval_text_files=None))
    assert int(model.optimizer.iterations.numpy()) == 5 and summary["steps"] == 5
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-5")
    capsys.readouterr()
    model, summary = pretrain.run(flag_values(model_dir=model_dir, train_steps=7, export=False,
                                              eval_text_files=None, learning_rate=0.25))
    assert int(model.optimizer.iterations.numpy()) == 7 and summary["steps"] == 2
    out = capsys.readouterr().out
    assert "Note: --learning_rate=0.25 differs from the run's 0.5" in out and "Note: --train_steps=7" in out


def test_a_batch_the_replicas_cannot_share_is_refused_before_anything_is_written(tmp_path):
    model_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"--global_batch_size=3 is not divisible by the 2 replicas"):
        pretrain.run(flag_values(model_dir=str(model_dir), global_batch_size=3), strategy=tu.two_cpu_strategy())
    assert not model_dir.exists()
