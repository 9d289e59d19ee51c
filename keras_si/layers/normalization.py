"""The two layer normalisations of the homogeneity calculus (Li et al., ICML 2022, Table 2).

- N, `layer_normalization_without_affine()`: LayerNorm without gain and bias,
  (x; 0)-homogeneous: its output does not depend on the scale of its input.
- NA, `layer_normalization_with_affine()`: LayerNorm with gain and bias,
  (x; 1)-homogeneous: gain and bias are parameters of degree 1.

Both are factories returning Keras's own `keras.layers.LayerNormalization`
(so saved models hold a plain Keras layer and need no keras_si class to load),
configured with keras_si's epsilon and float32 statistics. "Affine" is the
paper's word for the gain-and-bias pair (its N and NA), and PyTorch's
(`LayerNorm(elementwise_affine=...)`); Keras spells the pair as two flags,
`scale` (gain) and `center` (bias), which the factories set together.
"""

import keras

from keras_si.layers._checks import check_non_negative

#: The epsilon of keras_si's layer normalisations (1e-20).
#:
#: The residual stream of a scale-invariant encoder has degree 2 in the
#: parameters, so scaling the parameters by c scales its variance by c**4:
#: by 1e-8 at c = 1e-2. An epsilon of 1e-12 (Keras/BERT use 1e-3/1e-12) would
#: then be a visible fraction of the variance and break invariance; 1e-20 is
#: still far above float32's smallest normal number (1.2e-38).
SI_EPSILON = 1e-20


def layer_normalization_without_affine(name=None, epsilon=SI_EPSILON):
    """N: a LayerNorm without gain and bias, (x; 0)-homogeneous.

    `keras.layers.LayerNormalization(center=False, scale=False)` normalising
    the last axis, with its statistics and output in float32
    (`dtype="float32"`) also under mixed precision: the variance of a degree-2
    stream at small parameter scales underflows float16. It has no weights.

    Args:
        name: the layer's name (default None: Keras's unique default).
        epsilon: added to the variance, >= 0 (default `SI_EPSILON` = 1e-20;
            a larger one breaks invariance at small scales, see `SI_EPSILON`).

    Returns:
        A new, unbuilt `keras.layers.LayerNormalization`; its output has the
        input's shape, dtype float32.

    Raises:
        ValueError: if `epsilon` is negative.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import layer_normalization_without_affine
    >>> norm = layer_normalization_without_affine()
    >>> x = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    >>> np.allclose(norm(1e-3 * x), norm(x), atol=1e-5)  # degree 0 in its input's scale
    True
    >>> len(norm.weights)
    0
    """
    epsilon = check_non_negative("epsilon", epsilon)
    return keras.layers.LayerNormalization(center=False, scale=False, epsilon=epsilon, dtype="float32", name=name)


def layer_normalization_with_affine(name=None, epsilon=SI_EPSILON, gamma_initializer="ones"):
    """NA: a LayerNorm with gain and bias, (x; 1)-homogeneous.

    Keras's `LayerNormalization` (gain `gamma` and bias `beta` per feature of
    the last axis) with statistics and output in float32 (`dtype="float32"`).
    Its output is the normalised input times the gain plus the bias, so it has
    degree 1 in the parameters when gain and bias are in the scaled group.

    Args:
        name: the layer's name (default None: Keras's unique default).
        epsilon: added to the variance, >= 0 (default `SI_EPSILON` = 1e-20).
        gamma_initializer: the gain's initialiser (default "ones"); the bias
            starts at zero, as in Keras.

    Returns:
        A new, unbuilt `keras.layers.LayerNormalization` with weights `gamma`
        and `beta`, each of the last axis's size; output as the input's shape,
        dtype float32.

    Raises:
        ValueError: if `epsilon` is negative.

    Example:

    >>> import numpy as np
    >>> from keras_si.layers import layer_normalization_with_affine
    >>> norm = layer_normalization_with_affine()
    >>> x = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    >>> y = np.asarray(norm(x))
    >>> _ = norm.beta.assign(norm.beta + 1.0)
    >>> for w in norm.weights:  # gain and bias times 3: the output triples
    ...     _ = w.assign(3.0 * w)
    >>> np.allclose(np.asarray(norm(x)), 3.0 * (y + 1.0), atol=1e-5)
    True
    """
    epsilon = check_non_negative("epsilon", epsilon)
    return keras.layers.LayerNormalization(epsilon=epsilon, dtype="float32", name=name,
                                           gamma_initializer=gamma_initializer)
