"""What the layer tests share: the measured degree of homogeneity of a function in its parameters."""

import math

import numpy as np

from keras_si.invariance import scaled_variables

# Homogeneity is exact in real arithmetic; float32 roundoff in the ratio of two
# norms of ~1e3 elements gives ~1e-6 in the degree. 1e-3 still tells 2 from 2.01.
DEGREE_TOL = 1e-3


def measured_degree(fn, variables, inputs_at, x_degree, c=10.0):
    """log(||f(c)|| / ||f(1)||) / log c, scaling the parameters by c and inputs as degree x."""
    base = np.asarray(fn(*inputs_at(1.0)), np.float64)
    with scaled_variables(variables, c):
        scaled = np.asarray(fn(*inputs_at(c**x_degree)), np.float64)
    return math.log(np.linalg.norm(scaled) / np.linalg.norm(base)) / math.log(c), base, scaled
