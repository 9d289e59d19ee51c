"""keras_si: robust, memory-cheap training with scale-invariant architectures and SGD.

Implements Li, Bhojanapalli, Zaheer, Reddi and Kumar, *Robust Training of Neural
Networks Using Scale Invariant Architectures* (ICML 2022) for Keras 3, and the
optimization toolbox around it.
"""

from keras_si import callbacks
from keras_si import layers
from keras_si import losses
from keras_si import optimizers
from keras_si import schedules
from keras_si.sam import SAM, SharpnessAwareMinimization
from keras_si.callbacks import SGDClipMonitor
from keras_si.invariance import (
    assert_scale_invariant,
    check_scale_invariance,
    homogeneity_report,
    scale_invariant_optimizer,
    scale_invariant_variables,
)
from keras_si.optimizers import AGC, LARS, SGDP, AdamP, RAdam, SGDClip

__version__ = "0.1.0"
