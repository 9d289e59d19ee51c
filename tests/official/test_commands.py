"""Every command of official/ run as a user runs it (`python -m ...` in a subprocess), on their own small text.

One chain, docs/pipeline.md's "Your own data" walkthrough, parsed from the Markdown and run as written with
smaller sizes appended (absl takes the last value of a flag): vocabulary -> TFRecords -> pretraining -> export ->
fill-mask -> fine-tuning on a local table. Each step's exit status, its output files and its output are checked,
and so is what a user sees by default: the command's own lines and no TensorFlow/absl logging.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")

# Appended to the walkthrough's commands: sizes for a few seconds each on a CPU.
SMALL = {
    "official.nlp.data.build_vocab": ["--vocab_size=600"],
    "official.nlp.data.create_pretraining_data": ["--max_seq_length=32", "--max_predictions_per_seq=5",
                                                  "--dupe_factor=1"],
    "official.nlp.pretrain": ["--max_seq_length=32", "--max_predictions_per_seq=5", "--global_batch_size=4",
                              "--train_steps=4", "--steps_per_epoch=2", "--warmup_steps=1", "--learning_rate=0.5",
                              "--eval_batches=1", "--export=false"],
    "official.nlp.fill_mask": ["--examples=2"],
    "official.nlp.finetune": ["--max_train_examples=64", "--batch_size=16", "--epochs=1", "--max_seq_length=32"],
}
# What a user sees from TensorFlow/absl logging (C++ "I0000 00:00..." / "W0000", absl "I1122 ...", Python
# "WARNING:tensorflow:"/"INFO:tensorflow:", Keras's UserWarnings): none of it by default.
NOT_OURS = re.compile(r"^([IWEF]\d{4} |WARNING:|INFO:|WARNING: All log messages|.*(Warning|warnings\.warn)\b|"
                      r"To enable the following instructions)")


def walkthrough():
    """[(module, argv)] of the first bash block under "## Your own data" in docs/pipeline.md."""
    text = open(os.path.join(ROOT, "docs", "pipeline.md"), encoding="utf-8").read()
    section = text.split("## Your own data", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    steps = []
    for line in lines:
        words = shlex.split(line)
        assert words[:2] == ["python", "-m"], line
        steps.append((words[2], words[3:]))
    return steps


def command(module, *args, check=True, cwd=ROOT, env=None):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # what a user gets
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_step(steps, module, cwd):
    [args] = [a for m, a in steps if m == module]
    return command(module, *args, *SMALL.get(module, []), cwd=cwd)


def noise(proc):
    """The lines of a command's output that come from TensorFlow's, absl's or Python's logging, not from it."""
    return [line for line in (proc.stdout + proc.stderr).splitlines() if NOT_OURS.match(line)]


@pytest.fixture(scope="module")
def own_text(tmp_path_factory):
    """A user's folder: the held-out pages as their text (two files, two documents in one, two in the other...),
    a held-out file, and a fine-tuning table (the shipped example task)."""
    d = tmp_path_factory.mktemp("own")
    docs = open(os.path.join(CORPUS, "heldout.txt"), encoding="utf-8").read().strip().split("\n\n")
    (d / "my_text").mkdir()
    (d / "my_text" / "a.txt").write_text("\n\n".join(docs[:4]) + "\n", encoding="utf-8")
    (d / "my_text" / "b.txt").write_text("\n\n".join(docs[4:-1]) + "\n", encoding="utf-8")
    (d / "my_held_out.txt").write_text(docs[-1] + "\n\n" + docs[0] + "\n", encoding="utf-8")
    (d / "my_task").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        shutil.copy(os.path.join(CORPUS, "finetune", name), d / "my_task" / name)
    return d


@pytest.fixture(scope="module")
def pretrained(own_text):
    d, steps = own_text, walkthrough()
    assert [m for m, _ in steps] == ["official.nlp.data.build_vocab", "official.nlp.data.create_pretraining_data",
                                     "official.nlp.pretrain", "official.nlp.export", "official.nlp.fill_mask",
                                     "official.nlp.finetune"]
    run_step(steps, "official.nlp.data.build_vocab", d)
    vocab = str(d / "my_data" / "vocab.txt")
    assert 100 < len(open(vocab, encoding="utf-8").read().split("\n")) <= 601
    run_step(steps, "official.nlp.data.create_pretraining_data", d)
    assert os.path.getsize(d / "my_data" / "train-00000-of-00001.tfrecord") > 0
    out = run_step(steps, "official.nlp.pretrain", d)
    run = str(d / "runs" / "mine")
    assert os.path.exists(os.path.join(run, "ckpt-4.index")), out.stdout
    # No --vocab_file: the records' own vocabulary (a copy beside them), not the shipped one.
    assert "the records' own" in out.stdout
    saved = json.load(open(os.path.join(run, "model_config.json")))
    assert open(os.path.join(d, saved["vocab_file"]), encoding="utf-8").read() == \
        open(vocab, encoding="utf-8").read()
    return d, vocab, run, steps, out


def test_pretrain_shows_its_own_output_and_no_logging_by_default(pretrained):
    """Issue 13, item 8: 20 of 38 lines were TensorFlow/absl logging, and Keras warned about our fit's shuffle."""
    *_, out = pretrained
    assert noise(out) == [], out.stdout + out.stderr
    assert "Held-out before training" in out.stdout and "Held-out after training" in out.stdout
    assert "shuffle=True" not in out.stderr


def test_log_level_info_brings_the_logging_back(pretrained):
    d, *_ = pretrained
    quiet = command("official.nlp.export", "--model_dir=runs/mine", "--export_dir=runs/quiet", cwd=d)
    loud = command("official.nlp.export", "--model_dir=runs/mine", "--export_dir=runs/loud", "--log_level=info",
                   cwd=d)
    assert noise(quiet) == [] and len(noise(loud)) >= 3, loud.stderr
    assert quiet.stdout.strip() == "Exported runs/mine to runs/quiet"


def test_records_and_another_vocabulary_are_refused_in_one_line(pretrained, tmp_path):
    d, *_ = pretrained
    bad = command("official.nlp.pretrain", f"--input_files={d}/my_data/train-*.tfrecord",
                  f"--vocab_file={CORPUS}/vocab.txt", "--max_seq_length=32", "--max_predictions_per_seq=5",
                  f"--model_dir={tmp_path}/run", check=False)
    last = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 1 and last.startswith(f"error: --vocab_file={CORPUS}/vocab.txt") and \
        "is not the vocabulary the records were written with" in last, bad.stderr
    assert not os.path.exists(tmp_path / "run")


def test_export_and_fill_mask_commands(pretrained):
    d, vocab, run, steps, _ = pretrained
    out = run_step(steps, "official.nlp.export", d)
    assert os.path.exists(os.path.join(run, "export", "saved_model.pb")) and "Exported" in out.stdout
    filled = run_step(steps, "official.nlp.fill_mask", d)
    assert filled.stdout.count("-> original") == 2 and "masked words begin with the predicted word piece" in \
        filled.stdout
    assert noise(out) == [] and noise(filled) == [], out.stderr + filled.stderr


def test_fill_mask_given_a_run_directory_says_which_directory_to_give(pretrained):
    """Issue 13, item 6: `--export_dir=<a run directory>` was a raw OSError."""
    d, _, run, _, _ = pretrained
    bad = command("official.nlp.fill_mask", "--export_dir=runs/mine", cwd=d, check=False)
    assert bad.returncode == 1
    if os.path.exists(os.path.join(run, "export", "saved_model.pb")):
        expected = "is a pretraining run directory, not an export: give --export_dir=runs/mine/export."
    else:
        expected = "is a pretraining run directory without an export"
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip().splitlines()[-1]], bad.stderr
    assert bad.stderr.strip().startswith("error: --export_dir=runs/mine ") and expected in bad.stderr
    missing = command("official.nlp.fill_mask", "--export_dir=nowhere", cwd=d, check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: --export_dir=nowhere does not exist; give the SavedModel written by official.nlp.export "
        "(<model_dir>/export by default).")


def test_export_of_a_run_directory_from_before_model_config(pretrained, tmp_path):
    """A run written before model_config.json (flags.json only) still exports; a directory that is no run is
    refused in one line."""
    d, _, run, _, _ = pretrained
    old = tmp_path / "old_run"
    shutil.copytree(run, old, ignore=shutil.ignore_patterns("export", "logs"))
    os.remove(old / "model_config.json")
    flags = json.load(open(old / "flags.json"))
    flags["vocab_file"] = os.path.join(d, flags["vocab_file"])
    for newer in ("vocab_sha256", "dropout", "summary_steps"):  # fields the oldest runs lack
        flags.pop(newer, None)
    json.dump(flags, open(old / "flags.json", "w"))
    out = command("official.nlp.export", f"--model_dir={old}")
    assert os.path.exists(old / "export" / "saved_model.pb"), out.stdout
    bad = command("official.nlp.export", f"--model_dir={tmp_path}", check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        f"error: --model_dir={tmp_path} is not a pretraining run directory: it holds no model_config.json "
        "(written by official.nlp.pretrain beside its checkpoints).")


def test_finetune_command_on_local_files(pretrained):
    d, _, _, steps, _ = pretrained
    out = run_step(steps, "official.nlp.finetune", d)
    results = json.load(open(d / "runs" / "mine_task" / "eval_results.json"))
    assert results["labels"] == ["introduces", "statement"] and results["examples"] == 90
    assert 0.0 <= results["accuracy"] <= 1.0 and "f1" in results and "initialised from" in out.stdout
    assert noise(out) == [], out.stderr


def test_finetune_command_refuses_a_mistake_in_one_line(pretrained, tmp_path):
    _, _, run, _, _ = pretrained
    ft = os.path.join(CORPUS, "finetune")
    bad = command("official.nlp.finetune", f"--init_model_dir={run}", f"--train_file={ft}/train.tsv",
                  f"--eval_file={ft}/dev.tsv", "--text_fields=text", f"--model_dir={tmp_path}/ft", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"error: {ft}/train.tsv: no column 'text'; the header has ['sentence', 'label'].")
    assert not os.path.exists(tmp_path / "ft")
