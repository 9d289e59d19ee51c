"""Next-sentence pairs across input files, and the text loader's errors (issue 13, items 5 and 6)."""

import math
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from official.nlp.data import create_pretraining_data as cpd
from official.nlp.data import pretrain_dataloader as loader
from official.nlp.data import records as layout
from official.nlp.data.vocab import Vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt")
SEQ, PRED = 64, 10
BOOKS, WORDS_PER_BOOK, SENTENCES, SENTENCE_LENGTH = 3, 30, 150, 10


def book_words(vocab):
    """Whole-word tokens of the vocabulary, `WORDS_PER_BOOK` for each book, no word in two books."""
    words = [t for t in vocab.tokens if t.isalpha() and t.islower() and len(t) >= 3]
    assert len(words) >= BOOKS * WORDS_PER_BOOK
    return [words[i * WORDS_PER_BOOK:(i + 1) * WORDS_PER_BOOK] for i in range(BOOKS)]


def write_books(directory, vocab):
    """`BOOKS` files of one document each (one file per book); a sentence is `SENTENCE_LENGTH` words and '.'."""
    rng = random.Random(0)
    paths = []
    for b, words in enumerate(book_words(vocab)):
        path = os.path.join(directory, f"book{b}.txt")
        with open(path, "w") as f:
            f.write("".join(" ".join(rng.choice(words) for _ in range(SENTENCE_LENGTH)) + ".\n"
                            for _ in range(SENTENCES)))
        paths.append(path)
    return paths


def book_of(ids, owner):
    books = {owner[int(t)] for t in ids}
    assert len(books) == 1, books  # a segment never mixes books
    return books.pop()


def check_pairs(input_word_ids, positions, labels, weights, nsp, vocab, owner, book_a=None):
    """Label 1 iff B is from another book than A (A from `book_a` if given); returns the count of label 1."""
    ids = input_word_ids.copy()
    for row in range(len(ids)):  # undo the masking: the originals are the labels
        k = int(weights[row].sum())
        ids[row, positions[row, :k]] = labels[row, :k]
    for row, tokens in enumerate(ids):
        seps = np.nonzero(tokens == vocab.sep_id)[0]
        a, b = tokens[1:seps[0]], tokens[seps[0] + 1:seps[1]]
        # "." is a token of every book: drop it.
        a, b = [t for t in a if int(t) in owner], [t for t in b if int(t) in owner]
        assert (book_of(a, owner) != book_of(b, owner)) == bool(nsp[row])
        assert book_a is None or book_of(a, owner) == book_a
    return int(np.sum(nsp))


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    vocab = Vocab(VOCAB)
    owner = {vocab.ids[w]: b for b, words in enumerate(book_words(vocab)) for w in words}
    return write_books(tmp_path_factory.mktemp("books"), vocab), vocab, owner


def test_random_next_sentences_come_from_the_other_files(books, tmp_path):
    """Three files of one document each: about half the pairs have a random B, from another book.

    With short_seq_prob=0 and sentences of 11 tokens, a chunk fills to 61 tokens with 6 sentences; only the last
    chunk of a document can be shorter, so at most BOOKS * dupe_factor instances have the one-sentence chunk that
    forces a random B. Every other instance is random with probability 1/2, independently: the share of label 1
    lies within 4 binomial standard deviations of 1/2, plus at most that forced share. Before the fix it was 0.
    """
    paths, vocab, owner = books
    dupe = 3
    one = cpd.create(paths, VOCAB, os.path.join(tmp_path, "w1", "train"), 2, SEQ, PRED, dupe_factor=dupe,
                     short_seq_prob=0.0, random_seed=5, num_workers=1)
    spec = layout.feature_spec(SEQ, PRED)
    rows = list(tf.data.TFRecordDataset(one).map(lambda r: tf.io.parse_single_example(r, spec)).as_numpy_iterator())
    f = {k: np.stack([r[k] for r in rows]) for k in spec}
    n = len(rows)
    random_next = check_pairs(f["input_word_ids"], f["masked_lm_positions"], f["masked_lm_ids"],
                              f["masked_lm_weights"], f["next_sentence_labels"][:, 0], vocab, owner)
    sd = math.sqrt(0.25 / n)
    assert 0.5 - 4 * sd < random_next / n < 0.5 + 4 * sd + BOOKS * dupe / n, (random_next, n)
    # The same records for the same seed, whatever the number of workers (B is drawn from all files in both).
    two = cpd.create(paths, VOCAB, os.path.join(tmp_path, "w2", "train"), 2, SEQ, PRED, dupe_factor=dupe,
                     short_seq_prob=0.0, random_seed=5, num_workers=2)
    for a, b in zip(one, two):
        assert open(a, "rb").read() == open(b, "rb").read()


def test_dynamic_masking_draws_b_from_all_documents_on_every_worker(books):
    """Each input pipeline packs its own documents but takes B from all of them: about 1/2 random labels even
    for a worker whose shard is one document (before, the pairing of a worker's stream could only be as good as
    its documents). Bounds as above; the forced one-sentence chunks are at most one per pass over the document,
    and a pass gives at least SENTENCES / 6 instances (a label-0 instance uses its whole chunk of at most
    6 sentences, a random one at least one sentence)."""
    paths, vocab, owner = books
    docs = loader.load_documents(",".join(paths))
    assert len(docs) == BOOKS
    tokenized = loader.inst.tokenize_documents(docs, vocab.tokenizer(), len(vocab))
    for worker in range(BOOKS):
        stream = loader.InstanceStream(tokenized, vocab, 16, SEQ, PRED, short_seq_prob=0.0, seed=3,
                                       shard=(worker, BOOKS))()
        batches = [next(stream) for _ in range(20)]
        f = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
        n = len(f["input_word_ids"])
        random_next = check_pairs(f["input_word_ids"], f["masked_lm_positions"], f["masked_lm_ids"],
                                  f["masked_lm_weights"], f["next_sentence_labels"][:, 0], vocab, owner,
                                  book_a=worker)
        sd = math.sqrt(0.25 / n)
        forced = n / (SENTENCES / 6) + 1
        assert 0.5 - 4 * sd < random_next / n < 0.5 + 4 * sd + forced / n, (worker, random_next, n)


# ---------------------------------------------------------------- errors that name the flag and the file
def test_one_document_names_the_flag_and_file(books, tmp_path):
    paths, _, _ = books
    with pytest.raises(ValueError, match=rf"^--eval_text_files={paths[0]} holds one document \({SENTENCES} "
                                         r"sentences\); next-sentence pairs draw B from another document"):
        loader.load_documents(paths[0], flag_name="--eval_text_files")
    single = os.path.join(tmp_path, "single.txt")
    open(single, "w").write("Just one sentence.\n")
    with pytest.raises(ValueError, match=rf"^--eval_text_files: {single} has one sentence"):
        loader.load_documents(single, flag_name="--eval_text_files")
    with pytest.raises(ValueError, match=r"^--eval_text_files: no file matches .*missing"):
        loader.load_documents(os.path.join(tmp_path, "missing*.txt"), flag_name="--eval_text_files")
    empty = os.path.join(tmp_path, "empty.txt")
    open(empty, "w").write("\n\n")
    with pytest.raises(ValueError, match=rf"^--text_files={empty} holds no document"):
        loader.load_documents(empty)


def test_stream_errors_name_the_source(books):
    paths, vocab, _ = books
    docs = loader.load_documents(",".join(paths[:2]), flag_name="--eval_text_files")
    assert docs.source == f"--eval_text_files={paths[0]},{paths[1]}"
    with pytest.raises(ValueError, match=r"Input pipeline 2 of 3 gets none of the 2 documents of "
                                         rf"--eval_text_files={paths[0]},{paths[1]}"):
        loader.text_dataset(docs, vocab, 4, SEQ, PRED, input_context=tf.distribute.InputContext(3, 2, 1))


def test_single_sentence_and_empty_inputs_of_the_writer(tmp_path):
    single = os.path.join(tmp_path, "single.txt")
    open(single, "w").write("Just one sentence.\n")
    with pytest.raises(ValueError, match=rf"^--input_files: {single} has one sentence; an instance needs two"):
        cpd.create([single], VOCAB, os.path.join(tmp_path, "out"))
    empty = os.path.join(tmp_path, "empty.txt")
    open(empty, "w").write("\n")
    with pytest.raises(ValueError, match=rf"^--input_files: {single} has one sentence and the other inputs none"):
        cpd.create([empty, single], VOCAB, os.path.join(tmp_path, "out"))
    with pytest.raises(ValueError, match=rf"^--input_files: no text in {empty}"):
        cpd.create([empty], VOCAB, os.path.join(tmp_path, "out"))
    # Two one-sentence files: a pair (A from one, a random B from the other), every label 1.
    other = os.path.join(tmp_path, "other.txt")
    open(other, "w").write("Another sentence.\n")
    out = cpd.create([single, other], VOCAB, os.path.join(tmp_path, "out"), max_seq_length=16,
                     max_predictions_per_seq=2, dupe_factor=1)
    spec = layout.feature_spec(16, 2)
    labels = [r["next_sentence_labels"][0] for r in tf.data.TFRecordDataset(out).map(
        lambda r: tf.io.parse_single_example(r, spec)).as_numpy_iterator()]
    assert labels == [1, 1]


def test_packed_documents_are_the_lists_they_were_made_from(tmp_path):
    """The writer's memory-mapped corpus gives the same documents, and so the same instances, as Python lists."""
    rng = random.Random(0)
    files = [[[[rng.randint(5, 99) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 6))]
              for _ in range(n)] for n in (3, 0, 1, 4)]  # the second file is empty
    prefixes = [os.path.join(tmp_path, f"p{i}") for i in range(len(files))]
    for documents, prefix in zip(files, prefixes):
        loader.inst.save_packed(documents, prefix)
    packed = loader.inst.PackedDocuments(prefixes)
    flat = [d for documents in files for d in documents]
    assert len(packed) == len(flat) == 8
    assert [packed[i].tolist() for i in range(len(packed))] == flat
    assert [list(packed[i]) for i in range(len(packed))] == flat
    assert [list(packed[i][1:]) for i in range(len(packed))] == [d[1:] for d in flat]
    assert packed[7][-1] == flat[7][-1]
    with pytest.raises(IndexError):
        packed[8]
    for d in range(len(flat)):
        a, b = random.Random(d), random.Random(d)
        assert list(loader.inst.instances_from_document(packed, d, 16, 0.3, a, 2, 3)) == list(
            loader.inst.instances_from_document(flat, d, 16, 0.3, b, 2, 3))
