"""keras_si's optimizers: Keras 3 optimizers for scale-invariant networks and large batches.

- `SGDClip`: the paper's algorithm (Li et al., ICML 2022): SGD + weight decay
  with the gradient clipped relative to the weight norm.
- `SGDP`, `AdamP` (Heo et al., ICLR 2021): the update's radial part removed
  on scale-invariant weights.
- `LARS` (You et al., 2017): a per-variable trust ratio ||w|| / ||g||.
- `RAdam` (Liu et al., ICLR 2020): Adam with its adaptive rate rectified.
- `AGC` (Brock et al., ICML 2021): unit-wise adaptive gradient clipping
  around any Keras optimizer.
- `Optimizer`: their base class (global-batch gradients under
  `tf.distribute`, weight-decay exclusion by `variable.path`).
- `unit_axes`, `annotate_unit_axes`: which axes of a variable index its
  units, for AGC and SGDP/AdamP's per-unit statistics.

All are registered for Keras serialization under the package "keras_si".
"""

from keras_si.optimizers.agc import AGC
from keras_si.optimizers._norms import annotate_unit_axes, unit_axes
from keras_si.optimizers.base import Optimizer
from keras_si.optimizers.sgd_clip import SGDClip
from keras_si.optimizers.lars import LARS
from keras_si.optimizers.radam import RAdam
from keras_si.optimizers.adamp import AdamP
from keras_si.optimizers.sgdp import SGDP

__all__ = ["AGC", "LARS", "SGDP", "AdamP", "Optimizer", "RAdam", "SGDClip", "annotate_unit_axes", "unit_axes"]
