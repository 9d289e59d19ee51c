"""Fills [MASK]s in held-out sentences with an exported pretrainer (a SavedModel).

    python -m official.nlp.fill_mask --export_dir=runs/demo/export \
        --text_file=official/nlp/corpus/heldout.txt --examples=5

Each chosen sentence gets one word (of at least 4 letters) replaced by
[MASK]; the SavedModel tokenizes the text itself and predicts the first
WordPiece of the masked word; the most likely pieces are printed with their
probabilities.
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
    top_tokens, top_p = out["top_k_tokens"].numpy()[:, 0], out["top_k_probabilities"].numpy()[:, 0]
    hits, hits_k = 0, 0
    for (text, answer), tokens, probs in zip(examples, top_tokens, top_p):
        guesses = [t.decode() for t in tokens]
        starts = [answer.startswith(g.replace("##", "")) for g in guesses]
        hits += starts[0]
        hits_k += any(starts)
        ranked = ", ".join(f"{g!r} {p:.2f}" for g, p in zip(guesses, probs))
        print(f"  {text}\n      -> original {answer!r}; predicted {ranked}")
    k = top_tokens.shape[-1]
    print(f"{hits}/{len(examples)} masked words start with the predicted word piece, "
          f"{hits_k}/{len(examples)} with one of the {k} most likely.")


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["export_dir"])
    app.run(main)
