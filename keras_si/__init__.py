"""keras_si: robust, memory-cheap training with scale-invariant architectures and SGD.

Implements Li, Bhojanapalli, Zaheer, Reddi and Kumar, *Robust Training of Neural
Networks Using Scale Invariant Architectures* (ICML 2022) for Keras 3, and the
optimization toolbox around it.

- `keras_si.layers`: the scale-invariant building blocks (attention,
  feed-forward, PreNorm block, embeddings, the two layer normalisations),
  `HashedDropout`, `WSConv2D`, and the marker that puts a layer's weights in a
  model's scale-invariant group.
- `keras_si.optimizers` (the main ones also here): `SGDClip`, `SGDP`/`AdamP`,
  `LARS`, `RAdam`, `AGC`; `SAM` in `keras_si.sam`.
- `keras_si.schedules`, `keras_si.losses`, `keras_si.callbacks`.
- The invariance toolkit (`keras_si.invariance`, exported here): find the
  scale-invariant group, check that the model is invariant to its scale, find
  the layer that breaks it, and give the group its own optimizer.
"""

from keras_si import callbacks
from keras_si import layers
from keras_si import losses
from keras_si import optimizers
from keras_si import schedules
from keras_si.sam import SAM, SharpnessAwareMinimization
from keras_si.callbacks import SGDClipMonitor
from keras_si.invariance import (
    HomogeneityReport,
    assert_scale_invariant,
    check_scale_invariance,
    homogeneity_report,
    scale_invariant_optimizer,
    scale_invariant_variables,
)
from keras_si.optimizers import AGC, LARS, SGDP, AdamP, RAdam, SGDClip

__version__ = "0.1.0"

__all__ = [
    "AGC",
    "LARS",
    "SAM",
    "SGDP",
    "AdamP",
    "HomogeneityReport",
    "RAdam",
    "SGDClip",
    "SGDClipMonitor",
    "SharpnessAwareMinimization",
    "assert_scale_invariant",
    "callbacks",
    "check_scale_invariance",
    "homogeneity_report",
    "layers",
    "losses",
    "optimizers",
    "scale_invariant_optimizer",
    "scale_invariant_variables",
    "schedules",
]
