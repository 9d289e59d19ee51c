"""tf.data pipelines for pretraining: BERT TFRecords, or raw text with dynamic masking.

Both yield batches of the records' features (`official.nlp.data.records`:
`input_word_ids`, ..., `next_sentence_labels`, a dict of `[batch, length]`
tensors); `official.nlp.modeling.pretraining_targets` turns them into the
Pretrainer's `(inputs, labels, sample_weights)`, and `Pretrainer.fit` accepts
them as they are.

Features are int32 (TPUs support no int64 on device) and batches have a
static shape (`drop_remainder=True`), as TPUs require. Under a
`tf.distribute` strategy pass the `tf.distribute.InputContext`: files are
sharded per input pipeline (per worker), and the batch is the per-replica one.
"""

import random

import numpy as np
import tensorflow as tf

from official.nlp.data import instances as inst
from official.nlp.data import records, records_info
from official.nlp.data.files import check_tfrecord_files, expand_globs, load_prepared_tfds


def _check_ids(features, vocab_size):
    """The int32 features, with an in-graph check that every token id is below `vocab_size` (if given)."""
    features = records.to_int32(features)
    if vocab_size is not None:
        ids = features["input_word_ids"]
        check = tf.debugging.assert_less(
            ids, vocab_size, message="input_word_ids hold a token id outside the vocabulary (--vocab_file)"
        )
        with tf.control_dependencies([check]):
            features["input_word_ids"] = tf.identity(ids)
    return features


def tfrecord_dataset(file_patterns, batch_size, max_seq_length, max_predictions_per_seq, is_training=True,
                     seed=None, input_context=None, vocab_size=None, validate=True, shuffle_buffer=10000):
    """Pretraining batches from BERT-layout TFRecords.

    Args:
        file_patterns: comma-separated globs or a list of them (local or gs://).
        batch_size: the per-replica batch size.
        is_training: shuffle and repeat forever.
        seed: makes file order and shuffling deterministic.
        input_context: a `tf.distribute.InputContext`: files are sharded per
            input pipeline.
        vocab_size: if given, token ids are checked against it.
        validate: check the files' integrity and their first record's shapes
            up front (clear errors naming the file), and, for records with
            facts beside them (`records_info`), the lengths and the
            vocabulary's size against them.
    """
    # Leaves out the facts files (`records_info`) that a glob such as `train*` matches beside the records.
    files = records_info.expand_record_globs(file_patterns)
    if validate:
        info = records_info.find(files)
        if info is not None:
            records_info.check(info, None, max_seq_length, max_predictions_per_seq)
            # The content hash needs the vocabulary file (the trainer checks it); the size is the one fact here.
            if vocab_size is not None and vocab_size != info["vocab_size"]:
                raise ValueError(f"The records were written with a vocabulary of {info['vocab_size']} tokens "
                                 f"({info['source_vocab_file']}), not {vocab_size}: pass "
                                 f"--vocab_file={info['vocab_file']}.")
        check_tfrecord_files(files)
        for f in files:
            records.check_first_record(f, max_seq_length, max_predictions_per_seq)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            raise ValueError(
                f"{len(files)} input files cannot be sharded over {input_context.num_input_pipelines} workers; "
                "write at least one shard per worker (--num_output_shards)."
            )
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if is_training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(8, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    if is_training:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda r: _check_ids(records.parse(r, max_seq_length, max_predictions_per_seq), vocab_size),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    return ds.prefetch(tf.data.AUTOTUNE)


class InstanceStream:
    """Endless batches of BERT instances from tokenized documents, masked afresh (dynamic masking).

    Exact BERT next-sentence pairs (random B from another document) and the
    same packing and 80/10/10 masking as the TFRecord writer
    (`official.nlp.data.instances`), but the masks are drawn when a batch is
    produced, so every pass over the corpus sees new ones. Yields whole
    batches (dicts of arrays `[batch_size, ...]` in the record layout): one
    `tf.data` generator call per batch rather than per sequence, and masking
    vectorised over the batch. Deterministic for a given `seed` and `shard`.

    Each input pipeline (`shard`) packs its own share of the documents, but
    draws the random B from all of them, so the share of random pairs does not
    depend on the number of workers.

    `source` names the input in errors (e.g. "--eval_text_files=held.txt").
    """

    def __init__(self, documents, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob=0.15,
                 short_seq_prob=0.1, seed=0, shard=(0, 1), source="the text input"):
        inst.check_lengths(max_seq_length, max_predictions_per_seq, masked_lm_prob)
        if len(documents) < 2:
            raise ValueError(f"{source} gives {len(documents)} document(s) with tokens; next-sentence pairs draw "
                             "B from another document, so give at least 2 (a blank line between documents).")
        if batch_size < 1:
            raise ValueError(f"The batch size must be >= 1. Received: {batch_size}")
        self.documents = documents
        self.vocab = vocab
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.short_seq_prob = short_seq_prob
        self.config = inst.MaskingConfig(len(vocab), vocab.cls_id, vocab.sep_id, vocab.mask_id, masked_lm_prob,
                                         max_predictions_per_seq)
        self.seed = seed
        self.shard = shard
        if len(documents) <= shard[0]:
            raise ValueError(f"Input pipeline {shard[0]} of {shard[1]} gets none of the {len(documents)} documents "
                             f"of {source}: give at least one document per worker.")

    def __call__(self):
        rng = random.Random(self.seed * 1_000_003 + self.shard[0])  # packing and pairing
        mask_rng = np.random.default_rng([self.seed, self.shard[0]])  # masking
        order = list(range(len(self.documents)))[self.shard[0]::self.shard[1]]
        pending = []
        while True:
            rng.shuffle(order)
            for d in order:
                pending.extend(inst.instances_from_document(self.documents, d, self.max_seq_length,
                                                            self.short_seq_prob, rng, self.vocab.cls_id,
                                                            self.vocab.sep_id))
                while len(pending) >= self.batch_size:
                    batch, pending = pending[: self.batch_size], pending[self.batch_size:]
                    yield inst.mask_batch(batch, self.config, self.max_seq_length, mask_rng)


class Documents(list):
    """A list of documents (lists of sentences) that remembers where it came from, for error messages."""

    source = "the text input"


def _describe(flag, files):
    shown = ",".join(files[:3]) + (f",... ({len(files)} files)" if len(files) > 3 else "")
    return f"{flag}={shown}"


def load_documents(text_files=None, tfds_name=None, tfds_data_dir=None, tfds_split="train", tfds_text_key="text",
                   max_documents=None, flag_name=None):
    """Documents (lists of sentences) from text files, or from a TFDS text dataset, for next-sentence pairs.

    TFDS examples are documents; their text is split into sentences at '.',
    '!' or '?' followed by whitespace. TFDS is imported only when asked for,
    and `download=False`: prepare the dataset beforehand (`tfds build`).

    Args:
        text_files: files or globs (a list or comma-separated), one sentence
            per line, a blank line between documents.
        tfds_name, tfds_data_dir, tfds_split, tfds_text_key: a prepared TFDS
            text dataset, used when `text_files` is not given.
        max_documents: keep only the first N documents (default: all).
        flag_name: the flag that gave the input, named in errors (default
            "--text_files" or "--tfds_name"; e.g. "--eval_text_files").

    Returns:
        A `Documents` list whose `source` names the flag and files (pass it to
        `text_dataset`, whose errors then name them too).

    Raises:
        ValueError: no input, a glob that matches nothing, or fewer than 2
            documents (a random next sentence comes from another document);
            the message names the flag and the files.
    """
    if text_files:
        flag = flag_name or "--text_files"
        files = expand_globs(text_files, flag)
        source = _describe(flag, files)
        docs = Documents()
        for path in files:
            before = len(docs)
            docs.extend(inst.read_documents([path]))
            if len(docs) - before == 1 and len(docs[-1]) == 1 and len(files) == 1:
                raise ValueError(f"{flag}: {path} has one sentence; next-sentence pairs need at least 2 documents "
                                 "(one sentence per line, a blank line between documents).")
    elif tfds_name:
        import re

        flag = flag_name or "--tfds_name"
        source = f"{flag}={tfds_name} (split {tfds_split})"
        ds, info = load_prepared_tfds(tfds_name, tfds_split, tfds_data_dir)
        if tfds_text_key not in info.features:
            raise ValueError(f"{tfds_name} has no feature {tfds_text_key!r} (--tfds_text_key); its features are "
                             f"{sorted(info.features)}.")
        docs = Documents()
        for example in ds.as_numpy_iterator():
            text = example[tfds_text_key].decode("utf-8")
            sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
            if sentences:
                docs.append(sentences)
            if max_documents and len(docs) >= max_documents:
                break
    else:
        raise ValueError(f"Give {flag_name or '--text_files or --tfds_name'} for raw-text pretraining.")
    if max_documents:
        del docs[max_documents:]
    docs.source = source
    if not docs:
        raise ValueError(f"{source} holds no document (one sentence per line, a blank line between documents).")
    if len(docs) == 1:
        raise ValueError(f"{source} holds one document ({len(docs[0])} sentences); next-sentence pairs draw B from "
                         "another document, so give at least 2 (a blank line between documents).")
    return docs


def text_dataset(documents, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob=0.15,
                 short_seq_prob=0.1, seed=0, input_context=None):
    """Pretraining batches from raw text with dynamic masking (see `InstanceStream`).

    Errors name `documents.source` when `documents` comes from `load_documents`.
    """
    tokenized = inst.tokenize_documents(documents, vocab.tokenizer(), len(vocab))
    shard = (0, 1)
    if input_context is not None and input_context.num_input_pipelines > 1:
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines)
    stream = InstanceStream(tokenized, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob,
                            short_seq_prob, seed, shard, getattr(documents, "source", "the text input"))
    spec = records.feature_spec(max_seq_length, max_predictions_per_seq)
    signature = {k: tf.TensorSpec((batch_size,) + tuple(v.shape), v.dtype) for k, v in spec.items()}
    ds = tf.data.Dataset.from_generator(stream, output_signature=signature)
    ds = ds.map(lambda f: _check_ids(f, len(vocab)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def numpy_batch(dataset):
    """The first batch of a dataset, as numpy (for evaluation and examples)."""
    return tf.nest.map_structure(np.asarray, next(iter(dataset)))
