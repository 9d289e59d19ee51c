"""Fills [MASK]s in held-out sentences with an exported pretrainer (a SavedModel).

    python -m official.nlp.fill_mask --export_dir=runs/demo/export \
        --text_file=official/nlp/corpus/heldout.txt --examples=5

Each sentence, drawn at random, gets one word, drawn at random, replaced by
[MASK] (no choice by hand: see `masked_examples`); the SavedModel tokenizes
the text itself and predicts the first WordPiece of the masked word; the most
likely pieces are printed with their probabilities.
"""

import random
import re

from absl import app, flags


def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_string("export_dir", None, "A SavedModel written by official.nlp.export.")
    flags.DEFINE_string("text_file", "official/nlp/corpus/heldout.txt", "Sentences to mask (one per line).")
    flags.DEFINE_integer("examples", 5, "How many sentences.")
    flags.DEFINE_integer("seed", 0, "Which sentences and words.")
    from official.nlp import flags as nlp_flags

    nlp_flags.define_log_level_flag()


FLAGS = flags.FLAGS


def masked_examples(lines, n, seed):
    """`n` (masked sentence, masked word) pairs: a random sentence of 6-20 words, a random word of it.

    Both draws are uniform (seed `seed`), so the sample is what a held-out
    evaluation sees, not words picked to make the model look good: frequent
    short words ("the", "of") come up as often as they occur. The word is the
    letters of a whitespace-separated token (punctuation around it is kept).
    """
    rng = random.Random(seed)
    candidates = [s for s in lines if 6 <= len(s.split()) <= 20 and re.search(r"[A-Za-z]", s)]
    out = []
    for sentence in rng.sample(candidates, min(n, len(candidates))):
        words = list(re.finditer(r"[A-Za-z]+", sentence))
        word = rng.choice(words)
        out.append((sentence[:word.start()] + "[MASK]" + sentence[word.end():], word.group().lower()))
    return out


def first_word_pieces(words, vocab):
    """The first WordPiece of each word, by the vocabulary's own tokenizer (`Vocab.tokenizer`, as the export's).

    A predicted piece is right only if it is this piece: "a" is not a right
    answer for "and", whose first piece is "and" when the vocabulary has it.
    """
    pieces = vocab.tokenizer().tokenize(list(words)).merge_dims(-2, -1)
    return [vocab.tokens[ids[0]] for ids in pieces.to_list()]


def check_export_dir(path, flag="--export_dir"):
    """Raises a one-line ValueError unless `path` holds a SavedModel, saying what it is and which to give."""
    import os

    import tensorflow as tf

    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return
    export = os.path.join(path, "export")
    if tf.io.gfile.exists(os.path.join(export, "saved_model.pb")):
        raise ValueError(f"{flag}={path} is a pretraining run directory, not an export: give {flag}={export}.")
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"{flag}={path} does not exist; give the SavedModel written by official.nlp.export "
                         "(<model_dir>/export by default).")
    if tf.io.gfile.exists(os.path.join(path, "model_config.json")) or tf.train.latest_checkpoint(path):
        raise ValueError(f"{flag}={path} is a pretraining run directory without an export: run `python -m "
                         f"official.nlp.export --model_dir={path}`, then give {flag}={export}.")
    raise ValueError(f"{flag}={path} holds no SavedModel (saved_model.pb); give the directory written by "
                     "official.nlp.export (<model_dir>/export by default).")


def fill(export_dir, text_file, examples, seed):
    """Masks one word in each of `examples` sentences of `text_file` and prints the export's predictions."""
    import os

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops the SavedModel uses)

    from official.nlp.data.vocab import Vocab

    check_export_dir(export_dir)
    if not tf.io.gfile.exists(text_file):
        raise ValueError(f"--text_file={text_file} does not exist.")
    with tf.io.gfile.GFile(text_file) as f:
        lines = [line.strip() for line in f if line.strip()]
    model = tf.saved_model.load(export_dir)
    examples = masked_examples(lines, examples, seed)
    if not examples:
        raise ValueError(f"--text_file={text_file} has no sentence of 6 to 20 words.")
    out = model.signatures["serving_default"](text=tf.constant([t for t, _ in examples]))
    top_tokens, top_p = out["top_k_tokens"].numpy()[:, 0], out["top_k_probabilities"].numpy()[:, 0]
    vocab_file = os.path.join(export_dir, "assets", "vocab.txt")
    firsts = (first_word_pieces([answer for _, answer in examples], Vocab(vocab_file))
              if tf.io.gfile.exists(vocab_file) else [None] * len(examples))
    hits, hits_k = 0, 0
    for (text, answer), first, tokens, probs in zip(examples, firsts, top_tokens, top_p):
        guesses = [t.decode() for t in tokens]
        right = [g == first if first else answer.startswith(g) for g in guesses]
        hits += right[0]
        hits_k += any(right)
        ranked = ", ".join(f"{g!r} {p:.2f}" for g, p in zip(guesses, probs))
        print(f"  {text}\n      -> original {answer!r}; predicted {ranked}")
    k = top_tokens.shape[-1]
    print(f"{hits}/{len(examples)} masked words begin with the predicted word piece, "
          f"{hits_k}/{len(examples)} with one of the {k} most likely.")


def main(argv):
    del argv
    from official.common import cli

    cli.set_log_level(FLAGS.log_level)
    cli.run_reporting_input_errors(fill, FLAGS.export_dir, FLAGS.text_file, FLAGS.examples, FLAGS.seed)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["export_dir"])
    app.run(main)
