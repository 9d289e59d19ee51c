"""Builds the shipped fine-tuning example from the shipped corpus: does a sentence introduce what follows it?

    python official/nlp/corpus/finetune/make_finetune_data.py

In the Python documentation a sentence that ends with ':' introduces an
example, a list or a code block ("The output of the example code is:"); one
that ends with '.' states something. The label comes from the text's own
final punctuation, which is removed from the input, so the model must tell
from the words alone. Classes are balanced: every ':' sentence and as many
'.' sentences drawn at random (seed 0). train.tsv comes from ../train.txt,
dev.tsv from ../heldout.txt (pages the pretraining corpus does not contain).
Deterministic: rerunning writes the same files.
"""

import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = {":": "introduces", ".": "statement"}


def examples(path, seed=0):
    with open(path, encoding="utf-8") as fh:
        sentences = [line.strip() for line in fh if line.strip()]
    by_label = {label: [] for label in LABELS.values()}
    for s in sentences:
        if s[-1] in LABELS and "\t" not in s:
            by_label[LABELS[s[-1]]].append(s[:-1].rstrip())
    n = len(by_label["introduces"])
    rows = [(s, "introduces") for s in by_label["introduces"]]
    rows += [(s, "statement") for s in random.Random(seed).sample(by_label["statement"], n)]
    random.Random(seed + 1).shuffle(rows)
    return rows


def write(rows, path):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("sentence\tlabel\n")
        for sentence, label in rows:
            fh.write(f"{sentence}\t{label}\n")


if __name__ == "__main__":
    corpus = os.path.dirname(HERE)
    for name, source in (("train.tsv", "train.txt"), ("dev.tsv", "heldout.txt")):
        rows = examples(os.path.join(corpus, source))
        write(rows, os.path.join(HERE, name))
        print(f"{name}: {len(rows)} rows")
