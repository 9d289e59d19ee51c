"""Fine-tunes a pretrained BERT/SIBERT encoder on a GLUE-style sentence(-pair) task from TFDS.

    python -m official.nlp.finetune --model=sibert --config=tiny --init_model_dir=runs/demo \
        --tfds_name=glue/mnli --tfds_data_dir=~/tensorflow_datasets --eval_split=validation_matched \
        --model_dir=runs/mnli

The dataset must be prepared beforehand (`tfds build glue/mnli`); nothing is
downloaded. The text features of the TFDS dataset (e.g. `premise` and
`hypothesis`) become segments A and B: `[CLS] A [SEP] B [SEP]`, tokenized
with the run's vocabulary. The encoder's weights come from the latest
checkpoint of `--init_model_dir` (a pretraining run); a classifier on the
first token's output is trained with it. SIBERT is fine-tuned with Lamb (the
paper: Adam is too sensitive to the scale of a scale-invariant encoder), BERT
with AdamW; both with linear warm-up and decay. Metrics on `--eval_split`:
accuracy, F1 (binary tasks), Matthews correlation (CoLA), Pearson and
Spearman correlations (STS-B, a regression).
"""

import json
import os

import numpy as np
from absl import app, flags

GLUE_METRICS = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "correlation"}


def define_flags():
    """Defined only when run as a program, so that importing the module defines no absl flag."""
    flags.DEFINE_enum("model", "sibert", ["sibert", "bert"], "Encoder type.")
    flags.DEFINE_enum("config", "tiny", ["tiny", "mini", "small", "medium", "base", "large"], "Size preset.")
    flags.DEFINE_string("vocab_file", "official/nlp/corpus/vocab.txt", "The pretraining vocabulary.")
    flags.DEFINE_string("init_model_dir", None, "Pretraining run to initialise the encoder from (None: random).")
    flags.DEFINE_string("tfds_name", "glue/mnli", "A TFDS GLUE-style dataset.")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data directory.")
    flags.DEFINE_string("train_split", "train", "Training split.")
    flags.DEFINE_string("eval_split", "validation_matched", "Evaluation split.")
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length.")
    flags.DEFINE_integer("batch_size", 32, "Batch size.")
    flags.DEFINE_integer("epochs", 3, "Epochs.")
    flags.DEFINE_integer("max_train_examples", 0, "Use at most this many training examples (0 = all).")
    flags.DEFINE_float("learning_rate", 2e-4, "Peak learning rate.")
    flags.DEFINE_float("warmup_fraction", 0.1, "Fraction of the steps spent warming up.")
    flags.DEFINE_string("model_dir", None, "Where the results (and the fine-tuned model) go.")


def _text_keys(info):
    import tensorflow_datasets as tfds

    keys = [k for k, f in info.features.items() if isinstance(f, tfds.features.Text) or
            (getattr(f, "dtype", None) is not None and str(f.dtype) == "<dtype: 'string'>")]
    if not 1 <= len(keys) <= 2:
        raise ValueError(f"Expected one or two text features in {info.name}, found {keys}.")
    return keys


def load_task(name, data_dir, split, vocab, max_seq_length, batch_size, shuffle, max_examples=0, seed=0):
    """A batched dataset of (inputs, label), and the task's (num_classes or None for regression, text keys)."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    from official.nlp.data.files import load_prepared_tfds

    ds, info = load_prepared_tfds(name, split, data_dir)
    keys = _text_keys(info)
    label = info.features["label"]
    num_classes = getattr(label, "num_classes", None)
    tokenizer = vocab.tokenizer()
    if max_examples:
        ds = ds.take(max_examples)
    if shuffle:
        ds = ds.shuffle(10000, seed=seed)

    def encode(batch):
        segments = [tokenizer.tokenize(batch[k]).merge_dims(-2, -1) for k in keys]
        trimmed = tf_text.WaterfallTrimmer(max_seq_length - 1 - len(keys)).trim(segments)
        ids, types = tf_text.combine_segments(trimmed, start_of_sequence_id=vocab.cls_id,
                                              end_of_segment_id=vocab.sep_id)
        ids, mask = tf_text.pad_model_inputs(ids, max_seq_length)
        types, _ = tf_text.pad_model_inputs(types, max_seq_length)
        inputs = {"input_word_ids": tf.cast(ids, tf.int32), "input_mask": tf.cast(mask, tf.int32),
                  "input_type_ids": tf.cast(types, tf.int32)}
        y = batch["label"] if num_classes is None else tf.cast(batch["label"], tf.int32)
        return inputs, y

    ds = ds.batch(batch_size, drop_remainder=shuffle).map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE), num_classes, keys


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


def run(f):
    import keras
    import tensorflow as tf

    import keras_si
    from official.nlp import modeling
    from official.nlp.data.vocab import Vocab

    if not f.model_dir:
        raise ValueError("--model_dir is required.")
    for name in ("max_seq_length", "batch_size", "epochs"):
        if getattr(f, name) < 1:
            raise ValueError(f"--{name} must be >= 1. Received: {getattr(f, name)}")
    if not f.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0. Received: {f.learning_rate}")
    vocab = Vocab(f.vocab_file)
    keras.utils.set_random_seed(0)
    train, num_classes, keys = load_task(f.tfds_name, f.tfds_data_dir, f.train_split, vocab, f.max_seq_length,
                                         f.batch_size, shuffle=True, max_examples=f.max_train_examples)
    evaluation, _, _ = load_task(f.tfds_name, f.tfds_data_dir, f.eval_split, vocab, f.max_seq_length,
                                 f.batch_size, shuffle=False)

    config = modeling.get_config(f.config, vocab_size=len(vocab), max_position_embeddings=max(512, f.max_seq_length))
    pretrainer = modeling.Pretrainer(f.model, config)
    pretrainer(modeling.dummy_features(2, f.max_seq_length, 2, len(vocab)))
    if f.init_model_dir:
        latest = tf.train.latest_checkpoint(f.init_model_dir)
        if latest is None:
            raise ValueError(f"--init_model_dir={f.init_model_dir} holds no checkpoint.")
        # Pretraining checkpoints are flat lists of the pretrainer's variables (official.common.checkpointing).
        status = tf.train.Checkpoint(model_variables=list(pretrainer.variables)).restore(latest)
        status.expect_partial()  # the optimizer state in the file is not needed
        status.assert_existing_objects_matched()  # every encoder and head variable was found
        print(f"Encoder initialised from {latest}")
    model = build_classifier(pretrainer.encoder, num_classes)

    steps = max(1, int(train.cardinality().numpy())) * f.epochs
    lr = keras_si.schedules.LinearWarmup(keras.optimizers.schedules.PolynomialDecay(f.learning_rate, steps, 0.0),
                                         warmup_steps=int(f.warmup_fraction * steps))
    optimizer = keras.optimizers.Lamb(lr) if f.model == "sibert" else keras.optimizers.AdamW(lr, weight_decay=0.01)
    if num_classes is None:
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(train, epochs=f.epochs, verbose=2)

    predictions, labels = [], []
    for x, y in evaluation:
        predictions.append(np.asarray(model(x, training=False)))
        labels.append(np.asarray(y))
    results = metrics_from_predictions(np.concatenate(predictions), np.concatenate(labels), num_classes)
    results.update(task=f.tfds_name, eval_split=f.eval_split, text_features=keys)
    os.makedirs(f.model_dir, exist_ok=True)
    with open(os.path.join(f.model_dir, "eval_results.json"), "w") as out:
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
