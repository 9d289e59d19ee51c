"""tf.data pipelines for pretraining: BERT TFRecords, or raw text with dynamic masking.

Both yield `(inputs, labels, sample_weights)` for `model.fit` of
`official.nlp.modeling.Pretrainer`:

    inputs  = {input_word_ids, input_mask, input_type_ids, masked_lm_positions}   int32
    labels  = {"mlm": masked_lm_ids [batch, P], "nsp": next_sentence_labels [batch]}
    weights = {"mlm": masked_lm_weights [batch, P], "nsp": ones [batch]}

Features are int32 (TPUs support no int64 on device) and batches have a
static shape (`drop_remainder=True`), as TPUs require. Under a
`tf.distribute` strategy pass the `tf.distribute.InputContext`: files are
sharded per input pipeline (per worker), and the batch is the per-replica one.
"""

import random

import numpy as np
import tensorflow as tf

from official.nlp.data import instances as inst
from official.nlp.data.files import check_tfrecord_files, expand_globs, load_prepared_tfds


def feature_spec(max_seq_length, max_predictions_per_seq):
    """The record layout (the Model Garden's BERT pretraining names and dtypes)."""
    s, p = max_seq_length, max_predictions_per_seq
    return {
        "input_word_ids": tf.io.FixedLenFeature([s], tf.int64),
        "input_mask": tf.io.FixedLenFeature([s], tf.int64),
        "input_type_ids": tf.io.FixedLenFeature([s], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([p], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([p], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([p], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }


def check_record_shapes(path, max_seq_length, max_predictions_per_seq):
    """Raises a ValueError naming the file and feature if its first record does not match the flags."""
    spec = feature_spec(max_seq_length, max_predictions_per_seq)
    for raw in tf.data.TFRecordDataset(path).take(1):
        example = tf.train.Example.FromString(raw.numpy())
        for name, feature in spec.items():
            if name not in example.features.feature:
                raise ValueError(f"{path}: records lack the feature {name!r} (expected {sorted(spec)}).")
            f = example.features.feature[name]
            n = len(f.float_list.value) if feature.dtype == tf.float32 else len(f.int64_list.value)
            if n != feature.shape[0]:
                flag = "max_seq_length" if feature.shape[0] == max_seq_length and name.startswith("input") else (
                    "max_predictions_per_seq" if name.startswith("masked") else "layout")
                raise ValueError(
                    f"{path}: feature {name!r} has length {n} but --{flag} gives {feature.shape[0]}; "
                    "pass the --max_seq_length/--max_predictions_per_seq the records were written with."
                )


def to_model_inputs(features, vocab_size=None):
    features = {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in features.items()}
    if vocab_size is not None:
        ids = features["input_word_ids"]
        check = tf.debugging.assert_less(
            ids, vocab_size, message="input_word_ids hold a token id outside the vocabulary (--vocab_file)"
        )
        with tf.control_dependencies([check]):
            features["input_word_ids"] = tf.identity(ids)
    inputs = {k: features[k] for k in ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions")}
    nsp = tf.reshape(features["next_sentence_labels"], [-1])
    labels = {"mlm": features["masked_lm_ids"], "nsp": nsp}
    # Keras wants a weight for every output once one has weights.
    return inputs, labels, {"mlm": features["masked_lm_weights"], "nsp": tf.ones_like(nsp, tf.float32)}


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
            up front (clear errors naming the file).
    """
    files = expand_globs(file_patterns)
    if validate:
        check_tfrecord_files(files)
        for f in files:
            check_record_shapes(f, max_seq_length, max_predictions_per_seq)
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
    spec = feature_spec(max_seq_length, max_predictions_per_seq)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda r: to_model_inputs(tf.io.parse_example(r, spec), vocab_size),
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
    """

    def __init__(self, documents, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob=0.15,
                 short_seq_prob=0.1, seed=0, shard=(0, 1)):
        inst.check_lengths(max_seq_length, max_predictions_per_seq, masked_lm_prob)
        if len(documents) < 2:
            raise ValueError("Dynamic masking needs at least 2 documents (next-sentence pairs).")
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
            raise ValueError(f"Input pipeline {shard[0]} of {shard[1]} gets none of the {len(documents)} documents: "
                             "give the text input at least one document per worker.")

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


def load_documents(text_files=None, tfds_name=None, tfds_data_dir=None, tfds_split="train", tfds_text_key="text",
                   max_documents=None):
    """Documents (lists of sentences) from text files, or from a TFDS text dataset.

    TFDS examples are documents; their text is split into sentences at '.',
    '!' or '?' followed by whitespace. TFDS is imported only when asked for,
    and `download=False`: prepare the dataset beforehand (`tfds build`).
    """
    if text_files:
        docs = list(inst.read_documents(expand_globs(text_files, "--text_files")))
    elif tfds_name:
        import re

        ds, info = load_prepared_tfds(tfds_name, tfds_split, tfds_data_dir)
        if tfds_text_key not in info.features:
            raise ValueError(f"{tfds_name} has no feature {tfds_text_key!r} (--tfds_text_key); its features are "
                             f"{sorted(info.features)}.")
        docs = []
        for example in ds.as_numpy_iterator():
            text = example[tfds_text_key].decode("utf-8")
            sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
            if sentences:
                docs.append(sentences)
            if max_documents and len(docs) >= max_documents:
                break
    else:
        raise ValueError("Give --text_files or --tfds_name for raw-text pretraining.")
    if max_documents:
        docs = docs[:max_documents]
    if not docs:
        raise ValueError("The text input holds no document.")
    return docs


def text_dataset(documents, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob=0.15,
                 short_seq_prob=0.1, seed=0, input_context=None):
    """Pretraining batches from raw text with dynamic masking (see `InstanceStream`)."""
    tokenized = inst.tokenize_documents(documents, vocab.tokenizer(), len(vocab))
    shard = (0, 1)
    if input_context is not None and input_context.num_input_pipelines > 1:
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines)
    stream = InstanceStream(tokenized, vocab, batch_size, max_seq_length, max_predictions_per_seq, masked_lm_prob,
                            short_seq_prob, seed, shard)
    spec = feature_spec(max_seq_length, max_predictions_per_seq)
    signature = {k: tf.TensorSpec((batch_size,) + tuple(v.shape), v.dtype) for k, v in spec.items()}
    ds = tf.data.Dataset.from_generator(stream, output_signature=signature)
    ds = ds.map(lambda f: to_model_inputs(f, len(vocab)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def numpy_batch(dataset):
    """The first batch of a dataset, as numpy (for evaluation and examples)."""
    return tf.nest.map_structure(np.asarray, next(iter(dataset)))
