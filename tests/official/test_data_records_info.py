"""The records' facts beside them: written by create_pretraining_data, found and checked by trainers (issue 13, 3)."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from official.nlp.data import create_pretraining_data as cpd
from official.nlp.data import instances as inst
from official.nlp.data import pretrain_dataloader as loader
from official.nlp.data import records as layout
from official.nlp.data import records_info
from official.nlp.data.vocab import Vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")
VOCAB = os.path.join(CORPUS, "vocab.txt")
SEQ, PRED = 32, 5


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("records"))
    documents = list(inst.read_documents([os.path.join(CORPUS, "heldout.txt")]))[:4]
    inputs = []
    for i, d in enumerate(documents):
        inputs.append(os.path.join(tmp, f"doc{i}.txt"))
        open(inputs[-1], "w").write("\n".join(d[:12]) + "\n")
    prefix = os.path.join(tmp, "out", "train")
    files = cpd.create(inputs, VOCAB, prefix, num_output_shards=3, max_seq_length=SEQ, max_predictions_per_seq=PRED,
                       dupe_factor=2, masked_lm_prob=0.2, short_seq_prob=0.05, random_seed=11)
    return tmp, prefix, files, inputs


def test_facts_file_holds_what_the_records_are(made):
    _, prefix, files, inputs = made
    assert sorted(os.listdir(os.path.dirname(prefix))) == sorted(
        [os.path.basename(f) for f in files] + ["train.info.json", "train.vocab.txt"])  # no temporary left
    info = json.load(open(prefix + ".info.json"))
    spec = layout.feature_spec(SEQ, PRED)
    per_file = [list(tf.data.TFRecordDataset(f).map(lambda r: tf.io.parse_single_example(r, spec))
                     .as_numpy_iterator()) for f in files]
    labels = [r["next_sentence_labels"][0] for rows in per_file for r in rows]
    assert info == {
        "format": "keras_si.pretraining_records", "format_version": 1,
        "tool": "official.nlp.data.create_pretraining_data", "tool_version": cpd.TOOL_VERSION,
        "vocab_file": "train.vocab.txt", "source_vocab_file": VOCAB,
        "vocab_sha256": hashlib.sha256(open(VOCAB, "rb").read()).hexdigest(), "vocab_size": 4036,
        "max_seq_length": SEQ, "max_predictions_per_seq": PRED, "masked_lm_prob": 0.2, "short_seq_prob": 0.05,
        "dupe_factor": 2, "random_seed": 11, "num_documents": 4, "input_files": inputs,
        "num_instances": len(labels), "random_next_fraction": round(float(np.mean(labels)), 6),
        "num_files": 3, "files": [os.path.basename(f) for f in files],
        "instances_per_file": [len(rows) for rows in per_file],
    }
    # The copy is the vocabulary itself (the shipped file is clean, so byte for byte).
    assert open(prefix + ".vocab.txt", "rb").read() == open(VOCAB, "rb").read()


def test_find_by_glob_and_check(made, tmp_path):
    _, prefix, files, _ = made
    for pattern in (prefix + "*", prefix + "-*.tfrecord", ",".join(files), os.path.dirname(prefix) + "/*"):
        info = records_info.find(pattern)
        assert info["vocab_file"] == prefix + ".vocab.txt" and os.path.exists(info["vocab_file"])
        assert info["info_files"] == [prefix + ".info.json"]
        assert info["instances_in_input"] == info["num_instances"]
    assert records_info.find(files[1])["instances_in_input"] == json.load(open(prefix + ".info.json"))[
        "instances_per_file"][1]
    # The loader skips the facts files that a glob matched, and reads the records.
    x = loader.numpy_batch(loader.tfrecord_dataset(prefix + "*", 4, SEQ, PRED, seed=0))
    assert x["input_word_ids"].shape == (4, SEQ)

    info = records_info.find(prefix + "*")
    records_info.check(info, VOCAB, SEQ, PRED)
    records_info.check(info, info["vocab_file"], None, None)  # the copy; None skips a check
    records_info.check(info, Vocab(VOCAB))
    # The same vocabulary with other whitespace and a BOM is the same vocabulary.
    messy = os.path.join(tmp_path, "messy.txt")
    open(messy, "w", encoding="utf-8").write("\ufeff" + "".join(t + " \r\n" for t in Vocab(VOCAB).tokens))
    records_info.check(info, messy)

    other = os.path.join(tmp_path, "other.txt")
    open(other, "w").write(open(VOCAB).read().replace("\nthe\n", "\nthe\ntheee\n", 1))
    with pytest.raises(ValueError, match=rf"^--vocab_file={other} \(sha256 [0-9a-f]{{12}}\.\.\., 4037 tokens\) is not "
                                         rf"the vocabulary the records were written with \({VOCAB}, sha256 "
                                         rf"{info['vocab_sha256'][:12]}\.\.\., 4036 tokens, per {prefix}\.info\.json\)"
                                         rf": pass --vocab_file={prefix}\.vocab\.txt\.$"):
        records_info.check(info, other, SEQ, PRED)
    with pytest.raises(ValueError, match=rf"^--max_seq_length=128 but the records were written with "
                                         rf"max_seq_length={SEQ} \(per {prefix}\.info\.json\)\.$"):
        records_info.check(info, VOCAB, 128, PRED)
    with pytest.raises(ValueError, match=rf"^--max_predictions_per_seq=20 but the records were written with "
                                         rf"max_predictions_per_seq={PRED} "):
        records_info.check(info, None, SEQ, 20)


def test_foreign_stale_and_mixed_records(made, tmp_path):
    _, prefix, files, _ = made
    foreign = os.path.join(tmp_path, "mg.tfrecord")
    shutil.copy(files[0], foreign)
    assert records_info.find(foreign) is None  # another writer's records: nothing to check
    with pytest.raises(ValueError, match=rf"^--input_files: {foreign} has no facts file beside it but "
                                         rf"{files[0]} has \({prefix}\.info\.json\)"):
        records_info.find([files[0], foreign])

    # A shard of an earlier run with another --num_output_shards, matched by the same glob.
    directory = os.path.join(tmp_path, "stale")
    shutil.copytree(os.path.dirname(prefix), directory)
    stale = os.path.join(directory, "train-00004-of-00005.tfrecord")
    shutil.copy(files[0], stale)
    with pytest.raises(ValueError, match=rf"^--input_files: {stale} is not one of the 3 files that "
                                         rf"{directory}/train\.info\.json describes"):
        records_info.find(os.path.join(directory, "train-*"))

    # Two record sets: they must agree on the vocabulary and the lengths.
    second = os.path.join(tmp_path, "second")
    shutil.copytree(os.path.dirname(prefix), second)
    for f in os.listdir(second):
        os.rename(os.path.join(second, f), os.path.join(second, f.replace("train", "more")))
    info = json.load(open(os.path.join(second, "more.info.json")))
    info["files"] = [f.replace("train", "more") for f in info["files"]]
    json.dump(info, open(os.path.join(second, "more.info.json"), "w"))
    both = records_info.find([prefix + "-*", os.path.join(second, "more-*")])
    assert both["instances_in_input"] == 2 * info["num_instances"] and len(both["info_files"]) == 2
    info["max_seq_length"] = 2 * SEQ
    json.dump(info, open(os.path.join(second, "more.info.json"), "w"))
    with pytest.raises(ValueError, match=rf"were written with different max_seq_length \({SEQ} in "
                                         rf"{prefix}\.info\.json, {2 * SEQ} in {second}/more\.info\.json\)"):
        records_info.find([prefix + "-*", os.path.join(second, "more-*")])
    open(os.path.join(second, "more.info.json"), "w").write("{not json")
    with pytest.raises(ValueError, match=r"more\.info\.json is not valid JSON"):
        records_info.find(os.path.join(second, "more-*"))
    with pytest.raises(ValueError, match=r"matches no TFRecord file, only the records' facts files"):
        records_info.find(prefix + ".*")


def test_records_are_deterministic_for_a_seed(made, tmp_path):
    tmp, prefix, files, inputs = made
    again = cpd.create(inputs, VOCAB, os.path.join(tmp_path, "train"), num_output_shards=3, max_seq_length=SEQ,
                       max_predictions_per_seq=PRED, dupe_factor=2, masked_lm_prob=0.2, short_seq_prob=0.05,
                       random_seed=11)
    for a, b in zip(files, again):
        assert open(a, "rb").read() == open(b, "rb").read()
    first = json.load(open(prefix + ".info.json"))
    second = json.load(open(os.path.join(tmp_path, "train.info.json")))
    assert first == second


def test_the_loader_checks_the_facts(made):
    _, prefix, files, _ = made
    with pytest.raises(ValueError, match=rf"^--max_seq_length=64 but the records were written with "
                                         rf"max_seq_length={SEQ} \(per {prefix}\.info\.json\)\.$"):
        loader.tfrecord_dataset(prefix + "*", 4, 64, PRED)
    with pytest.raises(ValueError, match=rf"^The records were written with a vocabulary of 4036 tokens \({VOCAB}\), "
                                         rf"not 30522: pass --vocab_file={prefix}\.vocab\.txt\.$"):
        loader.tfrecord_dataset(prefix + "*", 4, SEQ, PRED, vocab_size=30522)
    loader.tfrecord_dataset(prefix + "*", 4, SEQ, PRED, vocab_size=4036)
    loader.tfrecord_dataset(prefix + "*", 4, 64, PRED, vocab_size=30522, validate=False)  # nothing checked
