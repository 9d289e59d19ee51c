"""The command-line flags of official/nlp's drivers, each defined once (defaults from `official.nlp.configs`).

Flags shared by `pretrain` and `finetune` (`--model`, `--config`,
`--vocab_file`, `--max_seq_length`, `--learning_rate`, `--seed`,
`--model_dir`, `--verbose`, `--tfds_name`, `--tfds_data_dir`, `--log_level`)
are defined by `define_shared_flags`; where the two drivers' defaults differ
the flag's default is None and each driver's config supplies its own. Each
`define_*` function may be called more than once (a flag already defined is
left alone), so importing two drivers never raises absl's DuplicateFlagError.
The flags keep the Model Garden's names (`--max_seq_length`, ...); the model
config uses keras_si's (`EncoderConfig.max_sequence_length`, ...).
"""

from absl import flags

from official.nlp import configs

FLAGS = flags.FLAGS
LOG_LEVELS = ("error", "warning", "info", "debug")
_P = configs.PretrainConfig()
_F = configs.FinetuneConfig()


def _define(kind, name, default, *args):
    """`flags.DEFINE_<kind>(name, default, *args)` unless `name` is defined already."""
    if name in FLAGS:
        return
    getattr(flags, f"DEFINE_{kind}")(name, default, *args)


def define_shared_flags():
    """Flags that `pretrain` and `finetune` both read, defined once."""
    _define("enum", "model", None, list(configs.MODEL_NAMES),
            "Encoder type (pretrain: default sibert; finetune: default the --init_model_dir run's, else sibert).")
    _define("enum", "config", None, list(configs.PRESET_NAMES),
            "Size preset (pretrain: default tiny; finetune: default the --init_model_dir run's, else tiny).")
    _define("string", "vocab_file", None,
            "WordPiece vocabulary, one token a line (pretrain: default the copy written beside --input_files by "
            "create_pretraining_data, else the shipped official/nlp/corpus/vocab.txt; finetune: the "
            "--init_model_dir run's).")
    _define("integer", "max_seq_length", _P.max_seq_length, "Tokens per sequence, [CLS] and [SEP]s included.")
    _define("float", "learning_rate", None,
            "Peak learning rate (pretrain: 8e-4 for SIBERT/SGDClip, 1e-4 for BERT/AdamW; finetune: 2e-4).")
    _define("integer", "seed", _P.seed, "Random seed (weights, data order, masks).")
    _define("string", "model_dir", None, "Run directory (pretrain: checkpoints, logs and the export; finetune: "
            "eval_results.json).")
    _define("integer", "verbose", None, "Keras fit verbosity: 0 silent, 1 progress bar, 2 a line per epoch "
            "(pretrain: default 1; finetune: default 2).")
    _define("string", "tfds_name", None, "A TFDS dataset (prepared beforehand with `tfds build`; never downloaded).")
    _define("string", "tfds_data_dir", None, "TFDS data directory.")
    define_log_level_flag()


def define_log_level_flag():
    """--log_level: how much of TensorFlow's, absl's and Keras's own logging a command shows."""
    _define("enum", "log_level", "warning", list(LOG_LEVELS),
            "Messages shown besides the command's own output: 'warning' (default) hides TensorFlow's C++ "
            "and Python INFO lines and absl's INFO lines; 'info' or 'debug' bring them back (as do absl's "
            "--verbosity and --stderrthreshold, and TF_CPP_MIN_LOG_LEVEL); 'error' hides warnings too.")


def define_pretrain_flags():
    """The flags of `python -m official.nlp.pretrain`."""
    define_shared_flags()
    _define("list", "input_files", None, "TFRecord files or globs written by create_pretraining_data (static "
            "masking).")
    _define("list", "text_files", None, "Text files or globs: one sentence per line, a blank line between "
            "documents (dynamic masking).")
    _define("string", "tfds_split", _P.tfds_split, "TFDS split.")
    _define("string", "tfds_text_key", _P.tfds_text_key, "The TFDS feature holding a document's text.")
    _define("list", "eval_text_files", None, "Held-out text (same format as --text_files) for masked-LM metrics "
            "before and after training.")
    _define("integer", "eval_batches", _P.eval_batches, "Held-out batches to evaluate.")
    _define("enum", "strategy", _P.strategy, list(configs.STRATEGIES), "tf.distribute strategy.")
    _define("string", "tpu", None, "TPU address for --strategy=tpu ('local' on a TPU VM).")
    _define("integer", "num_gpus", None, "GPUs for --strategy=mirrored (default: all).")
    _define("integer", "global_batch_size", _P.global_batch_size, "Batch size summed over replicas.")
    _define("integer", "max_predictions_per_seq", _P.max_predictions_per_seq, "Masked positions per sequence.")
    _define("float", "masked_lm_prob", _P.masked_lm_prob, "Masking rate (text input).")
    _define("integer", "train_steps", _P.train_steps, "Optimizer steps in total.")
    _define("integer", "steps_per_epoch", _P.steps_per_epoch,
            "Steps between checkpoints (and epoch ends on the progress bar).")
    _define("integer", "steps_per_execution", _P.steps_per_execution, "Steps per tf.function call.")
    _define("integer", "max_checkpoints", _P.max_checkpoints, "Checkpoints kept.")
    _define("integer", "summary_steps", None, "Steps between TensorBoard summaries (default: --steps_per_epoch).")
    _define("float", "head_learning_rate", _P.head_learning_rate, "SIBERT heads' Lamb learning rate.")
    _define("integer", "warmup_steps", _P.warmup_steps, "Linear warm-up steps (SIBERT heads; BERT), smaller than "
            "--train_steps (default: 10% of --train_steps, at most 10,000).")
    _define("float", "weight_decay", _P.weight_decay, "Weight decay.")
    _define("float", "clip_factor", _P.clip_factor, "SGDClip's clip factor sqrt(C); <= 0 turns clipping off.")
    _define("enum", "embedding_tables", _P.embedding_tables, list(configs.EMBEDDING_TABLES),
            "SIBERT: the embedding tables on SGDClip with the rest of the scale-invariant group (the paper), or on "
            "the heads' Adam or Lamb (rare tokens' rows do not shrink; Lamb: alike from any init scale; "
            "docs/sgdclip.md).")
    _define("list", "lr_decay_at", [str(x) for x in _P.lr_decay_at],
            "SIBERT: fractions of --train_steps where the learning rate drops 10x.")
    _define("float", "init_scale", _P.init_scale, "Multiplies the initial weights of SIBERT's scale-invariant "
            "group (its function is unchanged), or of BERT's whole encoder (the paper's Figure 1).")
    _define("float", "dropout", None, "Encoder dropout rate, hidden and attention (default: the preset's, 0.1).")
    _define("enum", "mixed_precision_policy", _P.mixed_precision_policy, list(configs.DTYPE_POLICIES),
            "Keras dtype policy.")
    _define("enum", "jit_compile", _P.jit_compile, ["auto", "true", "false"], "XLA compilation of the train step.")
    _define("bool", "deterministic", _P.deterministic,
            "Deterministic ops (a resumed run then matches an uninterrupted one).")
    _define("string", "export_dir", None, "SavedModel directory (default: <model_dir>/export).")
    _define("bool", "export", _P.export, "Export a SavedModel at the end.")


def define_finetune_flags():
    """The flags of `python -m official.nlp.finetune`."""
    define_shared_flags()
    _define("string", "init_model_dir", None, "Pretraining run directory to start from (its model_config.json "
            "gives --model, --config and --vocab_file). None: a randomly initialised encoder.")
    _define("string", "train_file", None, "Local training table (.tsv in GLUE's layout, .csv, .jsonl).")
    _define("string", "eval_file", None, "Local evaluation table, same columns as --train_file.")
    _define("enum", "file_format", None, ["tsv", "csv", "jsonl"], "Format of the files (default: extension).")
    _define("list", "text_fields", list(_F.text_fields), "One or two text columns (names, or 0-based numbers for "
            "files without a header, such as GLUE's CoLA).")
    _define("string", "label_field", _F.label_field, "The label column.")
    _define("list", "labels", None, "Class names in id order (default: the sorted labels of --train_file).")
    _define("bool", "regression", _F.regression, "Labels are numbers (e.g. STS-B's score): mean squared error.")
    _define("string", "train_split", _F.train_split, "TFDS training split.")
    _define("string", "eval_split", _F.eval_split, "TFDS evaluation split.")
    _define("integer", "batch_size", _F.batch_size, "Batch size.")
    _define("integer", "epochs", _F.epochs, "Epochs.")
    _define("integer", "max_train_examples", _F.max_train_examples,
            "Use at most this many training examples (0 = all).")
    _define("float", "warmup_fraction", _F.warmup_fraction, "Fraction of the steps spent warming up.")


def define_export_flags():
    """The flags of `python -m official.nlp.export`."""
    _define("string", "model_dir", None, "Run directory: checkpoints, logs, results and the export go here.")
    _define("string", "export_dir", None, "SavedModel directory (default: <model_dir>/export).")
    define_log_level_flag()
