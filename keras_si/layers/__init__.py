"""Scale-invariant building blocks (Li et al., ICML 2022) and weight-standardised convolution.

Degrees of homogeneity in the parameters (the paper's Table 2): a module is
(a; b)-homogeneous if inputs of degree a give outputs of degree b.

| layer | degree |
| --- | --- |
| `SIMultiHeadAttention` | (x, x, x; x + 2) |
| `SIFeedForward` | (0; 2) |
| `SIEncoderBlock` | (2; 2) |
| `SIEmbeddings` | (ids; 2) |
| `layer_normalization_without_affine()` (N: LayerNorm without gain and bias) | (x; 0) |
| `layer_normalization_with_affine()` (NA: LayerNorm with gain and bias) | (x; 1) |

Also: `HashedDropout` (Keras's dropout with a mask XLA compiles cheaply),
`WSConv2D`, and the marker by which any layer joins a model's scale-invariant
group (`mark_scale_invariant`).
"""

from keras_si.layers.attention import SIMultiHeadAttention
from keras_si.layers.dropout import HashedDropout
from keras_si.layers.embedding import SIEmbeddings
from keras_si.layers.encoder import SIEncoderBlock
from keras_si.layers.feedforward import SIFeedForward
from keras_si.layers.markers import is_marked_scale_invariant, mark_scale_invariant
from keras_si.layers.normalization import (
    SI_EPSILON,
    layer_normalization_with_affine,
    layer_normalization_without_affine,
)
from keras_si.layers.ws_conv import WSConv2D

__all__ = [
    "HashedDropout",
    "SIEmbeddings",
    "SIEncoderBlock",
    "SIFeedForward",
    "SIMultiHeadAttention",
    "SI_EPSILON",
    "WSConv2D",
    "is_marked_scale_invariant",
    "layer_normalization_with_affine",
    "layer_normalization_without_affine",
    "mark_scale_invariant",
]
