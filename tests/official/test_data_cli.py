"""build_vocab and create_pretraining_data as commands: a user's mistake is one `error:` line (issue 13, item 6)."""

import os
import subprocess
import sys

from official.nlp.data import instances as inst

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")
VOCAB = os.path.join(CORPUS, "vocab.txt")


def run(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("KERAS_SI_FULL_TRACEBACKS", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def last_line(text):
    return text.strip().splitlines()[-1]


def test_build_vocab_says_why_it_is_smaller_than_asked(tmp_path):
    corpus = os.path.join(tmp_path, "small.txt")
    documents = list(inst.read_documents([os.path.join(CORPUS, "heldout.txt")]))[:4]
    open(corpus, "w").write("\n\n".join("\n".join(d) for d in documents) + "\n")
    vocab = os.path.join(tmp_path, "new", "vocab.txt")
    result = run("official.nlp.data.build_vocab", f"--input_files={corpus}", f"--vocab_file={vocab}",
                 "--vocab_size=30000")
    assert result.returncode == 0, result.stderr[-2000:]
    written = open(vocab).read().splitlines()
    assert 5 < len(written) < 30000 * 0.95
    assert (f"Asked for --vocab_size=30000, but the corpus supports only {len(written)} tokens: apart from the "
            "single characters, a word piece is kept only if it occurs at least 10 times") in result.stdout


def test_build_vocab_user_mistakes_are_one_line(tmp_path):
    missing = os.path.join(tmp_path, "missing.txt")
    blank = os.path.join(tmp_path, "blank.txt")
    open(blank, "w").write("\n  \n\t\n")  # the learner's own error here was a bare StopIteration
    for path, message in ((missing, f"error: --input_files: no file matches {missing!r}."),
                          (blank, f"error: --input_files: no text in {blank}.")):
        result = run("official.nlp.data.build_vocab", f"--input_files={path}",
                     f"--vocab_file={os.path.join(tmp_path, 'v.txt')}")
        assert result.returncode == 1
        assert last_line(result.stderr) == message
        assert "Traceback" not in result.stderr


def test_create_pretraining_data_user_mistakes_are_one_line(tmp_path):
    single = os.path.join(tmp_path, "single.txt")
    open(single, "w").write("Only one sentence here.\n")
    out = os.path.join(tmp_path, "out", "train")
    result = run("official.nlp.data.create_pretraining_data", f"--input_files={single}", f"--vocab_file={VOCAB}",
                 f"--output_file={out}")
    assert result.returncode == 1
    assert last_line(result.stderr) == (f"error: --input_files: {single} has one sentence; an instance needs two "
                                        "(a sentence A and a next or random sentence B).")
    assert "Traceback" not in result.stderr

    duplicated = os.path.join(tmp_path, "vocab.txt")
    open(duplicated, "w").write(open(VOCAB).read() + "the \n")
    result = run("official.nlp.data.create_pretraining_data", f"--input_files={single}",
                 f"--vocab_file={duplicated}", f"--output_file={out}")
    line = sum(1 for _ in open(VOCAB))
    first = open(VOCAB).read().splitlines().index("the") + 1
    assert result.returncode == 1
    assert last_line(result.stderr) == (f"error: Vocabulary {duplicated} lists the token 'the' twice: lines {first} "
                                        f"and {line + 1}.")
    assert "Traceback" not in result.stderr
