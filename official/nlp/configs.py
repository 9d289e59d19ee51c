"""One config object per driver: what `pretrain` and `finetune` run with, turned from flags in their `main`.

The fields are named as the flags (`official.nlp.flags` defines those from
the defaults here), so `python -m official.nlp.pretrain --train_steps=10` and
`pretrain.run(PretrainConfig(train_steps=10))` are the same run. `validate`
raises a one-line ValueError naming the flag for a value out of range.

Example:
    >>> from official.nlp.configs import PretrainConfig
    >>> c = PretrainConfig(text_files=("corpus.txt",), model_dir="runs/x", train_steps=10)
    >>> c.validate()
"""

import dataclasses
from typing import Optional, Tuple

PRESET_NAMES = ("tiny", "mini", "small", "medium", "base", "large")
MODEL_NAMES = ("sibert", "bert")
STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# Where SIBERT's embedding tables are trained: with the scale-invariant group on SGDClip (the paper), or on the
# heads' Adam or Lamb (official.nlp.optimization.sibert_optimizer).
EMBEDDING_TABLES = ("sgdclip", "adam", "lamb")
SHIPPED_VOCAB = "official/nlp/corpus/vocab.txt"


def check_warmup(warmup_steps, train_steps, warmup_name="`warmup_steps`", train_name="`train_steps`"):
    """`warmup_steps`, checked to end before `train_steps` (named in the error as `warmup_name`, `train_name`).

    The pretraining schedules warm up linearly to the linear decay's value at the
    end of the warm-up (`keras_si.schedules.LinearWarmup`), and that decay reaches 0
    at `train_steps`: a warm-up as long as the run would keep the learning rate at
    0 throughout (it was silently cut to the run's length).

    Raises:
        ValueError: if `warmup_steps` > 0 and not smaller than `train_steps`.
    """
    if warmup_steps > 0 and warmup_steps >= train_steps:
        raise ValueError(f"{warmup_name} ({warmup_steps}) must be smaller than {train_name} ({train_steps}): the "
                         "learning rate warms up to the linear decay's value at the end of the warm-up, 0 at "
                         f"{train_name}.")
    return warmup_steps


def _tuple(value):
    return None if value is None else tuple(value)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run is given (`official.nlp.pretrain.run`); see `--help` for each field.

    Lists (`input_files`, `text_files`, `eval_text_files`, `lr_decay_at`) are
    tuples. `vocab_file=None` means the records' own vocabulary with
    `input_files`, else the shipped one; `learning_rate=None` means 8e-4 for
    SIBERT (SGDClip) and 1e-4 for BERT (AdamW); `dropout=None` the preset's.
    """

    model: str = "sibert"
    config: str = "tiny"
    vocab_file: Optional[str] = None
    input_files: Optional[Tuple[str, ...]] = None
    text_files: Optional[Tuple[str, ...]] = None
    tfds_name: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    tfds_split: str = "train"
    tfds_text_key: str = "text"
    eval_text_files: Optional[Tuple[str, ...]] = None
    eval_batches: int = 8
    strategy: str = "one_device"
    tpu: Optional[str] = None
    num_gpus: Optional[int] = None
    global_batch_size: int = 32
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    train_steps: int = 1000
    steps_per_epoch: int = 100
    steps_per_execution: int = 1
    max_checkpoints: int = 3
    summary_steps: Optional[int] = None
    learning_rate: Optional[float] = None
    head_learning_rate: float = 8e-4
    warmup_steps: Optional[int] = None  # None: `resolved_warmup_steps`
    weight_decay: float = 1e-2
    clip_factor: float = 2.0
    embedding_tables: str = "sgdclip"
    lr_decay_at: Tuple[float, ...] = (0.6, 0.9)
    init_scale: float = 1.0
    dropout: Optional[float] = None
    mixed_precision_policy: str = "float32"
    jit_compile: str = "auto"
    seed: int = 0
    deterministic: bool = False
    model_dir: Optional[str] = None
    export_dir: Optional[str] = None
    export: bool = True
    verbose: int = 1

    def __post_init__(self):
        # Flags give lists (and strings for --lr_decay_at): store tuples of the right type.
        for name in ("input_files", "text_files", "eval_text_files"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        object.__setattr__(self, "lr_decay_at", tuple(float(x) for x in self.lr_decay_at))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def resolved_warmup_steps(self):
        """`warmup_steps`, or by default 10% of `train_steps` and at most 10,000 (the paper's, for a million steps).

        The warm-up ends at the linear decay's value there, which is 0 at `train_steps`: the old fixed default of
        10,000 kept the heads' learning rate at 0 throughout any run of up to 10,000 steps.
        """
        return self.warmup_steps if self.warmup_steps is not None else min(10000, self.train_steps // 10)

    def validate(self):
        """Raises a ValueError naming the flag for an out-of-range or inconsistent value."""
        from official.nlp.data.instances import check_lengths

        _check_choice("model", self.model, MODEL_NAMES)
        _check_choice("config", self.config, PRESET_NAMES)
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("mixed_precision_policy", self.mixed_precision_policy, DTYPE_POLICIES)
        _check_choice("jit_compile", self.jit_compile, ("auto", "true", "false"))
        _check_choice("embedding_tables", self.embedding_tables, EMBEDDING_TABLES)
        sources = [bool(self.input_files), bool(self.text_files), bool(self.tfds_name)]
        if sum(sources) != 1:
            raise ValueError("Give exactly one of --input_files, --text_files or --tfds_name.")
        if not self.model_dir:
            raise ValueError("--model_dir is required.")
        check_lengths(self.max_seq_length, self.max_predictions_per_seq, self.masked_lm_prob)
        for name in ("global_batch_size", "train_steps", "steps_per_epoch", "steps_per_execution",
                     "max_checkpoints", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1. Received: {getattr(self, name)}")
        if self.summary_steps is not None and self.summary_steps < 1:
            raise ValueError(f"--summary_steps must be >= 1. Received: {self.summary_steps}")
        for name in ("steps_per_epoch", "train_steps"):
            if getattr(self, name) % self.steps_per_execution:
                raise ValueError(f"--{name}={getattr(self, name)} must be a multiple of "
                                 f"--steps_per_execution={self.steps_per_execution}.")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1). Received: {self.dropout}")
        for name in ("learning_rate", "head_learning_rate", "init_scale"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name} must be > 0. Received: {value}")
        if self.weight_decay < 0:
            raise ValueError(f"--weight_decay must be >= 0. Received: {self.weight_decay}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"--warmup_steps must be >= 0. Received: {self.warmup_steps}")
        check_warmup(self.resolved_warmup_steps, self.train_steps, "--warmup_steps", "--train_steps")
        decay_at = list(self.lr_decay_at)
        if any(not 0 < x < 1 for x in decay_at) or decay_at != sorted(decay_at):
            raise ValueError("--lr_decay_at must be increasing fractions in (0, 1). Received: "
                             f"{','.join(str(x) for x in decay_at)}")
        if self.strategy == "tpu" and not self.tpu:
            raise ValueError("--strategy=tpu needs --tpu ('local' on a TPU VM, or the TPU's name or address).")
        if self.strategy != "tpu" and self.tpu:
            raise ValueError(f"--tpu is only used with --strategy=tpu (got --strategy={self.strategy}).")
        if self.model == "sibert" and self.clip_factor > 0 and self.weight_decay == 0:
            raise ValueError("SIBERT with --clip_factor > 0 needs --weight_decay > 0 (the clip threshold would be 0).")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Everything a fine-tuning run is given (`official.nlp.finetune.run`); see `--help` for each field.

    `model`, `config` and `vocab_file` left None are the `init_model_dir`
    run's (its `model_config.json`), else sibert, tiny and the shipped
    vocabulary. `labels=None`: the sorted labels of `train_file`.
    """

    init_model_dir: Optional[str] = None
    model: Optional[str] = None
    config: Optional[str] = None
    vocab_file: Optional[str] = None
    train_file: Optional[str] = None
    eval_file: Optional[str] = None
    file_format: Optional[str] = None
    text_fields: Tuple[str, ...] = ("sentence",)
    label_field: str = "label"
    labels: Optional[Tuple[str, ...]] = None
    regression: bool = False
    tfds_name: Optional[str] = None
    tfds_data_dir: Optional[str] = None
    train_split: str = "train"
    eval_split: str = "validation_matched"
    max_seq_length: int = 128
    batch_size: int = 32
    epochs: int = 3
    max_train_examples: int = 0
    learning_rate: float = 2e-4
    warmup_fraction: float = 0.1
    seed: int = 0
    model_dir: Optional[str] = None
    verbose: int = 2

    def __post_init__(self):
        object.__setattr__(self, "text_fields", tuple(self.text_fields))
        object.__setattr__(self, "labels", _tuple(self.labels))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def validate(self):
        """Raises a ValueError naming the flag for a missing, inconsistent or out-of-range value."""
        if self.model is not None:
            _check_choice("model", self.model, MODEL_NAMES)
        if self.config is not None:
            _check_choice("config", self.config, PRESET_NAMES)
        if not self.model_dir:
            raise ValueError("--model_dir is required.")
        if bool(self.tfds_name) == bool(self.train_file):
            raise ValueError("Give exactly one of --train_file (local files) or --tfds_name.")
        if self.train_file and not self.eval_file:
            raise ValueError("--train_file needs --eval_file (the data to report metrics on).")
        for name in ("max_seq_length", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1. Received: {getattr(self, name)}")
        if self.max_seq_length < 5:
            raise ValueError(f"--max_seq_length must be >= 5 ([CLS], [SEP]s and text). Received: "
                             f"{self.max_seq_length}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be > 0. Received: {self.learning_rate}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"--warmup_fraction must be in [0, 1). Received: {self.warmup_fraction}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"--{name} must be one of {', '.join(choices)}. Received: {value!r}")


def from_flags(cls, flag_values):
    """A `cls` config from parsed absl flags: each field from the flag of its name; a flag left None (a flag
    shared by drivers whose defaults differ) takes the field's default."""
    values = {}
    for field in dataclasses.fields(cls):
        value = flag_values[field.name].value
        if value is not None:
            values[field.name] = value
    return cls(**values)
