"""Learns a lower-cased WordPiece vocabulary from text files with tensorflow-text.

    python -m official.nlp.data.build_vocab \
        --input_files=official/nlp/corpus/train.txt \
        --vocab_file=official/nlp/corpus/vocab.txt --vocab_size=8000

The reserved tokens come first: [PAD]=0, [UNK], [CLS], [SEP], [MASK].
"""

from absl import app, flags

from official.nlp.data.files import expand_globs

def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_list("input_files", None, "Text files (globs allowed), one sentence per line.")
    flags.DEFINE_string("vocab_file", None, "Where to write the vocabulary.")
    flags.DEFINE_integer("vocab_size", 8000, "Target vocabulary size (the learner may return a few fewer).")
    flags.DEFINE_integer("max_lines", 0, "Use only the first N lines (0 = all).")


FLAGS = flags.FLAGS

# tensorflow-text's learner keeps a word piece only if it occurs at least this many times (its `lower_thresh`
# default, which we do not change); on a small corpus that, not --vocab_size, bounds the vocabulary.
MIN_COUNT = 10
# The learner accepts a vocabulary down to (1 - its slack_ratio) of the size asked for.
_SLACK = 0.05


def learn_vocab(files, vocab_size, max_lines=0):
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    from official.nlp.data.vocab import RESERVED_TOKENS

    if vocab_size <= len(RESERVED_TOKENS):
        raise ValueError(f"--vocab_size must be > {len(RESERVED_TOKENS)}. Received: {vocab_size}")
    lines = tf.data.TextLineDataset(files).filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)
    if max_lines:
        lines = lines.take(max_lines)
    # The learner fails with a bare StopIteration on no words at all.
    if not list(lines.take(1)):
        raise ValueError(f"--input_files: no text in {', '.join(files)}.")
    return bert_vocab_from_dataset.bert_vocab_from_dataset(
        lines.batch(1000).prefetch(2),
        vocab_size=vocab_size,
        reserved_tokens=RESERVED_TOKENS,
        bert_tokenizer_params={"lower_case": True},
        learn_params={"lower_thresh": MIN_COUNT, "slack_ratio": _SLACK},
    )


def size_note(tokens, vocab_size):
    """A line saying why the vocabulary is smaller than asked for, or None if it is about the size asked for."""
    if len(tokens) >= vocab_size * (1 - _SLACK):
        return None
    return (f"Asked for --vocab_size={vocab_size}, but the corpus supports only {len(tokens)} tokens: apart from "
            f"the single characters, a word piece is kept only if it occurs at least {MIN_COUNT} times, and no more "
            "do; give more text for a larger vocabulary.")


def write_vocab(tokens, path):
    import tensorflow as tf

    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write("".join(t + "\n" for t in tokens))
    tf.io.gfile.rename(tmp, path, overwrite=True)  # write, then switch


def build(input_files, vocab_file, vocab_size=8000, max_lines=0):
    """Learns a vocabulary from `input_files` and writes it to `vocab_file`; returns the tokens.

    Args:
        input_files: text files or globs (a list or comma-separated; local or gs://).
        vocab_file: where to write it (local or gs://); its directory is made.
        vocab_size: the target size, > 5 (default 8000); a small corpus may
            give fewer (then a line says why).
        max_lines: use only the first N non-empty lines, >= 0 (0 = all).

    Raises:
        ValueError: a bad argument, no input file, or no word piece common
            enough to learn (the message names the flag or files).
    """
    import os

    import tensorflow as tf

    from official.nlp.data.vocab import RESERVED_TOKENS

    if not vocab_file:
        raise ValueError("--vocab_file is empty.")
    if max_lines < 0:
        raise ValueError(f"--max_lines must be >= 0. Received: {max_lines}")
    if vocab_size <= len(RESERVED_TOKENS):
        raise ValueError(f"--vocab_size must be > {len(RESERVED_TOKENS)}. Received: {vocab_size}")
    files = expand_globs(input_files)
    tokens = learn_vocab(files, vocab_size, max_lines)
    tf.io.gfile.makedirs(os.path.dirname(vocab_file) or ".")
    write_vocab(tokens, vocab_file)
    note = size_note(tokens, vocab_size)
    if note:
        print(note)
    print(f"Wrote {len(tokens)} tokens to {vocab_file}")
    return tokens


def main(argv):
    del argv
    build(FLAGS.input_files, FLAGS.vocab_file, FLAGS.vocab_size, FLAGS.max_lines)


if __name__ == "__main__":
    from official.common import cli

    define_flags()
    flags.mark_flags_as_required(["input_files", "vocab_file"])
    app.run(lambda argv: cli.run_reporting_input_errors(main, argv))
