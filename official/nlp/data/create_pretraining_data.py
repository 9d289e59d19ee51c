"""Text files -> sharded TFRecords of BERT pretraining instances (static masking).

    python -m official.nlp.data.create_pretraining_data \
        --input_files='official/nlp/corpus/train.txt' \
        --vocab_file=official/nlp/corpus/vocab.txt \
        --output_file=/tmp/pretrain/train --num_output_shards=4 \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --dupe_factor=5 --short_seq_prob=0.1 --random_seed=12345 --num_workers=2

Input: one sentence per line, a blank line between documents. Output:
`<output_file>-00000-of-0000N.tfrecord`, ... in BERT's standard layout (the
Model Garden's `input_word_ids` names; see `official.nlp.data.records`), readable by its
BERT pretraining data loader and by `official.nlp.data.pretrain_dataloader`.

Beside them, `<output_file>.info.json` records how they were made
(vocabulary hash, lengths, seed, counts, ...) and `<output_file>.vocab.txt`
is a copy of the vocabulary (`official.nlp.data.records_info`), so that
training can refuse flags that do not match the records.

Work goes in two passes over the input files, each file one unit of work
(parallel over `--num_workers` processes): the first tokenizes each file into
local memory-mapped arrays (4 bytes a token); the second makes each file's
instances, drawing the next-sentence "random document" from the documents of
*all* input files, as BERT does (so one-document-per-book inputs still get
about half random pairs). Each file has its own random stream seeded from
`--random_seed` and the file's position, so the output does not depend on the
number of workers. Memory is bounded by the mapped tokens (shared by the
workers through the page cache) plus one pass over one file's instances.
Every file is written under a temporary name and then renamed, so an
interrupted run never leaves a partial file under a final name.
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

# Version of the records this writer makes, stored in their facts. Bump it when the records for a given seed
# change. 2: the random next sentence is drawn from all input files, not the same file.
TOOL_VERSION = 2

# Instances masked per call of `mask_batch` (bounds its arrays' memory).
_MASK_CHUNK = 4096

def _tokenize_file(job):
    """Tokenizes one input file into `<prefix>.*.npy` (`instances.save_packed`); returns (documents, sentences)."""
    from official.nlp.data.vocab import Vocab

    path, prefix, vocab_file = job
    vocab = Vocab(vocab_file)
    documents = inst.tokenize_documents(list(inst.read_documents([path])), vocab.tokenizer(), len(vocab))
    inst.save_packed(documents, prefix)
    return len(documents), sum(len(d) for d in documents)


def _process_file(job):
    """Writes the instances of one input file's documents to `<part>.tmp`; returns (path, count, random count).

    The "random next" segments come from the documents of all input files
    (`PackedDocuments` over every file's tokens), as in BERT; which ones
    depends only on the seed and the file's position, not on the workers.
    """
    import tensorflow as tf

    from official.nlp.data import records as layout
    from official.nlp.data.vocab import Vocab

    index, part, prefixes, opts = job
    vocab = Vocab(opts["vocab_file"])
    rng = random.Random(opts["random_seed"] * 1_000_003 + index)  # packing and pairing
    mask_rng = np.random.default_rng([opts["random_seed"], index])  # masking
    corpus = inst.PackedDocuments(prefixes)
    order = list(range(int(corpus.starts[index]), int(corpus.starts[index + 1])))  # this file's documents
    rng.shuffle(order)
    config = inst.MaskingConfig(len(vocab), vocab.cls_id, vocab.sep_id, vocab.mask_id,
                                opts["masked_lm_prob"], opts["max_predictions_per_seq"])
    count = random_next = 0
    with tf.io.TFRecordWriter(part + ".tmp") as writer:
        for _ in range(opts["dupe_factor"]):
            instances = (
                instance
                for d in order
                for instance in inst.instances_from_document(
                    corpus, d, opts["max_seq_length"], opts["short_seq_prob"], rng, vocab.cls_id, vocab.sep_id)
            )
            records = []
            while chunk := list(itertools.islice(instances, _MASK_CHUNK)):
                features = inst.mask_batch(chunk, config, opts["max_seq_length"], mask_rng)
                random_next += int(features["next_sentence_labels"].sum())
                records.extend(layout.serialize({k: v[row] for k, v in features.items()}) for row in range(len(chunk)))
            rng.shuffle(records)  # one pass of one file in memory, not the corpus x dupe_factor
            for r in records:
                writer.write(r)
            count += len(records)
    return part + ".tmp", count, random_next


def shard_name(prefix, i, n):
    return f"{prefix}-{i:05d}-of-{n:05d}.tfrecord"


def create(input_patterns, vocab_file, output_file, num_output_shards=1, max_seq_length=128,
           max_predictions_per_seq=20, masked_lm_prob=0.15, dupe_factor=5, short_seq_prob=0.1,
           random_seed=12345, num_workers=1):
    """Writes BERT pretraining records from text files, and their facts beside them.

    Args:
        input_patterns: text files or globs (a list or comma-separated; local
            or gs://), one sentence per line, a blank line between documents.
        vocab_file: the WordPiece vocabulary.
        output_file: the prefix of the output files (local or gs://).
        num_output_shards: number of record files, >= 1 (default 1).
        max_seq_length: tokens per instance, >= 8 (default 128).
        max_predictions_per_seq: masked positions per instance, in
            [1, max_seq_length - 3] (default 20).
        masked_lm_prob: share of tokens masked, in (0, 1) (default 0.15).
        dupe_factor: passes over the data, each masked anew, >= 1 (default 5).
        short_seq_prob: probability of a shorter instance, in [0, 1]
            (default 0.1).
        random_seed: the seed (default 12345); the records depend only on it,
            the inputs and the options, not on `num_workers`.
        num_workers: processes, >= 1 (default 1).

    Returns:
        The list of record files; `<output_file>.info.json` and
        `<output_file>.vocab.txt` are written beside them
        (`official.nlp.data.records_info`).

    Raises:
        ValueError: an option out of range, no input file, a bad vocabulary,
            or inputs that give no instance (the message names the files).
    """
    import shutil
    import tempfile

    import tensorflow as tf

    from official.nlp.data import records_info
    from official.nlp.data.files import expand_globs
    from official.nlp.data.vocab import Vocab

    inst.check_lengths(max_seq_length, max_predictions_per_seq, masked_lm_prob)
    for name, value in (("num_output_shards", num_output_shards), ("dupe_factor", dupe_factor),
                        ("num_workers", num_workers)):
        if value < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {value}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"--short_seq_prob must be in [0, 1]. Received: {short_seq_prob}")
    if not output_file:
        raise ValueError("--output_file is empty.")
    files = expand_globs(input_patterns)
    vocab = Vocab(vocab_file)  # fail early on a bad vocabulary
    tf.io.gfile.makedirs(os.path.dirname(output_file) or ".")
    opts = dict(vocab_file=vocab_file, random_seed=random_seed, masked_lm_prob=masked_lm_prob,
                max_predictions_per_seq=max_predictions_per_seq, max_seq_length=max_seq_length,
                short_seq_prob=short_seq_prob, dupe_factor=dupe_factor)
    # The tokens go to local memory-mapped files, whatever the output's file system.
    tmp = tempfile.mkdtemp(prefix="create_pretraining_data-")
    pool = None
    try:
        prefixes = [os.path.join(tmp, f"input{i:05d}") for i in range(len(files))]
        if num_workers > 1 and len(files) > 1:
            pool = multiprocessing.get_context("spawn").Pool(min(num_workers, len(files)))
        run = pool.map if pool else lambda fn, jobs: [fn(j) for j in jobs]
        sizes = run(_tokenize_file, [(f, p, vocab_file) for f, p in zip(files, prefixes)])
        _check_pairs(files, sizes)
        parts = run(_process_file, [(i, f"{output_file}.part{i:05d}", prefixes, opts) for i in range(len(files))])
    finally:
        if pool:
            pool.close()
            pool.join()
        shutil.rmtree(tmp, ignore_errors=True)

    # Deal the records round-robin into the output shards, in input order.
    outputs = [shard_name(output_file, i, num_output_shards) for i in range(num_output_shards)]
    writers = [tf.io.TFRecordWriter(o + ".tmp") for o in outputs]
    k = 0
    for part, _, _ in parts:
        for record in tf.data.TFRecordDataset(part).as_numpy_iterator():
            writers[k % num_output_shards].write(record)
            k += 1
        tf.io.gfile.remove(part)
    for w, o in zip(writers, outputs):
        w.close()
        tf.io.gfile.rename(o + ".tmp", o, overwrite=True)
    if k == 0:
        raise ValueError(f"No instance was created from {', '.join(files)}: are the documents empty?")
    random_next = sum(r for _, _, r in parts) / k
    records_info.write(
        output_file, vocab=vocab, shard_files=outputs,
        instances_per_file=[k // num_output_shards + (i < k % num_output_shards) for i in range(num_output_shards)],
        input_files=files, num_documents=sum(d for d, _ in sizes), random_next_fraction=random_next,
        max_seq_length=max_seq_length, max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob, short_seq_prob=short_seq_prob, dupe_factor=dupe_factor,
        random_seed=random_seed, tool_version=TOOL_VERSION)
    print(f"Wrote {k} instances ({random_next:.1%} with a random next sentence) to {num_output_shards} "
          f"shard(s): {outputs[0]} ...; their facts: {records_info.info_path(output_file)}")
    return outputs


def _check_pairs(files, sizes):
    """Errors naming the input when it cannot give one sentence pair; a warning when every label would be 0."""
    documents = sum(d for d, _ in sizes)
    sentences = sum(s for _, s in sizes)
    if sentences == 0:
        raise ValueError(f"--input_files: no text in {', '.join(files)} (one sentence per line, a blank line "
                         "between documents).")
    if sentences == 1:
        only = files[next(i for i, (_, s) in enumerate(sizes) if s)]
        others = " and the other inputs none" if len(files) > 1 else ""
        raise ValueError(f"--input_files: {only} has one sentence{others}; an instance needs two (a sentence A "
                         "and a next or random sentence B).")
    if documents == 1:
        print(f"warning: {', '.join(files)} hold(s) a single document: every next-sentence label will be 0 "
              "(B follows A), as a random B must come from another document; separate documents by a blank line.")


def main(argv):
    del argv
    create(FLAGS.input_files, FLAGS.vocab_file, FLAGS.output_file, FLAGS.num_output_shards, FLAGS.max_seq_length,
           FLAGS.max_predictions_per_seq, FLAGS.masked_lm_prob, FLAGS.dupe_factor, FLAGS.short_seq_prob,
           FLAGS.random_seed, FLAGS.num_workers)


if __name__ == "__main__":
    from official.common import cli

    define_flags()
    flags.mark_flags_as_required(["input_files", "vocab_file", "output_file"])
    app.run(lambda argv: cli.run_reporting_input_errors(main, argv))
