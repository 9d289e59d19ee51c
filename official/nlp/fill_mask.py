"""Fills [MASK]s in held-out sentences with an exported pretrainer (a SavedModel).

    python -m official.nlp.fill_mask --export_dir=runs/demo/export \
        --text_file=official/nlp/corpus/heldout.txt --examples=5

Each chosen sentence gets one word (of at least 4 letters) replaced by
[MASK]; the SavedModel tokenizes the text itself and predicts the first
WordPiece of the masked word.
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


FLAGS = flags.FLAGS


def masked_examples(lines, n, seed):
    rng = random.Random(seed)
    candidates = [s for s in lines if 6 <= len(s.split()) <= 20]
    out = []
    for sentence in rng.sample(candidates, min(n, len(candidates))):
        words = sentence.split()
        choices = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{4,}", w)]
        if not choices:
            continue
        i = rng.choice(choices)
        out.append((" ".join(words[:i] + ["[MASK]"] + words[i + 1:]), words[i].lower()))
    return out


def main(argv):
    del argv
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops the SavedModel uses)

    with tf.io.gfile.GFile(FLAGS.text_file) as f:
        lines = [line.strip() for line in f if line.strip()]
    model = tf.saved_model.load(FLAGS.export_dir)
    examples = masked_examples(lines, FLAGS.examples, FLAGS.seed)
    out = model.signatures["serving_default"](text=tf.constant([t for t, _ in examples]))
    hits = 0
    for (text, answer), token in zip(examples, out["predicted_tokens"].numpy()[:, 0]):
        guess = token.decode()
        hits += answer.startswith(guess.replace("##", ""))
        print(f"  {text}\n      -> predicted {guess!r}, original {answer!r}")
    print(f"{hits}/{len(examples)} masked words start with the predicted word piece.")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["export_dir"])
    app.run(main)
