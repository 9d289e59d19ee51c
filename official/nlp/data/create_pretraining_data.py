"""Text files -> sharded TFRecords of BERT pretraining instances (static masking).

    python -m official.nlp.data.create_pretraining_data \
        --input_files='official/nlp/corpus/train.txt' \
        --vocab_file=official/nlp/corpus/vocab.txt \
        --output_file=/tmp/pretrain/train --num_output_shards=4 \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --dupe_factor=5 --short_seq_prob=0.1 --random_seed=12345 --num_workers=2

Input: one sentence per line, a blank line between documents. Output:
`<output_file>-00000-of-0000N.tfrecord`, ... in BERT's standard layout (the
Model Garden's `input_word_ids` names; see `FEATURE_SPEC`), readable by its
BERT pretraining data loader and by `official.nlp.data.pretrain_dataloader`.

Each input file is one unit of work (parallel over `--num_workers`
processes) with its own random stream seeded from `--random_seed` and the
file's position, so the output does not depend on the number of workers.
Memory is bounded by one input file's tokens: each of the `dupe_factor`
passes writes its instances out before the next starts (the next-sentence
"random document" is drawn from the same input file, so split large corpora
into several files). Every file is written under a temporary name and then
renamed, so an interrupted run never leaves a partial file under a final name.
"""

import itertools
import multiprocessing
import os
import random

import numpy as np
from absl import app, flags

from official.nlp.data import instances as inst


def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_list("input_files", None, "Text files or globs.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary.")
    flags.DEFINE_string("output_file", None, "Output prefix: <prefix>-<i>-of-<n>.tfrecord.")
    flags.DEFINE_integer("num_output_shards", 1, "Number of output files.")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length.")
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence.")
    flags.DEFINE_float("masked_lm_prob", 0.15, "Fraction of tokens to mask.")
    flags.DEFINE_integer("dupe_factor", 5, "Passes over the data, each with different masks.")
    flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.")
    flags.DEFINE_integer("random_seed", 12345, "Seed.")
    flags.DEFINE_integer("num_workers", 1, "Processes working on input files in parallel.")


FLAGS = flags.FLAGS

# Instances masked per call of `mask_batch` (bounds its arrays' memory).
_MASK_CHUNK = 4096

FEATURE_SPEC_LENGTHS = {
    "input_word_ids": "max_seq_length",
    "input_mask": "max_seq_length",
    "input_type_ids": "max_seq_length",
    "masked_lm_positions": "max_predictions_per_seq",
    "masked_lm_ids": "max_predictions_per_seq",
    "masked_lm_weights": "max_predictions_per_seq",
    "next_sentence_labels": 1,
}


def serialize(features):
    import tensorflow as tf

    def feature(values):
        if values.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))

    example = tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))
    # deterministic=True sorts the feature map: byte-identical output in every process.
    return example.SerializeToString(deterministic=True)


def _process_file(job):
    """Writes the instances of one input file to `<part>.tmp`; returns (part path, count)."""
    import tensorflow as tf

    from official.nlp.data.vocab import Vocab

    index, path, part, opts = job
    vocab = Vocab(opts["vocab_file"])
    rng = random.Random(opts["random_seed"] * 1_000_003 + index)  # packing and pairing
    mask_rng = np.random.default_rng([opts["random_seed"], index])  # masking
    documents = inst.tokenize_documents(list(inst.read_documents([path])), vocab.tokenizer(), len(vocab))
    rng.shuffle(documents)
    config = inst.MaskingConfig(len(vocab), vocab.cls_id, vocab.sep_id, vocab.mask_id,
                                opts["masked_lm_prob"], opts["max_predictions_per_seq"])
    count = 0
    with tf.io.TFRecordWriter(part + ".tmp") as writer:
        for _ in range(opts["dupe_factor"]):
            instances = (
                instance
                for d in range(len(documents))
                for instance in inst.instances_from_document(
                    documents, d, opts["max_seq_length"], opts["short_seq_prob"], rng, vocab.cls_id, vocab.sep_id)
            )
            records = []
            while chunk := list(itertools.islice(instances, _MASK_CHUNK)):
                features = inst.mask_batch(chunk, config, opts["max_seq_length"], mask_rng)
                records.extend(serialize({k: v[row] for k, v in features.items()}) for row in range(len(chunk)))
            rng.shuffle(records)  # one pass of one file in memory, not the corpus x dupe_factor
            for r in records:
                writer.write(r)
            count += len(records)
    return part + ".tmp", count


def shard_name(prefix, i, n):
    return f"{prefix}-{i:05d}-of-{n:05d}.tfrecord"


def create(input_patterns, vocab_file, output_file, num_output_shards=1, max_seq_length=128,
           max_predictions_per_seq=20, masked_lm_prob=0.15, dupe_factor=5, short_seq_prob=0.1,
           random_seed=12345, num_workers=1):
    """Library entry point; returns the list of output files."""
    import tensorflow as tf

    from official.nlp.data.files import expand_globs
    from official.nlp.data.vocab import Vocab

    inst.check_lengths(max_seq_length, max_predictions_per_seq, masked_lm_prob)
    for name, value in (("num_output_shards", num_output_shards), ("dupe_factor", dupe_factor),
                        ("num_workers", num_workers)):
        if value < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {value}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"--short_seq_prob must be in [0, 1]. Received: {short_seq_prob}")
    files = expand_globs(input_patterns)
    Vocab(vocab_file)  # fail early on a bad vocabulary
    out_dir = os.path.dirname(os.path.abspath(output_file))
    tf.io.gfile.makedirs(out_dir)
    opts = dict(vocab_file=vocab_file, random_seed=random_seed, masked_lm_prob=masked_lm_prob,
                max_predictions_per_seq=max_predictions_per_seq, max_seq_length=max_seq_length,
                short_seq_prob=short_seq_prob, dupe_factor=dupe_factor)
    jobs = [(i, f, f"{output_file}.part{i:05d}", opts) for i, f in enumerate(files)]
    if num_workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(num_workers, len(jobs))) as pool:
            parts = pool.map(_process_file, jobs)
    else:
        parts = [_process_file(j) for j in jobs]

    # Deal the records round-robin into the output shards, in input order.
    outputs = [shard_name(output_file, i, num_output_shards) for i in range(num_output_shards)]
    writers = [tf.io.TFRecordWriter(o + ".tmp") for o in outputs]
    k = 0
    for part, _ in parts:
        for record in tf.data.TFRecordDataset(part).as_numpy_iterator():
            writers[k % num_output_shards].write(record)
            k += 1
        tf.io.gfile.remove(part)
    for w, o in zip(writers, outputs):
        w.close()
        tf.io.gfile.rename(o + ".tmp", o, overwrite=True)
    if k == 0:
        raise ValueError(f"No instance was created from {files}: are the documents empty?")
    print(f"Wrote {k} instances to {num_output_shards} shard(s): {outputs[0]} ...")
    return outputs


def main(argv):
    del argv
    create(FLAGS.input_files, FLAGS.vocab_file, FLAGS.output_file, FLAGS.num_output_shards, FLAGS.max_seq_length,
           FLAGS.max_predictions_per_seq, FLAGS.masked_lm_prob, FLAGS.dupe_factor, FLAGS.short_seq_prob,
           FLAGS.random_seed, FLAGS.num_workers)


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["input_files", "vocab_file", "output_file"])
    app.run(main)
