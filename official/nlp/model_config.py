"""A pretraining run's model, saved beside its checkpoints: `<model_dir>/model_config.json`.

`pretrain` writes it before training; `export` and `finetune` rebuild the
model from the run directory alone (`load`, `build_pretrainer`,
`restore_weights`), with no flag of the run. Run directories written before
this file existed (a `flags.json` only) are read through the same fields.

Example:
    >>> from official.nlp import model_config
    >>> config = model_config.load("runs/demo")            # doctest: +SKIP
    >>> pretrainer = model_config.build_pretrainer(config)   # doctest: +SKIP
    >>> model_config.restore_weights(pretrainer, "runs/demo")  # doctest: +SKIP
"""

import dataclasses
import json
import os

FILENAME = "model_config.json"
OLD_FLAGS_FILENAME = "flags.json"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What rebuilds a run's Pretrainer and serves it.

    Args:
        model: "sibert" or "bert".
        preset: the size preset the run was started with (`--config`), for messages.
        encoder: the `EncoderConfig` (vocabulary size included).
        max_seq_length: the run's sequence length (the export's input length).
        max_predictions_per_seq: masked positions per sequence.
        vocab_file: the vocabulary the run trained with.
        vocab_sha256: its content hash (`Vocab.sha256`), or None for old runs.
        dtype_policy: the run's Keras dtype policy ("float32", "mixed_bfloat16", ...).
    """

    model: str
    preset: str
    encoder: object  # an EncoderConfig (not annotated by type: this module imports no Keras)
    max_seq_length: int
    max_predictions_per_seq: int
    vocab_file: str
    vocab_sha256: str = None
    dtype_policy: str = "float32"

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["encoder"] = self.encoder.to_dict()
        return values

    @classmethod
    def from_dict(cls, values):
        from official.nlp.modeling import EncoderConfig

        values = dict(values)
        values["encoder"] = EncoderConfig.from_dict(values["encoder"])
        return cls(**values)


def encoder_config(c, vocab_size):
    """The `EncoderConfig` of a pretraining config's `config` (preset) and `dropout`, for `vocab_size` tokens.

    The position table has max(512, `max_seq_length`) rows, as BERT's, so a
    checkpoint fits fine-tuning at any length up to 512.
    """
    from official.nlp import modeling

    dropout = getattr(c, "dropout", None)  # absent from the flags.json of runs before --dropout
    rates = {} if dropout is None else dict(dropout=dropout, attention_dropout=dropout)
    return modeling.get_config(c.config, vocab_size=vocab_size, max_sequence_length=max(512, c.max_seq_length),
                               **rates)


def from_pretrain_config(c, vocab):
    """The model a pretraining config (`PretrainConfig`, or an object with its fields) describes.

    Args:
        c: the config: `model`, `config` (preset), `dropout`, `max_seq_length`,
            `max_predictions_per_seq`, `mixed_precision_policy`, `vocab_file`.
        vocab: the `Vocab` read from `c.vocab_file`.
    """
    # An absolute path: export and finetune read the run from any working directory.
    vocab_file = c.vocab_file if "://" in c.vocab_file else os.path.abspath(c.vocab_file)
    return ModelConfig(model=c.model, preset=c.config, encoder=encoder_config(c, len(vocab)),
                       max_seq_length=c.max_seq_length, max_predictions_per_seq=c.max_predictions_per_seq,
                       vocab_file=vocab_file,
                       vocab_sha256=vocab.sha256,
                       dtype_policy=getattr(c, "mixed_precision_policy", None) or "float32")


def save(config, model_dir):
    """Writes `config` to `<model_dir>/model_config.json` (to a temporary name, then renamed)."""
    import tensorflow as tf

    path = os.path.join(model_dir, FILENAME)
    with tf.io.gfile.GFile(path + ".tmp", "w") as out:
        json.dump(config.to_dict(), out, indent=2)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    return path


def load(model_dir, flag="--model_dir"):
    """The `ModelConfig` of the pretraining run in `model_dir`.

    Reads `model_config.json`, or for a run written before it, the model's
    flags in `flags.json`.

    Raises:
        ValueError: one line naming `flag` when the directory holds neither
            (not a pretraining run directory), or when the file is unreadable.
    """
    import tensorflow as tf

    from official.nlp.data.vocab import Vocab

    path = os.path.join(model_dir, FILENAME)
    old = os.path.join(model_dir, OLD_FLAGS_FILENAME)
    try:
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as fh:
                return ModelConfig.from_dict(json.load(fh))
        if tf.io.gfile.exists(old):
            with tf.io.gfile.GFile(old) as fh:
                saved = json.load(fh)
            run = _Fields(saved)
            config = from_pretrain_config(run, Vocab(saved["vocab_file"]))
            if saved.get("vocab_sha256") is None:  # older still: the hash was not recorded
                config = dataclasses.replace(config, vocab_sha256=None)
            return config
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{flag}={model_dir}: its {FILENAME if tf.io.gfile.exists(path) else OLD_FLAGS_FILENAME} "
                         f"is not a model config this version reads ({type(e).__name__}: {e}).") from None
    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise ValueError(f"{flag}={model_dir} is an exported SavedModel, not a pretraining run directory; give the "
                         "run directory (the one holding the checkpoints and model_config.json).")
    raise ValueError(f"{flag}={model_dir} is not a pretraining run directory: it holds no {FILENAME} (written by "
                     "official.nlp.pretrain beside its checkpoints).")


class _Fields:
    """The model's fields of an old run's saved flags (`flags.json`), defaults for those it predates."""

    def __init__(self, saved):
        self.model, self.config = saved["model"], saved["config"]
        self.max_seq_length, self.max_predictions_per_seq = saved["max_seq_length"], saved["max_predictions_per_seq"]
        self.vocab_file = saved["vocab_file"]
        self.dropout = saved.get("dropout")
        self.mixed_precision_policy = saved.get("mixed_precision_policy", "float32")


def build_pretrainer(config):
    """A built `Pretrainer` for `config` (random weights: `restore_weights` fills them)."""
    from official.nlp import modeling

    pretrainer = modeling.Pretrainer(config.model, config.encoder)
    pretrainer(modeling.dummy_features(2, config.max_seq_length, config.max_predictions_per_seq,
                                       config.encoder.vocab_size))
    return pretrainer


def restore_weights(pretrainer, model_dir, flag="--model_dir"):
    """Loads the weights of the latest checkpoint in `model_dir` into `pretrainer` (the optimizer state is skipped).

    Returns:
        The checkpoint's path.

    Raises:
        ValueError: one line naming `flag`: no checkpoint, or one that does
            not fit the pretrainer.
    """
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        raise ValueError(f"{flag}={model_dir} holds no checkpoint.")
    # Pretraining checkpoints are flat lists of the pretrainer's variables (official.common.checkpointing).
    status = tf.train.Checkpoint(model_variables=list(pretrainer.variables)).restore(latest)
    status.expect_partial()  # the optimizer's state in the file is not needed
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(f"{flag}={model_dir}: its checkpoint {os.path.basename(latest)} does not fit a "
                         f"{pretrainer.model_type} encoder of this size and vocabulary ({e}).") from None
    return latest
