"""Every toolbox optimizer: MirroredStrategy on 2 logical CPUs, and XLA, equal one device without XLA.

Under the strategy each replica sees half the batch, so this holds only if every
norm, trust ratio, projection test and clip is taken on the all-reduced
gradient (Keras's own `global_clipnorm` fails it: tests/keras_si/optimizers/test_sgd_clip.py).
The conv model gives dense kernels, conv kernels and vectors.
"""

import keras
import pytest

import keras_si
from tests import testing_utils as tu

# (make, steps): LARS and RAdam run 6 steps so that RAdam takes both of its branches.
OPTIMIZERS = {
    "LARS": (lambda: keras_si.LARS(0.5, weight_decay=0.01, trust_coefficient=0.05), 6),
    "RAdam": (lambda: keras_si.RAdam(0.01, beta_2=0.9), 6),
    "SGDP": (lambda: keras_si.SGDP(0.1, momentum=0.9, weight_decay=1e-3), 4),
    "AdamP": (lambda: keras_si.AdamP(0.01, weight_decay=1e-3), 4),
    "AGC": (lambda: keras_si.AGC(keras.optimizers.SGD(0.5, momentum=0.9), clipping=0.01), 4),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_mirrored_strategy_and_xla_equal_single_device(name):
    make, steps = OPTIMIZERS[name]
    single, _ = tu.train_weights(make, steps=steps, conv=True)
    mirrored, _ = tu.train_weights(make, strategy=tu.two_cpu_strategy(), steps=steps, conv=True)
    xla, _ = tu.train_weights(make, steps=steps, conv=True, jit_compile=True)
    tu.assert_weights_close(single, mirrored, rtol=1e-5, atol=1e-6)
    tu.assert_weights_close(single, xla, rtol=1e-5, atol=1e-6)
