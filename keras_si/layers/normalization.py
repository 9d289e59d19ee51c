"""The normalisations of the homogeneity calculus: N (no affine) and NA (with gain and bias)."""

import keras

# The residual stream of a scale-invariant encoder has degree 2 in the
# parameters, so scaling the parameters by c scales its variance by c**4:
# by 1e-8 at c = 1e-2. An epsilon of 1e-12 (Keras/BERT use 1e-3/1e-12) would
# then be a visible fraction of the variance and break invariance; 1e-20 is
# still far above float32's smallest normal number (1.2e-38).
SI_EPSILON = 1e-20


def scale_free_norm(name=None, epsilon=SI_EPSILON):
    """N: LayerNorm without gain and bias, (x; 0)-homogeneous.

    Keras's own `LayerNormalization(center=False, scale=False)`, with its
    statistics in float32 (dtype="float32") also under mixed precision.
    """
    return keras.layers.LayerNormalization(
        center=False, scale=False, epsilon=epsilon, dtype="float32", name=name
    )


def affine_norm(name=None, epsilon=SI_EPSILON, gamma_initializer="ones"):
    """NA: LayerNorm with gain and bias, (x; 1)-homogeneous (gain and bias are parameters)."""
    return keras.layers.LayerNormalization(
        epsilon=epsilon, dtype="float32", name=name, gamma_initializer=gamma_initializer
    )
