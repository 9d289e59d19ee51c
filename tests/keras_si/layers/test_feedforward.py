"""SIFeedForward (keras_si/layers/feedforward.py): degree 0 to 2."""

import numpy as np

from keras_si import layers as L
from tests.keras_si.layers.homogeneity import DEGREE_TOL, measured_degree


def test_feedforward_degree_0_to_2():
    u = np.random.RandomState(1).randn(3, 4, 8).astype("float32")
    ff = L.SIFeedForward(16)
    ff(u)
    degree, _, _ = measured_degree(lambda a: ff(a), ff.trainable_variables, lambda s: (u,), 0)
    assert abs(degree - 2) < DEGREE_TOL
