"""SIEncoderBlock (keras_si/layers/encoder.py): degree 2 to 2."""

import numpy as np

from keras_si import layers as L
from tests.keras_si.layers.homogeneity import DEGREE_TOL, measured_degree


def test_encoder_block_degree_2_to_2():
    h = np.random.RandomState(2).randn(2, 6, 8).astype("float32")
    block = L.SIEncoderBlock(num_heads=2, intermediate_dim=16)
    block(h)
    degree, _, _ = measured_degree(lambda a: block(a), block.trainable_variables, lambda s: (h * s,), 2)
    assert abs(degree - 2) < DEGREE_TOL
