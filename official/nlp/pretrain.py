"""Pretrains SIBERT or BERT with masked LM (+ next sentence) in Keras `model.fit`.

    # The embedded demo: SIBERT-tiny on the shipped corpus (no download), CPU.
    python -m official.nlp.pretrain --model=sibert --config=tiny \
        --text_files=official/nlp/corpus/train.txt --model_dir=runs/demo

    # From TFRecords written by official.nlp.data.create_pretraining_data.
    python -m official.nlp.pretrain --model=sibert --config=base \
        --input_files='gs://bucket/data/*.tfrecord' --strategy=tpu --tpu=local ...

    # Several workers: the same command on each, TF_CONFIG giving its index (see docs/pipeline.md).
    TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}' \
        python -m official.nlp.pretrain --strategy=multi_worker_mirrored --model_dir=gs://bucket/run ...

Data: `--input_files` (TFRecords, static masks), or raw text with dynamic
masking from `--text_files` or a prepared TFDS dataset (`--tfds_name`).
Training: SIBERT as in the paper (encoder on SGDClip, heads on Lamb), BERT on
AdamW (see `official.nlp.optimization`). Every `--steps_per_epoch` steps a
checkpoint is written to `--model_dir` (the last `--max_checkpoints` kept) and
TensorBoard logs to `--model_dir/logs`; a restarted run resumes from the
latest checkpoint, on the same data position. At the end the model is
exported as a SavedModel (`official.nlp.export`).
"""

import dataclasses
import json
import os
import time

from absl import app, flags, logging

from official.nlp import configs
from official.nlp import flags as nlp_flags

# Defined on import (not only as a program) because scripts read `pretrain.FLAGS[name].default`
# (examples/reproduce_paper.py); defining them twice is harmless (official.nlp.flags).
nlp_flags.define_pretrain_flags()
FLAGS = flags.FLAGS
PretrainConfig = configs.PretrainConfig
# The flags that define the model and the layout of its checkpoints: a run directory's checkpoints only
# continue under the same values (the vocabulary is compared by content, as `vocab_sha256`).
MODEL_FLAGS = ("model", "config", "max_seq_length", "max_predictions_per_seq", "dropout", "mixed_precision_policy",
               "embedding_tables")  # the last: which optimizer's state the checkpoints hold
# Flags that change what a resumed run trains (said in one line when they differ from the run's).
TRAINING_FLAGS = ("input_files", "text_files", "tfds_name", "global_batch_size", "masked_lm_prob", "train_steps",
                  "learning_rate", "head_learning_rate", "warmup_steps", "weight_decay", "clip_factor", "lr_decay_at",
                  "init_scale", "seed")


def validate_flags(c):
    """Raises a ValueError naming the flag for out-of-range or inconsistent values (`PretrainConfig.validate`)."""
    c.validate()


DEFAULT_VOCAB = configs.SHIPPED_VOCAB


def resolve_vocabulary(c):
    """The config with `vocab_file` set when unset, checked with the lengths against the records' facts.

    Records written by `create_pretraining_data` carry their facts and a copy of
    their vocabulary (`official.nlp.data.records_info`): the default is that
    copy, and a `--vocab_file`, `--max_seq_length` or
    `--max_predictions_per_seq` that disagrees is refused before training.

    Returns:
        The config, with `vocab_file` set.

    Raises:
        ValueError: from `records_info.find` / `records_info.check`.
    """
    from official.nlp.data import records_info

    info = records_info.find(list(c.input_files)) if c.input_files else None
    if info is not None:
        if c.vocab_file is None:
            c = c.replace(vocab_file=info["vocab_file"])
            print(f"Vocabulary: {c.vocab_file}, the records' own ({info['vocab_size']} tokens).")
        records_info.check(info, c.vocab_file, c.max_seq_length, c.max_predictions_per_seq)
    elif c.vocab_file is None:
        c = c.replace(vocab_file=DEFAULT_VOCAB)
    return c


def latest_step(model_dir):
    """The step of the latest checkpoint in `model_dir` (checkpoints are numbered by step), or 0."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(model_dir) if tf.io.gfile.isdir(model_dir) else None
    if state is None or not state.model_checkpoint_path:
        return 0
    return int(state.model_checkpoint_path.rsplit("-", 1)[-1])


def check_run_directory(f):
    """Checks, before anything is written, that `--model_dir` holds no run or the run these flags describe.

    Returns:
        The flags saved by the run already there (a dict), or None for a new run.

    Raises:
        ValueError: naming the first model-defining flag whose value differs from the saved run's.
    """
    import tensorflow as tf

    from official.nlp.data.vocab import Vocab

    flagfile = os.path.join(f.model_dir, "flags.json")
    if not tf.io.gfile.exists(flagfile):
        if latest_step(f.model_dir):
            raise ValueError(f"--model_dir={f.model_dir} holds checkpoints but no flags.json: it was not written by "
                             "this program; use another --model_dir.")
        return None
    with tf.io.gfile.GFile(flagfile) as fh:
        saved = json.load(fh)
    for name in MODEL_FLAGS:
        if name in saved and saved[name] != getattr(f, name):
            raise ValueError(f"--{name}={getattr(f, name)} differs from the run in --model_dir={f.model_dir}, which "
                             f"was started with --{name}={saved[name]}: give the same value to continue that run, "
                             "or another --model_dir.")
    if "vocab_sha256" in saved and saved["vocab_sha256"] != Vocab(f.vocab_file).sha256:
        raise ValueError(f"--vocab_file={f.vocab_file} is not the vocabulary of the run in --model_dir={f.model_dir} "
                         f"(which used {saved.get('vocab_file')}): give that vocabulary, or another --model_dir.")
    # Training flags may change on a resume (a longer run, a new learning rate): said, not refused, since the
    # continued run is then no longer the uninterrupted one.
    for name, value in saved.items():
        current = getattr(f, name, value)
        if name in TRAINING_FLAGS and _comparable(current) != _comparable(value):
            print(f"Note: --{name}={_comparable(current)} differs from the run's {_comparable(value)} (continuing "
                  "with the new value).")
    return saved


def _comparable(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def make_dataset(f, strategy, vocab, eval_data=False):
    from official.nlp.data import pretrain_dataloader as loader

    def dataset_fn(ctx):
        batch = ctx.get_per_replica_batch_size(f.global_batch_size) if ctx else f.global_batch_size
        if f.input_files:
            return loader.tfrecord_dataset(f.input_files, batch, f.max_seq_length, f.max_predictions_per_seq,
                                           is_training=True, seed=f.seed, input_context=ctx, vocab_size=len(vocab))
        docs = loader.load_documents(f.text_files, f.tfds_name, f.tfds_data_dir, f.tfds_split, f.tfds_text_key)
        return loader.text_dataset(docs, vocab, batch, f.max_seq_length, f.max_predictions_per_seq,
                                   f.masked_lm_prob, seed=f.seed, input_context=ctx)

    return dataset_fn


def eval_dataset(f, vocab):
    from official.nlp.data import pretrain_dataloader as loader

    docs = loader.load_documents(f.eval_text_files, flag_name="--eval_text_files")
    # A fixed seed: the same held-out masks before and after training.
    ds = loader.text_dataset(docs, vocab, f.global_batch_size, f.max_seq_length, f.max_predictions_per_seq,
                             f.masked_lm_prob, seed=1234)
    return ds.take(f.eval_batches).cache()


def build_model(c, vocab_size):
    """A built Pretrainer for the config `c` (`model`, `config`, `dropout`, the lengths), its initial weights
    scaled by `c.init_scale`."""
    from official.nlp import model_config, modeling

    model = modeling.Pretrainer(c.model, model_config.encoder_config(c, vocab_size))
    model(modeling.dummy_features(2, c.max_seq_length, c.max_predictions_per_seq, vocab_size))
    modeling.scale_initialization(model, c.init_scale)
    return model


def compile_model(model, f):
    from official.nlp import optimization

    if f.model == "sibert":
        optimizer = optimization.sibert_optimizer(
            model, f.train_steps, learning_rate=f.learning_rate or 8e-4, weight_decay=f.weight_decay,
            clip_factor=f.clip_factor if f.clip_factor > 0 else None, head_learning_rate=f.head_learning_rate,
            head_warmup_steps=f.resolved_warmup_steps, decay_at=[float(x) for x in f.lr_decay_at],
            embedding_tables=f.embedding_tables,
        )
    else:
        optimizer = optimization.bert_optimizer(f.train_steps, f.learning_rate or 1e-4, f.weight_decay,
                                                f.resolved_warmup_steps)
    metrics, weighted = optimization.pretraining_metrics()
    jit = {"auto": "auto", "true": True, "false": False}[f.jit_compile]
    model.compile(optimizer=optimizer, loss=optimization.pretraining_losses(), metrics=metrics,
                  weighted_metrics=weighted, steps_per_execution=f.steps_per_execution, jit_compile=jit)
    return model


def unigram_distribution(documents, vocab):
    """Token frequencies of the training text, add-one smoothed: the context-free model a learner must beat.

    Returns:
        A float64 array [vocab size] of probabilities (every token > 0).
    """
    import numpy as np

    from official.nlp.data import instances

    tokenized = instances.tokenize_documents(documents, vocab.tokenizer(), len(vocab))
    counts = np.zeros(len(vocab), np.float64)
    for doc in tokenized:
        for sentence in doc:
            counts += np.bincount(sentence, minlength=len(vocab))
    return (counts + 1.0) / (counts.sum() + len(vocab))


def context_free_baseline(targets, unigram=None):
    """What always predicting `unigram` scores on the masked-LM `targets` (int ids): see `heldout_metrics`.

    Returns:
        A dict: unigram_loss (nats), unigram_accuracy, unigram_source ("training text", or "held-out targets"
        when `unigram` is None and the targets' own frequencies are used).
    """
    import numpy as np

    targets = np.asarray(targets)
    if unigram is None:
        p = np.unique(targets, return_counts=True)[1] / len(targets)
        return dict(unigram_loss=float(-(p * np.log(p)).sum()), unigram_accuracy=float(p.max()),
                    unigram_source="held-out targets")
    return dict(unigram_loss=float(-np.log(unigram[targets]).mean()),
                unigram_accuracy=float(np.mean(targets == np.argmax(unigram))), unigram_source="training text")


def heldout_metrics(model, dataset, unigram=None, frequent=10):
    """Held-out masked-LM (and next-sentence) metrics, computed from the logits in float64.

    Averages are over every real masked position of every batch (and every
    sequence for NSP), not means of per-batch means. Also reported, to read the
    numbers against: the context-free baseline, always predicting `unigram`
    (the training text's token frequencies, `unigram_distribution`) or, when it
    is None, the held-out targets' own frequencies (an optimistic baseline: it
    knows the held-out distribution); and the accuracy on targets outside the
    `frequent` most frequent held-out targets, which only context can get right.

    Returns:
        A dict of Python floats: mlm_loss (nats), mlm_accuracy, nsp_loss,
        nsp_accuracy (absent without an NSP head), unigram_loss,
        unigram_accuracy, unigram_source ("training text" or "held-out
        targets"), rare_accuracy, and positions (the count).
    """
    import numpy as np

    from official.nlp import modeling

    nll, hits, targets, nsp_nll, nsp_hits, sequences = [], [], [], 0.0, 0, 0
    for batch in dataset:
        # Record features (official.nlp.data), or (inputs, labels, weights) as given to fit.
        features, labels, weights = modeling.pretraining_targets(batch) if isinstance(batch, dict) else batch
        out = model(features, training=False)
        logits = np.asarray(out["mlm"], np.float64)
        y = np.asarray(labels["mlm"]).astype(np.int64)
        real = np.asarray(weights["mlm"]) > 0
        log_z = np.logaddexp.reduce(logits, axis=-1)
        picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
        nll.append((log_z - picked)[real])
        hits.append((logits.argmax(-1) == y)[real])
        targets.append(y[real])
        if "nsp" in out and "nsp" in labels:
            n_logits = np.asarray(out["nsp"], np.float64)
            n_y = np.asarray(labels["nsp"]).astype(np.int64).reshape(-1)
            n_z = np.logaddexp.reduce(n_logits, axis=-1)
            nsp_nll += float(np.sum(n_z - n_logits[np.arange(len(n_y)), n_y]))
            nsp_hits += int(np.sum(n_logits.argmax(-1) == n_y))
            sequences += len(n_y)
    nll, hits, targets = np.concatenate(nll), np.concatenate(hits), np.concatenate(targets)
    if not len(targets):
        raise ValueError("The held-out data has no masked position to evaluate.")
    ids, counts = np.unique(targets, return_counts=True)
    common = ids[np.argsort(-counts, kind="stable")[:frequent]]
    rare = ~np.isin(targets, common)
    results = {"mlm_loss": float(nll.mean()), "mlm_accuracy": float(hits.mean()),
               **context_free_baseline(targets, unigram),
               "rare_accuracy": float(hits[rare].mean()) if rare.any() else float("nan"),
               "positions": int(len(targets))}
    if sequences:
        results.update(nsp_loss=nsp_nll / sequences, nsp_accuracy=nsp_hits / sequences)
    return results


APOSTROPHE = {True: "'", False: "'s"}  # "the held-out targets' frequencies", "the training text's frequencies"


def format_heldout(m):
    """One line for the log: the held-out metrics beside the context-free baseline."""
    line = (f"MLM loss {m['mlm_loss']:.3f}, accuracy {m['mlm_accuracy']:.2%} "
            f"(context-free, the {m['unigram_source']}{APOSTROPHE[m['unigram_source'].endswith('s')]} "
            f"frequencies: loss {m['unigram_loss']:.3f}, "
            f"accuracy {m['unigram_accuracy']:.2%}); "
            f"accuracy outside the 10 most frequent targets {m['rare_accuracy']:.2%}")
    if "nsp_accuracy" in m:
        line += f"; NSP loss {m['nsp_loss']:.3f}, accuracy {m['nsp_accuracy']:.2%}"
    return line + f" [{m['positions']} masked positions]"


def run(f, strategy=None):
    """Pretrains with the flag values `f`; returns (model, summary).

    `strategy`, if given, is used instead of the one `--strategy` names (a test
    process shares one MirroredStrategy over its devices: see
    tests/testing_utils.two_cpu_strategy).
    """
    if os.environ.get("KERAS_SI_FULL_TRACEBACKS"):
        import keras

        keras.config.disable_traceback_filtering()
    import keras
    import tensorflow as tf

    import keras_si
    from official.common import checkpointing, distribute_utils
    from official.nlp import model_config, optimization
    from official.nlp.data.vocab import Vocab

    f.validate()
    f = resolve_vocabulary(f)
    saved_flags = check_run_directory(f)  # before anything is written
    done = latest_step(f.model_dir) if saved_flags else 0
    if done >= f.train_steps:
        print(f"The run in {f.model_dir} is complete: its latest checkpoint is at step {done}, --train_steps is "
              f"{f.train_steps}. Nothing to do (raise --train_steps to train further; `python -m "
              f"official.nlp.export --model_dir={f.model_dir}` exports it again).")
        summary_file = os.path.join(f.model_dir, "summary.json")
        return None, (json.load(tf.io.gfile.GFile(summary_file)) if tf.io.gfile.exists(summary_file) else {})
    # Multi-worker strategies must exist before any other TF op runs.
    if strategy is None:
        strategy = distribute_utils.get_strategy(f.strategy, tpu=f.tpu, num_gpus=f.num_gpus)
    logging.info("Strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    # Every worker saves (saving may need them all), but only the chief into --model_dir.
    chief, task_id = distribute_utils.chief_and_task(strategy)
    write_dir = f.model_dir if chief else os.path.join(f.model_dir, f".worker_{task_id}")
    if f.global_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"--global_batch_size={f.global_batch_size} is not divisible by the "
                         f"{strategy.num_replicas_in_sync} replicas.")
    vocab = Vocab(f.vocab_file)
    keras.utils.set_random_seed(f.seed)
    if f.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(f.mixed_precision_policy)
    tf.io.gfile.makedirs(write_dir)
    if chief:
        # flags.json: the run's whole config, checked by a resume; model_config.json: what export and
        # finetune rebuild the model from.
        with tf.io.gfile.GFile(os.path.join(f.model_dir, "flags.json"), "w") as out:
            json.dump({**dataclasses.asdict(f), "vocab_sha256": vocab.sha256}, out, indent=2)
        model_config.save(model_config.from_pretrain_config(f, vocab), f.model_dir)

    with strategy.scope():
        model = compile_model(build_model(f, len(vocab)), f)
        manager = checkpointing.CheckpointManager(model, f.model_dir, max_to_keep=f.max_checkpoints)
        initial_step = manager.restore_latest()
        if not chief:
            manager = checkpointing.CheckpointManager(model, write_dir, max_to_keep=1)
    if initial_step % f.steps_per_execution:
        raise ValueError(f"The latest checkpoint in {f.model_dir} is at step {initial_step}, not a multiple of "
                         f"--steps_per_execution={f.steps_per_execution}: resume with the flags it was written with.")
    if initial_step:
        print(f"Resuming from {manager.latest} (step {initial_step}).")

    # Global batches: Keras's fit distributes them over the strategy's replicas (auto-sharding by file
    # for TFRecords, by element otherwise). The same batches as an uninterrupted run: skip those already
    # trained on.
    train_data = make_dataset(f, strategy, vocab)(None)

    eval_data = eval_dataset(f, vocab) if f.eval_text_files else None
    unigram = None
    if eval_data is not None and f.text_files:
        from official.nlp.data import pretrain_dataloader as loader

        unigram = unigram_distribution(loader.load_documents(f.text_files), vocab)
    before = None
    if eval_data is not None and initial_step == 0:
        before = heldout_metrics(model, eval_data, unigram)
        print(f"Held-out before training: {format_heldout(before)}")

    callbacks = [optimization.LearningRateLogger(), checkpointing.CheckpointCallback(manager)]
    if f.model == "sibert":
        callbacks.insert(0, keras_si.SGDClipMonitor())
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(write_dir, "logs"),
                                                 update_freq=f.summary_steps or f.steps_per_epoch))
    start = time.time()
    from official.common.preemption import StopOnSignal

    with StopOnSignal(manager) as stop:
        logs = fit(model, train_data, initial_step, f, callbacks + [stop])
    elapsed = time.time() - start
    trained = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) - initial_step
    # "step": where the run is (its latest checkpoint); "steps", "seconds": what this invocation trained, from
    # "initial_step" (0 unless it resumed).
    summary = {"step": initial_step + trained, "initial_step": initial_step, "steps": trained, "seconds": elapsed,
               "sequences_per_second": trained * f.global_batch_size / max(elapsed, 1e-9), "final": logs}
    if stop.signal_name:
        summary["stopped"] = {"signal": stop.signal_name, "step": stop.step}
        print(f"\nStopped at step {stop.step} ({stop.signal_name}); the checkpoint is written: run the same command "
              "to resume.", flush=True)
        return model, summary
    if eval_data is not None:
        after = heldout_metrics(model, eval_data, unigram)
        summary["heldout"] = {"before": before, "after": after}
        print(f"Held-out after training: {format_heldout(after)}")
    if not chief:
        tf.io.gfile.rmtree(write_dir)
        return model, summary
    if f.export:
        from official.nlp import export

        export_dir = f.export_dir or os.path.join(f.model_dir, "export")
        export.export_pretrainer(model, f.vocab_file, export_dir, f.max_seq_length, f.max_predictions_per_seq)
        summary["export_dir"] = export_dir
        print(f"Exported a SavedModel to {export_dir}")
    with tf.io.gfile.GFile(os.path.join(f.model_dir, "summary.json"), "w") as out:
        json.dump(summary, out, indent=2)
    return model, summary


def fit(model, data, initial_step, f, callbacks):
    """Trains from `initial_step` to exactly `--train_steps`; returns the last logs.

    An epoch is `--steps_per_epoch` steps (a checkpoint at its end). A run
    stopped mid-epoch (SIGTERM, Ctrl-C) resumes with a first, shorter epoch up
    to the next boundary, then whole epochs, and a `--train_steps` that is not a
    multiple of `--steps_per_epoch` ends with a shorter last epoch: the same
    batches, in the same order, as an uninterrupted run (`data` is the whole
    stream; the batches already trained on are skipped).
    """
    import keras

    spe, end = f.steps_per_epoch, f.train_steps
    step, logs = initial_step, {}
    while step < end:
        epoch, into = divmod(step, spe)
        if into or end - step < spe:  # a shorter epoch: to the next boundary, or to the end
            run = dict(initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=min(spe - into, end - step))
        else:
            run = dict(initial_epoch=epoch, epochs=epoch + (end - step) // spe, steps_per_epoch=spe)
        # shuffle=False: the data is shuffled (or a stream): Keras would warn and ignore it.
        history = model.fit(data.skip(step), callbacks=callbacks, verbose=f.verbose, shuffle=False, **run)
        if history.history:
            logs = {k: float(v[-1]) for k, v in history.history.items()}
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if model.stop_training:
            break
    return logs


def main(argv):
    del argv
    import signal
    import sys

    from official.common import cli

    cli.set_log_level(FLAGS.log_level)
    try:
        _, summary = cli.run_reporting_input_errors(lambda: run(configs.from_flags(PretrainConfig, FLAGS)))
    except KeyboardInterrupt:  # before training started (or after it ended): no step to lose
        sys.exit("\nInterrupted outside training; nothing to save.")
    if summary.get("stopped"):
        sys.exit(128 + signal.Signals[summary["stopped"]["signal"]].value)  # the shell's convention


if __name__ == "__main__":
    app.run(main)
