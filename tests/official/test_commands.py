"""Every command of official/ run as a user runs it (`python -m ...` in a subprocess), on their own small text.

One chain, as docs/pipeline.md's "your own data" walkthrough: vocabulary -> TFRecords -> pretraining ->
export -> fill-mask -> fine-tuning on local files. Each step's exit status, its output files and one line
of its output are checked.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")


def command(module, *args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def own_text(tmp_path_factory):
    """A user's corpus: the held-out pages split into two files, one document per file."""
    d = tmp_path_factory.mktemp("own")
    docs = open(os.path.join(CORPUS, "heldout.txt"), encoding="utf-8").read().strip().split("\n\n")
    (d / "a.txt").write_text("\n\n".join(docs[:4]) + "\n", encoding="utf-8")
    (d / "b.txt").write_text("\n\n".join(docs[4:]) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def pretrained(own_text):
    d = own_text
    vocab = str(d / "vocab.txt")
    command("official.nlp.data.build_vocab", f"--input_files={d}/a.txt,{d}/b.txt", f"--vocab_file={vocab}",
            "--vocab_size=600")
    assert 100 < len(open(vocab, encoding="utf-8").read().split("\n")) <= 601
    command("official.nlp.data.create_pretraining_data", f"--input_files={d}/a.txt,{d}/b.txt",
            f"--output_file={d}/records", f"--vocab_file={vocab}", "--max_seq_length=32",
            "--max_predictions_per_seq=5", "--dupe_factor=1")
    assert os.path.getsize(d / "records-00000-of-00001.tfrecord") > 0
    run = str(d / "run")
    # No --vocab_file: the records' own vocabulary (a copy beside them), not the shipped one.
    out = command("official.nlp.pretrain", "--model=sibert", "--config=tiny", f"--input_files={d}/records-*.tfrecord",
                  "--global_batch_size=4", "--max_seq_length=32",
                  "--max_predictions_per_seq=5", "--train_steps=4", "--steps_per_epoch=2", "--warmup_steps=1",
                  "--learning_rate=0.5", "--verbose=0", f"--model_dir={run}", "--export=false")
    assert os.path.exists(os.path.join(run, "ckpt-4.index")), out.stdout
    assert "the records' own" in out.stdout
    saved = json.load(open(os.path.join(run, "flags.json")))
    assert open(saved["vocab_file"], encoding="utf-8").read() == open(vocab, encoding="utf-8").read()
    return d, vocab, run


def test_records_and_another_vocabulary_are_refused_in_one_line(pretrained, tmp_path):
    d, _, _ = pretrained
    bad = command("official.nlp.pretrain", f"--input_files={d}/records-*.tfrecord",
                  f"--vocab_file={CORPUS}/vocab.txt", "--max_seq_length=32", "--max_predictions_per_seq=5",
                  f"--model_dir={tmp_path}/run", check=False)
    last = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 1 and last.startswith(f"error: --vocab_file={CORPUS}/vocab.txt") and \
        "is not the vocabulary the records were written with" in last, bad.stderr
    assert not os.path.exists(tmp_path / "run")


def test_export_and_fill_mask_commands(pretrained):
    d, vocab, run = pretrained
    out = command("official.nlp.export", f"--model_dir={run}")
    assert os.path.exists(os.path.join(run, "export", "saved_model.pb")) and "Exported" in out.stdout
    filled = command("official.nlp.fill_mask", f"--export_dir={run}/export", f"--text_file={d}/a.txt",
                     "--examples=2")
    assert filled.stdout.count("-> original") == 2 and "masked words start with the predicted word piece" in \
        filled.stdout


def test_finetune_command_on_local_files(pretrained, tmp_path):
    _, _, run = pretrained
    ft = os.path.join(CORPUS, "finetune")
    out = command("official.nlp.finetune", f"--init_model_dir={run}", f"--train_file={ft}/train.tsv",
                  f"--eval_file={ft}/dev.tsv", "--text_fields=sentence", "--label_field=label",
                  "--max_train_examples=64", "--batch_size=16", "--epochs=1", "--max_seq_length=32",
                  f"--model_dir={tmp_path}/ft")
    results = json.load(open(tmp_path / "ft" / "eval_results.json"))
    assert results["labels"] == ["introduces", "statement"] and results["examples"] == 90
    assert 0.0 <= results["accuracy"] <= 1.0 and "f1" in results and "initialised from" in out.stdout


def test_finetune_command_refuses_a_mistake_in_one_line(pretrained, tmp_path):
    _, _, run = pretrained
    ft = os.path.join(CORPUS, "finetune")
    bad = command("official.nlp.finetune", f"--init_model_dir={run}", f"--train_file={ft}/train.tsv",
                  f"--eval_file={ft}/dev.tsv", "--text_fields=text", f"--model_dir={tmp_path}/ft", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"error: {ft}/train.tsv: no column 'text'; the header has ['sentence', 'label'].")
    assert not os.path.exists(tmp_path / "ft")
