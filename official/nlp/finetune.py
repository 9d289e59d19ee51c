"""Fine-tunes a pretrained BERT/SIBERT encoder on a sentence or sentence-pair task: local files or TFDS.

    # Local files (GLUE's TSV layout, CSV or JSON Lines): the shipped example task.
    python -m official.nlp.finetune --init_model_dir=runs/demo \
        --train_file=official/nlp/corpus/finetune/train.tsv --eval_file=official/nlp/corpus/finetune/dev.tsv \
        --text_fields=sentence --label_field=label --model_dir=runs/introduces

    # GLUE MNLI as distributed (train.tsv, dev_matched.tsv): premise and hypothesis, three labels.
    python -m official.nlp.finetune --init_model_dir=runs/demo --train_file=MNLI/train.tsv \
        --eval_file=MNLI/dev_matched.tsv --text_fields=sentence1,sentence2 --label_field=gold_label \
        --model_dir=runs/mnli

    # A prepared TFDS dataset (`tfds build glue/mnli` beforehand; nothing is downloaded).
    python -m official.nlp.finetune --init_model_dir=runs/demo --tfds_name=glue/mnli \
        --tfds_data_dir=~/tensorflow_datasets --eval_split=validation_matched --model_dir=runs/mnli

The text columns become segments A and B: `[CLS] A [SEP] B [SEP]`, tokenized
with the pretraining run's vocabulary. The encoder (its type, size and
vocabulary read from `--init_model_dir/flags.json`) starts from that run's
latest checkpoint; a classifier on the first token's output is trained with
it. SIBERT is fine-tuned with Lamb (the paper: Adam is too sensitive to the
scale of a scale-invariant encoder), BERT with AdamW; both with linear warm-up
and decay. Metrics on the evaluation data: accuracy, F1 and Matthews
correlation (two classes), Pearson and Spearman correlations (regression,
`--regression`). Results go to `--model_dir/eval_results.json`.
"""

import json
import os

import numpy as np
from absl import app, flags

GLUE_METRICS = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "correlation"}


def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_string("init_model_dir", None, "Pretraining run to start from (its flags.json gives --model, "
                        "--config and --vocab_file). None: a randomly initialised encoder.")
    flags.DEFINE_enum("model", None, ["sibert", "bert"], "Encoder type (default: the run's, else sibert).")
    flags.DEFINE_enum("config", None, ["tiny", "mini", "small", "medium", "base", "large"],
                      "Size preset (default: the run's, else tiny).")
    flags.DEFINE_string("vocab_file", None, "Vocabulary (default: the run's, else the shipped one).")
    flags.DEFINE_string("train_file", None, "Local training table (.tsv in GLUE's layout, .csv, .jsonl).")
    flags.DEFINE_string("eval_file", None, "Local evaluation table, same columns as --train_file.")
    flags.DEFINE_enum("file_format", None, ["tsv", "csv", "jsonl"], "Format of the files (default: extension).")
    flags.DEFINE_list("text_fields", ["sentence"], "One or two text columns (names, or 0-based numbers for files "
                      "without a header, such as GLUE's CoLA).")
    flags.DEFINE_string("label_field", "label", "The label column.")
    flags.DEFINE_list("labels", None, "Class names in id order (default: the sorted labels of --train_file).")
    flags.DEFINE_bool("regression", False, "Labels are numbers (e.g. STS-B's score): mean squared error.")
    flags.DEFINE_string("tfds_name", None, "A prepared TFDS GLUE-style dataset, instead of local files.")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("train_split", "train", "TFDS training split.")
    flags.DEFINE_string("eval_split", "validation_matched", "TFDS evaluation split.")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length.")
    flags.DEFINE_integer("batch_size", 32, "Batch size.")
    flags.DEFINE_integer("epochs", 3, "Epochs.")
    flags.DEFINE_integer("max_train_examples", 0, "Use at most this many training examples (0 = all).")
    flags.DEFINE_float("learning_rate", 2e-4, "Peak learning rate.")
    flags.DEFINE_float("warmup_fraction", 0.1, "Fraction of the steps spent warming up.")
    flags.DEFINE_integer("seed", 0, "Random seed (classifier initialisation, data order).")
    flags.DEFINE_string("model_dir", None, "Where the results go.")
    flags.DEFINE_integer("verbose", 2, "Keras fit verbosity.")


DEFAULTS = dict(model="sibert", config="tiny", vocab_file="official/nlp/corpus/vocab.txt")


def _text_keys(info):
    import tensorflow_datasets as tfds

    keys = [k for k, f in info.features.items() if isinstance(f, tfds.features.Text) or
            (getattr(f, "dtype", None) is not None and str(f.dtype) == "<dtype: 'string'>")]
    if not 1 <= len(keys) <= 2:
        raise ValueError(f"Expected one or two text features in {info.name}, found {keys}.")
    return keys


def encode_fn(vocab, max_seq_length, num_segments, regression):
    """A function mapping a batch `(texts: tuple of string tensors, label)` to the encoder's inputs and label."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    tokenizer = vocab.tokenizer()

    def encode(texts, label):
        segments = [tokenizer.tokenize(t).merge_dims(-2, -1) for t in texts]
        trimmed = tf_text.WaterfallTrimmer(max_seq_length - 1 - num_segments).trim(segments)
        ids, types = tf_text.combine_segments(trimmed, start_of_sequence_id=vocab.cls_id,
                                              end_of_segment_id=vocab.sep_id)
        ids, mask = tf_text.pad_model_inputs(ids, max_seq_length)
        types, _ = tf_text.pad_model_inputs(types, max_seq_length)
        inputs = {"input_word_ids": tf.cast(ids, tf.int32), "input_mask": tf.cast(mask, tf.int32),
                  "input_type_ids": tf.cast(types, tf.int32)}
        return inputs, tf.cast(label, tf.float32 if regression else tf.int32)

    return encode


def _batched(ds, encode, batch_size, shuffle, seed, max_examples):
    import tensorflow as tf

    if max_examples:
        ds = ds.take(max_examples)
    if shuffle:
        ds = ds.shuffle(10000, seed=seed)
    ds = ds.batch(batch_size, drop_remainder=False).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_tfds_task(name, data_dir, split, vocab, max_seq_length, batch_size, shuffle, max_examples=0, seed=0):
    """A batched TFDS split of (inputs, label), and the task's (num_classes or None for regression, text keys)."""
    from official.nlp.data.files import load_prepared_tfds

    ds, info = load_prepared_tfds(name, split, data_dir)
    keys = _text_keys(info)
    num_classes = getattr(info.features["label"], "num_classes", None)
    ds = ds.map(lambda e: (tuple(e[k] for k in keys), e["label"]))
    encode = encode_fn(vocab, max_seq_length, len(keys), regression=num_classes is None)
    return _batched(ds, encode, batch_size, shuffle, seed, max_examples), num_classes, keys


def load_file_task(path, f, vocab, shuffle, labels=None):
    """A batched local table of (inputs, label) (`official.nlp.data.labelled_text`), and its class names."""
    import tensorflow as tf

    from official.nlp.data import labelled_text

    texts, y, labels = labelled_text.load_examples(path, f.text_fields, f.label_field, f.file_format,
                                                   labels=labels, regression=f.regression)
    ds = tf.data.Dataset.from_tensor_slices((tuple(texts), y))
    encode = encode_fn(vocab, f.max_seq_length, len(texts), f.regression)
    return _batched(ds, encode, f.batch_size, shuffle, f.seed, f.max_train_examples if shuffle else 0), labels


def build_classifier(encoder, num_classes, dropout=0.1):
    """The encoder's first-token output -> dropout -> Dense (classes, or 1 for regression)."""
    import keras

    names = ("input_word_ids", "input_mask", "input_type_ids")
    inputs = {k: keras.Input((None,), dtype="int32", name=k) for k in names}
    first = encoder(inputs)[:, 0, :]
    logits = keras.layers.Dense(num_classes or 1, name="classifier")(keras.layers.Dropout(dropout)(first))
    return keras.Model(inputs, logits, name="classifier_model")


def metrics_from_predictions(predictions, labels, num_classes):
    """Accuracy, F1 (binary), MCC, Pearson/Spearman (regression), in NumPy."""
    if num_classes is None:
        p, y = predictions.reshape(-1), labels.reshape(-1)

        def ranks(a):
            r = np.empty(len(a))
            r[np.argsort(a, kind="stable")] = np.arange(len(a))
            return r

        return {"pearson": float(np.corrcoef(p, y)[0, 1]), "spearman": float(np.corrcoef(ranks(p), ranks(y))[0, 1])}
    pred = predictions.argmax(-1)
    out = {"accuracy": float((pred == labels).mean())}
    if num_classes == 2:
        tp = float(((pred == 1) & (labels == 1)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        tn = float(((pred == 0) & (labels == 0)).sum())
        out["f1"] = 2 * tp / max(2 * tp + fp + fn, 1.0)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        out["mcc"] = float((tp * tn - fp * fn) / denom) if denom > 0 else 0.0
    return out


def resolve_encoder(f):
    """(model, config, vocab_file) from the flags, filling what is unset from the pretraining run's flags.json.

    Raises:
        ValueError: `--init_model_dir` has no checkpoint, or a flag given explicitly contradicts the run.
    """
    import tensorflow as tf

    chosen = {k: getattr(f, k) for k in DEFAULTS}
    if f.init_model_dir:
        if tf.train.latest_checkpoint(f.init_model_dir) is None:
            raise ValueError(f"--init_model_dir={f.init_model_dir} holds no checkpoint.")
        flagfile = os.path.join(f.init_model_dir, "flags.json")
        if tf.io.gfile.exists(flagfile):
            with tf.io.gfile.GFile(flagfile) as fh:
                saved = json.load(fh)
            for name in DEFAULTS:
                if chosen[name] is None:
                    chosen[name] = saved[name]
                elif name != "vocab_file" and chosen[name] != saved[name]:
                    raise ValueError(f"--{name}={chosen[name]} contradicts the run in --init_model_dir="
                                     f"{f.init_model_dir}, which has --{name}={saved[name]}: leave --{name} unset.")
    return tuple(chosen[k] if chosen[k] is not None else DEFAULTS[k] for k in ("model", "config", "vocab_file"))


def validate_flags(f):
    """Raises a ValueError naming the flag for a missing, inconsistent or out-of-range value."""
    if not f.model_dir:
        raise ValueError("--model_dir is required.")
    if bool(f.tfds_name) == bool(f.train_file):
        raise ValueError("Give exactly one of --train_file (local files) or --tfds_name.")
    if f.train_file and not f.eval_file:
        raise ValueError("--train_file needs --eval_file (the data to report metrics on).")
    for name in ("max_seq_length", "batch_size", "epochs"):
        if getattr(f, name) < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {getattr(f, name)}")
    if f.max_seq_length < 5:
        raise ValueError(f"--max_seq_length must be >= 5 ([CLS], [SEP]s and text). Received: {f.max_seq_length}")
    if not f.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0. Received: {f.learning_rate}")
    if not 0 <= f.warmup_fraction < 1:
        raise ValueError(f"--warmup_fraction must be in [0, 1). Received: {f.warmup_fraction}")


def run(f):
    """Fine-tunes with the flag values `f`; returns the evaluation results (also written to eval_results.json)."""
    import keras
    import tensorflow as tf

    import keras_si
    from official.nlp import modeling
    from official.nlp.data.vocab import Vocab

    validate_flags(f)
    model_type, config_name, vocab_file = resolve_encoder(f)
    vocab = Vocab(vocab_file)
    keras.utils.set_random_seed(f.seed)
    if f.train_file:
        train, labels = load_file_task(f.train_file, f, vocab, shuffle=True,
                                       labels=list(f.labels) if f.labels else None)
        evaluation, _ = load_file_task(f.eval_file, f, vocab, shuffle=False, labels=labels)
        num_classes = None if f.regression else len(labels)
        task, eval_name, keys = f.train_file, f.eval_file, list(f.text_fields)
    else:
        train, num_classes, keys = load_tfds_task(f.tfds_name, f.tfds_data_dir, f.train_split, vocab,
                                                  f.max_seq_length, f.batch_size, shuffle=True,
                                                  max_examples=f.max_train_examples, seed=f.seed)
        evaluation, _, _ = load_tfds_task(f.tfds_name, f.tfds_data_dir, f.eval_split, vocab, f.max_seq_length,
                                          f.batch_size, shuffle=False)
        labels, task, eval_name = None, f.tfds_name, f.eval_split

    config = modeling.get_config(config_name, vocab_size=len(vocab),
                                 max_position_embeddings=max(512, f.max_seq_length))
    pretrainer = modeling.Pretrainer(model_type, config)
    pretrainer(modeling.dummy_features(2, f.max_seq_length, 2, len(vocab)))
    if f.init_model_dir:
        latest = tf.train.latest_checkpoint(f.init_model_dir)
        # Pretraining checkpoints are flat lists of the pretrainer's variables (official.common.checkpointing).
        status = tf.train.Checkpoint(model_variables=list(pretrainer.variables)).restore(latest)
        status.expect_partial()  # the optimizer state in the file is not needed
        try:
            status.assert_existing_objects_matched()  # every encoder and head variable was found
        except AssertionError as e:
            raise ValueError(f"--init_model_dir={f.init_model_dir}: its checkpoint does not fit a {model_type}-"
                             f"{config_name} encoder with a {len(vocab)}-token vocabulary ({e}).") from None
        print(f"Encoder ({model_type}, {config_name}) initialised from {latest}")
    model = build_classifier(pretrainer.encoder, num_classes)

    steps = max(1, int(train.cardinality().numpy())) * f.epochs
    lr = keras_si.schedules.LinearWarmup(keras.optimizers.schedules.PolynomialDecay(f.learning_rate, steps, 0.0),
                                         warmup_steps=int(f.warmup_fraction * steps))
    optimizer = keras.optimizers.Lamb(lr) if model_type == "sibert" else keras.optimizers.AdamW(lr, weight_decay=0.01)
    if num_classes is None:
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(train, epochs=f.epochs, verbose=f.verbose)

    predictions, targets = [], []
    for x, y in evaluation:
        predictions.append(np.asarray(model(x, training=False)))
        targets.append(np.asarray(y))
    results = metrics_from_predictions(np.concatenate(predictions), np.concatenate(targets), num_classes)
    results.update(task=task, eval=eval_name, text_features=keys, examples=int(sum(len(t) for t in targets)))
    if labels is not None:
        results["labels"] = labels
    tf.io.gfile.makedirs(f.model_dir)
    with tf.io.gfile.GFile(os.path.join(f.model_dir, "eval_results.json"), "w") as out:
        json.dump(results, out, indent=2)
    print(json.dumps(results))
    return results


def main(argv):
    del argv
    from official.common.cli import run_reporting_input_errors

    run_reporting_input_errors(run, flags.FLAGS)


if __name__ == "__main__":
    define_flags()
    app.run(main)
