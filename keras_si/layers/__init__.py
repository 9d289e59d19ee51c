"""Scale-invariant building blocks (Li et al., ICML 2022) and weight-standardised convolution.

Degrees of homogeneity in the parameters (the paper's Table 2): a module is
(a; b)-homogeneous if inputs of degree a give outputs of degree b.

| layer | degree |
| --- | --- |
| `SIMultiHeadAttention` | (x, x, x; x + 2) |
| `SIFeedForward` | (0; 2) |
| `SIEncoderBlock` | (2; 2) |
| `SIEmbeddings` | (ids; 2) |
| `scale_free_norm()` (LayerNorm, no affine) | (x; 0) |
| `affine_norm()` (LayerNorm with gain and bias) | (x; 1) |
"""

from keras_si.layers.attention import SIMultiHeadAttention
from keras_si.layers.dropout import Dropout
from keras_si.layers.base import is_marked_scale_invariant, mark_scale_invariant
from keras_si.layers.embedding import SIEmbeddings
from keras_si.layers.encoder import SIEncoderBlock
from keras_si.layers.feedforward import SIFeedForward
from keras_si.layers.normalization import SI_EPSILON, affine_norm, scale_free_norm
from keras_si.layers.ws_conv import WSConv2D
