"""Learns a lower-cased WordPiece vocabulary from text files with tensorflow-text.

    python -m official.nlp.data.build_vocab \
        --input_files=official/nlp/corpus/train.txt \
        --vocab_file=official/nlp/corpus/vocab.txt --vocab_size=8000

The reserved tokens come first: [PAD]=0, [UNK], [CLS], [SEP], [MASK].
"""

import os

from absl import app, flags

from official.nlp.data.files import expand_globs

def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_list("input_files", None, "Text files (globs allowed), one sentence per line.")
    flags.DEFINE_string("vocab_file", None, "Where to write the vocabulary.")
    flags.DEFINE_integer("vocab_size", 8000, "Target vocabulary size (the learner may return a few fewer).")
    flags.DEFINE_integer("max_lines", 0, "Use only the first N lines (0 = all).")


FLAGS = flags.FLAGS


def learn_vocab(files, vocab_size, max_lines=0):
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

    from official.nlp.data.vocab import RESERVED_TOKENS

    if vocab_size <= len(RESERVED_TOKENS):
        raise ValueError(f"--vocab_size must be > {len(RESERVED_TOKENS)}. Received: {vocab_size}")
    lines = tf.data.TextLineDataset(files).filter(lambda s: tf.strings.length(s) > 0)
    if max_lines:
        lines = lines.take(max_lines)
    return bert_vocab_from_dataset.bert_vocab_from_dataset(
        lines.batch(1000).prefetch(2),
        vocab_size=vocab_size,
        reserved_tokens=RESERVED_TOKENS,
        bert_tokenizer_params={"lower_case": True},
        learn_params={},
    )


def write_vocab(tokens, path):
    import tensorflow as tf

    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write("".join(t + "\n" for t in tokens))
    tf.io.gfile.rename(tmp, path, overwrite=True)  # write, then switch


def main(argv):
    del argv
    if not FLAGS.vocab_file:
        raise app.UsageError("--vocab_file is required.")
    files = expand_globs(FLAGS.input_files)
    tokens = learn_vocab(files, FLAGS.vocab_size, FLAGS.max_lines)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.vocab_file)), exist_ok=True)
    write_vocab(tokens, FLAGS.vocab_file)
    print(f"Wrote {len(tokens)} tokens to {FLAGS.vocab_file}")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["input_files", "vocab_file"])
    app.run(main)
