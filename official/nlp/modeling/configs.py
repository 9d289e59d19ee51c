"""One config for BERT and SIBERT encoders, and the standard size presets."""

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Sizes shared by `BertEncoder` and `SIBertEncoder`, named as keras_si's layers name them.

    Args:
        vocab_size: token ids, >= 1 (default 30522, BERT's uncased vocabulary).
        hidden_dim: width of the token representations, >= 1 and a multiple of
            `num_heads` (default 768; BERT's `hidden_size`).
        num_layers: transformer blocks, >= 1 (default 12).
        num_heads: attention heads, >= 1 (default 12).
        intermediate_dim: width of the feed-forward's inner layer, >= 1
            (default 3072; BERT's `intermediate_size`).
        max_sequence_length: rows of the position table, the longest input,
            >= 1 (default 512; BERT's `max_position_embeddings`).
        type_vocab_size: segment ids, >= 1 (default 2).
        dropout: hidden dropout rate in [0, 1) (default 0.1).
        attention_dropout: attention-probability dropout in [0, 1) (default 0.1).
        initializer_std: std > 0 of the truncated normal used for every weight
            (0.02 in BERT and in the paper's SIBERT; scale it to reproduce the
            paper's Figure 1).

    Raises:
        ValueError: a size < 1, `hidden_dim` not divisible by `num_heads`, a
            rate outside [0, 1) or `initializer_std` <= 0.

    Example:
        >>> get_config("tiny", vocab_size=1000).hidden_dim
        128
    """

    vocab_size: int = 30522
    hidden_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_dim: int = 3072
    max_sequence_length: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_std: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "hidden_dim", "num_layers", "num_heads", "intermediate_dim",
                     "max_sequence_length", "type_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1. Received: {getattr(self, name)}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim={self.hidden_dim} is not divisible by num_heads={self.num_heads}"
            )
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"EncoderConfig.{name} must be in [0, 1). Received: {getattr(self, name)}")
        if not self.initializer_std > 0:
            raise ValueError(f"EncoderConfig.initializer_std must be > 0. Received: {self.initializer_std}")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """The inverse of `to_dict`; a field this version does not know is a one-line ValueError."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"EncoderConfig has no field(s) {unknown}; its fields are "
                             f"{[f.name for f in dataclasses.fields(cls)]}.")
        return cls(**values)


def _preset(layers, hidden):
    return EncoderConfig(hidden_dim=hidden, num_layers=layers, num_heads=hidden // 64,
                         intermediate_dim=4 * hidden)


# The BERT size family (Turc et al., 2019 for the small ones): heads = hidden / 64,
# intermediate = 4 * hidden.
PRESETS = {
    "tiny": _preset(2, 128),
    "mini": _preset(4, 256),
    "small": _preset(4, 512),
    "medium": _preset(8, 512),
    "base": _preset(12, 768),
    "large": _preset(24, 1024),
}


def get_config(name, **overrides):
    """The preset `name` with `overrides` applied (e.g. vocab_size=...)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown config preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name].replace(**overrides)


class ConfiguredEncoder(keras.layers.Layer):
    """What BERT's and SIBERT's encoders share: an `EncoderConfig`, the output shape, the config."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(config)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape["input_word_ids"]) + (self.config.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config
