"""The paper's N and NA (keras_si/layers/normalization.py): degrees 0 and 1."""

import numpy as np
import pytest

from keras_si import layers as L
from tests.keras_si.layers.homogeneity import DEGREE_TOL, measured_degree


@pytest.mark.parametrize("c", [1e-2, 1e2])
def test_layer_normalization_without_affine_has_degree_0_at_the_tested_scales(c):
    """N must stay degree 0 on a degree-2 stream scaled by c**2 = 1e-4 .. 1e4."""
    x = np.random.RandomState(4).randn(2, 5, 8).astype("float32") * 0.05
    norm = L.layer_normalization_without_affine()
    np.testing.assert_allclose(np.asarray(norm(x * c**2)), np.asarray(norm(x)), rtol=1e-4, atol=1e-5)


def test_layer_normalization_with_affine_degree_1():
    x = np.random.RandomState(5).randn(2, 5, 8).astype("float32")
    norm = L.layer_normalization_with_affine()
    norm(x)
    norm.gamma.assign(np.random.RandomState(6).rand(8).astype("float32") + 0.5)
    norm.beta.assign(np.random.RandomState(7).randn(8).astype("float32"))
    degree, _, _ = measured_degree(lambda a: norm(a), norm.trainable_variables, lambda s: (x * s,), 1)
    assert abs(degree - 1) < DEGREE_TOL
