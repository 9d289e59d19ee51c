"""Pretraining data: record layout, Model Garden compatibility, NSP polarity, masking statistics, errors."""

import os
import random

import numpy as np
import pytest
import tensorflow as tf

from official.nlp.data import create_pretraining_data as cpd
from official.nlp.data import instances as inst
from official.nlp.data import pretrain_dataloader as loader
from official.nlp.data import records as layout
from official.nlp.data.vocab import Vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")
VOCAB = os.path.join(CORPUS, "vocab.txt")
SEQ, PRED = 64, 10

# The Model Garden's BERT pretraining loader (official/nlp/data/pretrain_dataloader.py, v2 feature
# names) parses exactly this spec; written here from its documented layout.
MODEL_GARDEN_SPEC = {
    "input_word_ids": tf.io.FixedLenFeature([SEQ], tf.int64),
    "input_mask": tf.io.FixedLenFeature([SEQ], tf.int64),
    "input_type_ids": tf.io.FixedLenFeature([SEQ], tf.int64),
    "masked_lm_positions": tf.io.FixedLenFeature([PRED], tf.int64),
    "masked_lm_ids": tf.io.FixedLenFeature([PRED], tf.int64),
    "masked_lm_weights": tf.io.FixedLenFeature([PRED], tf.float32),
    "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
}


def small_corpus(tmp_path, docs=12, name="small.txt"):
    """The first `docs` documents of the held-out corpus, tagged by document for NSP checks."""
    documents = list(inst.read_documents([os.path.join(CORPUS, "heldout.txt")]))[:docs]
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write("\n\n".join("\n".join(d) for d in documents) + "\n")
    return path, documents


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("records")
    path, documents = small_corpus(tmp)
    out = cpd.create([path], VOCAB, os.path.join(tmp, "train"), num_output_shards=2, max_seq_length=SEQ,
                     max_predictions_per_seq=PRED, dupe_factor=2, random_seed=7)
    return out, path, documents


def parse_all(files, spec=MODEL_GARDEN_SPEC):
    ds = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec))
    return list(ds.as_numpy_iterator())


def test_records_parse_with_the_model_garden_spec(records):
    files, _, _ = records
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    examples = parse_all(files)
    assert len(examples) > 20
    vocab = Vocab(VOCAB)
    for ex in examples:
        n = int(ex["input_mask"].sum())
        ids = ex["input_word_ids"]
        assert ids[0] == vocab.cls_id and ids[n - 1] == vocab.sep_id and np.all(ids[n:] == 0)
        assert np.all(ex["input_mask"][:n] == 1)
        k = int(ex["masked_lm_weights"].sum())
        assert 1 <= k <= PRED and np.all(ex["masked_lm_positions"][k:] == 0)
        assert np.all(np.diff(ex["masked_lm_positions"][:k]) > 0)  # sorted, distinct
        assert ex["next_sentence_labels"][0] in (0, 1)


def test_loader_reads_model_garden_style_records(tmp_path):
    """Records written by another writer with the same spec load in our loader."""
    path = os.path.join(tmp_path, "mg.tfrecord")
    rng = np.random.RandomState(0)
    with tf.io.TFRecordWriter(path) as w:
        for _ in range(8):
            feats = {k: rng.randint(0, 50, size=v.shape).astype(np.int64) if v.dtype == tf.int64
                     else np.ones(v.shape, np.float32) for k, v in MODEL_GARDEN_SPEC.items()}
            w.write(layout.serialize(feats))
    x = loader.numpy_batch(loader.tfrecord_dataset(path, 4, SEQ, PRED, seed=0))
    assert x["input_word_ids"].shape == (4, SEQ) and x["input_word_ids"].dtype == np.int32
    assert x["masked_lm_ids"].shape == (4, PRED) and x["next_sentence_labels"].shape == (4, 1)
    assert x["masked_lm_weights"].shape == (4, PRED) and x["masked_lm_weights"].dtype == np.float32


def test_nsp_label_polarity():
    """Label 1 = B is random (from another document), 0 = B follows A, as in BERT."""
    docs = [[[100 + d * 10 + s] * 5 for s in range(6)] for d in range(6)]  # token encodes (doc, sentence)
    rng = random.Random(0)
    seen = {0: 0, 1: 0}
    for d in range(len(docs)):
        for _ in range(20):
            for instance in inst.instances_from_document(docs, d, 40, 0.0, rng, cls_id=2, sep_id=3):
                sep = instance.tokens.index(3)
                a, b = instance.tokens[1:sep], instance.tokens[sep + 1:-1]
                doc_a, doc_b = (a[0] - 100) // 10, (b[0] - 100) // 10
                if instance.is_random_next:
                    assert doc_b != doc_a
                else:
                    assert doc_b == doc_a and (b[0] - 100) % 10 == (a[-1] - 100) % 10 + 1  # the next sentence
                seen[int(instance.is_random_next)] += 1
    assert min(seen.values()) > 0.3 * sum(seen.values())


def _random_instances(rng, count, seq):
    """Instances `[CLS] A [SEP] B [SEP]` of random lengths 5..seq with ids 10..999 (2 = [CLS], 3 = [SEP])."""
    out = []
    for _ in range(count):
        n = rng.randint(5, seq)
        a = rng.randint(1, n - 4)
        body = [rng.randint(10, 999) for _ in range(n - 3)]
        tokens = [2] + body[:a] + [3] + body[a:] + [3]
        out.append(inst.Instance(tokens, [0] * (a + 2) + [1] * (n - a - 2), rng.random() < 0.5))
    return out


def test_mask_batch_layout_and_counts():
    """Per row: round(n * p) (within [1, P]) sorted, distinct positions on non-special real tokens,
    labels = the original ids, everything else unchanged, padding zero."""
    config = inst.MaskingConfig(vocab_size=1000, cls_id=2, sep_id=3, mask_id=4, masked_lm_prob=0.15,
                                max_predictions_per_seq=12)
    instances = _random_instances(random.Random(0), 300, 100)
    f = inst.mask_batch(instances, config, 100, np.random.default_rng(0))
    assert {k: v.shape for k, v in f.items()} == {
        "input_word_ids": (300, 100), "input_mask": (300, 100), "input_type_ids": (300, 100),
        "masked_lm_positions": (300, 12), "masked_lm_ids": (300, 12), "masked_lm_weights": (300, 12),
        "next_sentence_labels": (300, 1)}
    for row, instance in enumerate(instances):
        tokens, n = instance.tokens, len(instance.tokens)
        k = min(12, max(1, int(round(n * 0.15))))  # Python's round, as BERT's reference code
        w = f["masked_lm_weights"][row]
        np.testing.assert_array_equal(w, [1.0] * k + [0.0] * (12 - k))
        pos = f["masked_lm_positions"][row]
        chosen = pos[:k]
        assert (np.diff(chosen) > 0).all() and (pos[k:] == 0).all() and (f["masked_lm_ids"][row][k:] == 0).all()
        assert all(tokens[p] not in (2, 3) and p < n for p in chosen)
        np.testing.assert_array_equal(f["masked_lm_ids"][row][:k], [tokens[p] for p in chosen])
        ids = f["input_word_ids"][row]
        untouched = np.setdiff1d(np.arange(n), chosen)
        np.testing.assert_array_equal(ids[untouched], np.array(tokens)[untouched])
        assert (ids[n:] == 0).all()
        np.testing.assert_array_equal(f["input_mask"][row], [1] * n + [0] * (100 - n))
        np.testing.assert_array_equal(f["input_type_ids"][row][:n], instance.segment_ids)
        assert f["next_sentence_labels"][row, 0] == int(instance.is_random_next)


def test_masking_statistics():
    """80% [MASK], 10% random, 10% kept; every candidate position equally likely to be chosen."""
    config = inst.MaskingConfig(vocab_size=1000, cls_id=2, sep_id=3, mask_id=4, masked_lm_prob=0.15,
                                max_predictions_per_seq=40)
    rng = random.Random(1)
    # [CLS] A (49 tokens) [SEP] B (48 tokens) [SEP]: 100 tokens, 97 candidates.
    instances = []
    for _ in range(2000):
        body = [rng.randint(10, 999) for _ in range(97)]
        instances.append(inst.Instance([2] + body[:49] + [3] + body[49:] + [3], [0] * 51 + [1] * 49, False))
    f = inst.mask_batch(instances, config, 100, np.random.default_rng(1))
    weights = f["masked_lm_weights"].astype(bool)
    assert (weights.sum(axis=1) == 15).all()  # round(100 * 0.15) per sequence
    rows = np.nonzero(weights)[0]
    positions = f["masked_lm_positions"][weights]
    original = f["masked_lm_ids"][weights]
    now = f["input_word_ids"][rows, positions]
    n = len(positions)  # 30,000 predictions
    is_mask, is_kept = now == 4, now == original
    # Binomial: the std of a fraction q over n draws is sqrt(q(1-q)/n); allow 4 std.
    assert abs(is_mask.mean() - 0.8) < 4 * np.sqrt(0.8 * 0.2 / n)
    # "kept" also holds the random draws that hit the original id (probability 0.1 / 1000).
    assert abs(is_kept.mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n) + 1e-3
    assert abs((~is_mask & ~is_kept).mean() - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n) + 1e-3
    # Uniform selection: each of the 97 candidate positions is chosen with probability 15/97. Pearson's
    # chi-square over the 97 counts has 96 degrees of freedom (mean 96, std ~13.9); 96 + 5 std ~ 165.
    counts = np.bincount(positions, minlength=100)
    assert counts[[0, 50, 99]].sum() == 0  # [CLS], [SEP], [SEP]
    expected = n / 97
    chi2 = (((counts[counts > 0] - expected) ** 2) / expected).sum()
    assert (counts > 0).sum() == 97 and chi2 < 165, chi2


def test_deterministic_and_independent_of_workers(tmp_path):
    p1, _ = small_corpus(tmp_path, docs=6, name="a.txt")
    p2, _ = small_corpus(tmp_path, docs=10, name="b.txt")
    kw = dict(max_seq_length=SEQ, max_predictions_per_seq=PRED, dupe_factor=1, random_seed=3)
    one = cpd.create([p1, p2], VOCAB, os.path.join(tmp_path, "w1", "out"), num_workers=1, **kw)
    two = cpd.create([p1, p2], VOCAB, os.path.join(tmp_path, "w2", "out"), num_workers=2, **kw)
    for a, b in zip(one, two):
        assert open(a, "rb").read() == open(b, "rb").read()
    assert not [f for f in os.listdir(os.path.join(tmp_path, "w1")) if f.endswith(".tmp") or ".part" in f]


def test_dynamic_masking_changes_masks_and_keeps_layout():
    vocab = Vocab(VOCAB)
    docs = loader.load_documents(os.path.join(CORPUS, "heldout.txt"), max_documents=6)
    ds = loader.text_dataset(docs, vocab, 8, SEQ, PRED, seed=0)
    x1, x2 = list(ds.take(2).as_numpy_iterator())
    assert x1["input_word_ids"].shape == (8, SEQ) and x1["masked_lm_ids"].shape == (8, PRED)
    assert np.all((x1["input_word_ids"] >= 0) & (x1["input_word_ids"] < len(vocab)))
    assert (x1["masked_lm_weights"].sum(axis=1) >= 1).all()
    again = next(iter(loader.text_dataset(docs, vocab, 8, SEQ, PRED, seed=0)))
    np.testing.assert_array_equal(again["input_word_ids"], x1["input_word_ids"])  # seeded


# ---------------------------------------------------------------- bad input
def test_dynamic_masking_with_more_workers_than_documents_is_an_error():
    vocab = Vocab(VOCAB)
    docs = [[[10, 11, 12]], [[20, 21]]]
    loader.InstanceStream(docs, vocab, 4, SEQ, PRED, shard=(1, 3))  # worker 1 of 3 gets document 1
    with pytest.raises(ValueError, match="Input pipeline 2 of 3 gets none of the 2 documents"):
        loader.InstanceStream(docs, vocab, 4, SEQ, PRED, shard=(2, 3))


def test_bad_inputs(tmp_path, records):
    files, path, _ = records
    with pytest.raises(ValueError, match="no file matches"):
        loader.tfrecord_dataset(os.path.join(tmp_path, "missing-*"), 4, SEQ, PRED)
    truncated = os.path.join(tmp_path, "truncated.tfrecord")
    data = open(files[0], "rb").read()
    open(truncated, "wb").write(data[: len(data) - 7])
    with pytest.raises(ValueError, match="truncated.tfrecord is corrupt or truncated"):
        loader.tfrecord_dataset(truncated, 4, SEQ, PRED)
    with pytest.raises(ValueError, match="max_seq_length"):
        loader.tfrecord_dataset(files[0], 4, SEQ * 2, PRED)
    with pytest.raises(ValueError, match="max_predictions_per_seq"):
        cpd.create([path], VOCAB, os.path.join(tmp_path, "x"), max_seq_length=16, max_predictions_per_seq=20)
    with pytest.raises(ValueError, match="masked_lm_prob"):
        cpd.create([path], VOCAB, os.path.join(tmp_path, "x"), masked_lm_prob=1.5)
    bad_vocab = os.path.join(tmp_path, "vocab.txt")
    open(bad_vocab, "w").write("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"lacks the special tokens \['\[CLS\]', '\[SEP\]', '\[MASK\]'\]"):
        Vocab(bad_vocab)


def test_token_ids_outside_vocabulary_are_reported(records, tmp_path):
    """Records without facts (another writer's) are checked in the graph, as they are read."""
    files, _, _ = records
    foreign = os.path.join(tmp_path, "foreign.tfrecord")
    open(foreign, "wb").write(open(files[0], "rb").read())
    ds = loader.tfrecord_dataset(foreign, 4, SEQ, PRED, seed=0, vocab_size=10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the vocabulary"):
        next(iter(ds))
