"""One config for BERT and SIBERT encoders, and the standard size presets."""

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Sizes shared by `BertEncoder` and `SIBertEncoder`.

    `initializer_std` is the std of the truncated normal used for every weight
    (0.02 in BERT and in the paper's SIBERT; scale it to reproduce the
    paper's Figure 1).
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_std: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1. Received: {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}"
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


def _preset(layers, hidden):
    return EncoderConfig(hidden_size=hidden, num_layers=layers, num_heads=hidden // 64,
                         intermediate_size=4 * hidden)


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
        self.config = config if isinstance(config, EncoderConfig) else EncoderConfig(**config)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape["input_word_ids"]) + (self.config.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config["config"] = self.config.to_dict()
        return config
