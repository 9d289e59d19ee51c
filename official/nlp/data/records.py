"""The layout of BERT pretraining TFRecords, in one place: names, dtypes, lengths, writing and reading.

One `tf.train.Example` per instance, the Model Garden's BERT pretraining
layout (so its loaders read these records and ours read its records):

    input_word_ids        int64  [max_seq_length]           token ids, [MASK]s included, 0-padded
    input_mask            int64  [max_seq_length]           1 for a real token, 0 for padding
    input_type_ids        int64  [max_seq_length]           0 for segment A (and [CLS]), 1 for B
    masked_lm_positions   int64  [max_predictions_per_seq]  masked positions, increasing, 0-padded
    masked_lm_ids         int64  [max_predictions_per_seq]  the original ids at those positions
    masked_lm_weights     float32[max_predictions_per_seq]  1.0 for a used slot, 0.0 for padding
    next_sentence_labels  int64  [1]                        1 = segment B is a random one

`parse` returns int32 (TPUs have no int64 on device) beside the float32
weights. Which features feed which head is the model's business
(`official.nlp.modeling.pretraining_targets`), not this module's.
"""

import tensorflow as tf

# name -> (dtype in the file, which length: "seq", "pred" or 1)
FEATURES = {
    "input_word_ids": (tf.int64, "seq"),
    "input_mask": (tf.int64, "seq"),
    "input_type_ids": (tf.int64, "seq"),
    "masked_lm_positions": (tf.int64, "pred"),
    "masked_lm_ids": (tf.int64, "pred"),
    "masked_lm_weights": (tf.float32, "pred"),
    "next_sentence_labels": (tf.int64, 1),
}
# The flag that sets each length, named in errors.
LENGTH_FLAGS = {"seq": "--max_seq_length", "pred": "--max_predictions_per_seq"}


def lengths(max_seq_length, max_predictions_per_seq):
    """{feature name: its length per record}."""
    sizes = {"seq": max_seq_length, "pred": max_predictions_per_seq, 1: 1}
    return {name: sizes[kind] for name, (_, kind) in FEATURES.items()}


def feature_spec(max_seq_length, max_predictions_per_seq):
    """The `tf.io.parse_example` spec of one record (file dtypes: int64 and float32)."""
    n = lengths(max_seq_length, max_predictions_per_seq)
    return {name: tf.io.FixedLenFeature([n[name]], dtype) for name, (dtype, _) in FEATURES.items()}


def serialize(features):
    """One instance (a dict of 1-D NumPy arrays named as `FEATURES`) -> the bytes of a `tf.train.Example`.

    Floats go to a float_list, integers to an int64_list. The feature map is
    written sorted (`deterministic=True`): byte-identical records in every
    process, so a record set does not depend on the worker count.

    Raises:
        ValueError: a feature is missing or unknown.
    """
    if set(features) != set(FEATURES):
        raise ValueError(f"A record needs exactly the features {sorted(FEATURES)}; got {sorted(features)}.")

    def feature(values):
        if values.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))

    example = tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))
    return example.SerializeToString(deterministic=True)


def to_int32(features):
    """Casts the int64 features to int32 (the float32 weights stay)."""
    return {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in features.items()}


def parse(serialized, max_seq_length, max_predictions_per_seq):
    """A batch of serialized records (string `[batch]`) -> a dict of int32/float32 `[batch, length]` tensors."""
    return to_int32(tf.io.parse_example(serialized, feature_spec(max_seq_length, max_predictions_per_seq)))


def check_first_record(path, max_seq_length, max_predictions_per_seq):
    """Raises a ValueError naming the file, the feature and the flag if the file's first record does not fit.

    Reads one record, so a wrong `--max_seq_length` or
    `--max_predictions_per_seq` is reported before training rather than as a
    parse error inside the input pipeline.
    """
    n = lengths(max_seq_length, max_predictions_per_seq)
    for raw in tf.data.TFRecordDataset(path).take(1):
        example = tf.train.Example.FromString(raw.numpy())
        for name, (dtype, kind) in FEATURES.items():
            if name not in example.features.feature:
                raise ValueError(f"{path}: records lack the feature {name!r} (expected {sorted(FEATURES)}).")
            f = example.features.feature[name]
            got = len(f.float_list.value) if dtype == tf.float32 else len(f.int64_list.value)
            if got != n[name]:
                flag = LENGTH_FLAGS.get(kind, "layout")
                raise ValueError(
                    f"{path}: feature {name!r} has length {got} but {flag} gives {n[name]}; "
                    "pass the --max_seq_length/--max_predictions_per_seq the records were written with."
                )
