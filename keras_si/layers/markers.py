"""The marker by which a layer declares its weights scale invariant.

Not a base class: any Keras layer (keras_si's or a user's) joins a model's
scale-invariant group by carrying the marker attribute, set by
`mark_scale_invariant`; `keras_si.scale_invariant_variables(model)` collects
the trainable variables of every marked layer. A marker rather than a base
class because the group is a property of an architecture, not of a layer
type: a plain `keras.layers.Dense(use_bias=False)` before a normalisation is
in the group, the same `Dense` before a softmax is not.
"""

import keras

#: The attribute `mark_scale_invariant` sets on a layer (a bool). A layer with
#: it set to True declares that all of its trainable weights belong to the
#: model's scale-invariant group: the model's output must not change when they
#: are all multiplied by the same c > 0 (Li et al., ICML 2022, Section 2).
SCALE_INVARIANT_ATTR = "scale_invariant_group"


def _check_layer(layer):
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(f"`layer` must be a keras.layers.Layer. Received: layer={layer!r} of type {type(layer)}")


def mark_scale_invariant(layer, value=True):
    """Declares (or, with `value=False`, withdraws) `layer`'s weights as scale invariant.

    All trainable variables of a marked layer (its sub-layers' included) join
    the model's scale-invariant group: `keras_si.scale_invariant_variables`
    returns them, `keras_si.scale_invariant_optimizer` routes them to the
    scale-invariant optimizer (e.g. `SGDClip`), and
    `keras_si.check_scale_invariance` scales them together. Marking is a
    promise, not a proof: check it with `keras_si.assert_scale_invariant`.
    keras_si's SI layers mark themselves at construction.

    The marker is a plain attribute, so it is not part of the layer's config:
    a layer class that should be marked after `keras.models.load_model` marks
    itself in `__init__`, as keras_si's layers do.

    Args:
        layer: a `keras.layers.Layer` (a model is a layer too).
        value: True to mark (default), False to unmark.

    Returns:
        `layer` itself, so that a layer can be marked where it is built.

    Raises:
        TypeError: if `layer` is not a `keras.layers.Layer`.

    Example:

    >>> import keras, keras_si
    >>> from keras_si.layers import mark_scale_invariant, is_marked_scale_invariant
    >>> dense = mark_scale_invariant(keras.layers.Dense(4, use_bias=False, name="proj"))
    >>> is_marked_scale_invariant(dense)
    True
    >>> model = keras.Sequential([keras.Input((3,)), dense, keras.layers.Dense(2, name="head")], name="model")
    >>> group, rest = keras_si.scale_invariant_variables(model)
    >>> [v.path for v in group], [v.path for v in rest]
    (['model/proj/kernel'], ['model/head/kernel', 'model/head/bias'])
    """
    _check_layer(layer)
    setattr(layer, SCALE_INVARIANT_ATTR, bool(value))
    return layer


def is_marked_scale_invariant(layer):
    """Whether `layer` itself carries the scale-invariant marker.

    Only the layer's own marker is read: a layer inside a marked model is in
    the group through its parent (`keras_si.scale_invariant_variables` walks
    the tree), not marked itself.

    Args:
        layer: any object; objects that are not marked (including ones that
            are not layers) give False.

    Returns:
        bool: True if `mark_scale_invariant(layer)` was the last marking.

    Example:

    >>> import keras
    >>> from keras_si.layers import SIFeedForward, is_marked_scale_invariant
    >>> is_marked_scale_invariant(SIFeedForward(8)), is_marked_scale_invariant(keras.layers.Dense(8))
    (True, False)
    """
    return bool(getattr(layer, SCALE_INVARIANT_ATTR, False))
