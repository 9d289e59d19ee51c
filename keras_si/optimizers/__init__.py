"""keras_si optimizers. The paper's algorithm is in `sgd_clip.py`."""

from keras_si.optimizers.agc import AGC
from keras_si.optimizers._norms import annotate_unit_axes, unit_axes
from keras_si.optimizers.base import Optimizer
from keras_si.optimizers.sgd_clip import SGDClip
from keras_si.optimizers.lars import LARS
from keras_si.optimizers.radam import RAdam
from keras_si.optimizers.adamp import AdamP
from keras_si.optimizers.sgdp import SGDP
