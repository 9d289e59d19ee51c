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
vocabulary read from `--init_model_dir/model_config.json`) starts from that run's
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

from official.nlp import configs

GLUE_METRICS = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "correlation"}


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

    texts, y, labels = labelled_text.load_examples(path, list(f.text_fields), f.label_field, f.file_format,
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


def resolve_encoder(c):
    """The encoder to fine-tune: the `init_model_dir` run's `ModelConfig`, or a new one from `model`/`config`.

    Returns:
        An `official.nlp.model_config.ModelConfig` (for a new encoder its
        lengths are `c.max_seq_length` and 2 predictions, unused here).

    Raises:
        ValueError: `init_model_dir` is not a pretraining run or has no
            checkpoint, a flag given explicitly contradicts the run, or
            `--max_seq_length` exceeds the run's position table.
    """
    import tensorflow as tf

    from official.nlp import model_config
    from official.nlp.data.vocab import Vocab

    if not c.init_model_dir:
        fresh = configs.PretrainConfig(model=c.model or "sibert", config=c.config or "tiny",
                                       vocab_file=c.vocab_file or configs.SHIPPED_VOCAB,
                                       max_seq_length=c.max_seq_length, max_predictions_per_seq=2)
        return model_config.from_pretrain_config(fresh, Vocab(fresh.vocab_file))
    run = model_config.load(c.init_model_dir, flag="--init_model_dir")
    if tf.train.latest_checkpoint(c.init_model_dir) is None:
        raise ValueError(f"--init_model_dir={c.init_model_dir} holds no checkpoint.")
    for name, saved in (("model", run.model), ("config", run.preset)):
        given = getattr(c, name)
        if given is not None and given != saved:
            raise ValueError(f"--{name}={given} contradicts the run in --init_model_dir={c.init_model_dir}, which "
                             f"has --{name}={saved}: leave --{name} unset.")
    if c.vocab_file is not None and run.vocab_sha256 is not None and Vocab(c.vocab_file).sha256 != run.vocab_sha256:
        raise ValueError(f"--vocab_file={c.vocab_file} is not the vocabulary of the run in --init_model_dir="
                         f"{c.init_model_dir} ({run.vocab_file}): leave --vocab_file unset.")
    if c.max_seq_length > run.encoder.max_sequence_length:
        raise ValueError(f"--max_seq_length={c.max_seq_length} exceeds the {run.encoder.max_sequence_length} "
                         f"positions of the encoder in --init_model_dir={c.init_model_dir}.")
    return run


def run(f):
    """Fine-tunes with the flag values `f`; returns the evaluation results (also written to eval_results.json)."""
    import keras
    import tensorflow as tf

    import keras_si
    from official.nlp import model_config
    from official.nlp.data.vocab import Vocab

    f.validate()
    encoder = resolve_encoder(f)
    vocab = Vocab(encoder.vocab_file)
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

    pretrainer = model_config.build_pretrainer(encoder)
    if f.init_model_dir:
        latest = model_config.restore_weights(pretrainer, f.init_model_dir, flag="--init_model_dir")
        print(f"Encoder ({encoder.model}, {encoder.preset}) initialised from {latest}")
    model = build_classifier(pretrainer.encoder, num_classes)

    steps = max(1, int(train.cardinality().numpy())) * f.epochs
    lr = keras_si.schedules.LinearWarmup(keras.optimizers.schedules.PolynomialDecay(f.learning_rate, steps, 0.0),
                                         warmup_steps=int(f.warmup_fraction * steps))
    optimizer = keras.optimizers.Lamb(lr) if encoder.model == "sibert" else keras.optimizers.AdamW(lr, weight_decay=0.01)
    if num_classes is None:
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(train, epochs=f.epochs, verbose=f.verbose, shuffle=False)  # the data is shuffled already

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
    from official.common import cli

    cli.set_log_level(flags.FLAGS.log_level)
    cli.run_reporting_input_errors(lambda: run(configs.from_flags(configs.FinetuneConfig, flags.FLAGS)))


if __name__ == "__main__":
    from official.nlp import flags as nlp_flags

    nlp_flags.define_finetune_flags()
    app.run(main)
