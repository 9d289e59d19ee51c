"""How keras_si layers say which of their weights are scale invariant, and their argument checks."""

import numbers

# A layer with this attribute set to True declares that all of its weights
# belong to the model's scale-invariant group: the model's output must not
# change when they are all multiplied by the same c > 0.
# `keras_si.scale_invariant_variables(model)` collects them.
SCALE_INVARIANT_ATTR = "scale_invariant_group"


def mark_scale_invariant(layer, value=True):
    setattr(layer, SCALE_INVARIANT_ATTR, bool(value))
    return layer


def is_marked_scale_invariant(layer):
    return bool(getattr(layer, SCALE_INVARIANT_ATTR, False))


# Constructor checks shared by the layers: a bad argument fails at construction
# with one line naming it, not later inside build() or call() with a shape error.
# Each returns the value as a plain Python number, for configs and Keras layers.


def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return int(value)  # Keras's own layers (Dense) reject NumPy integers


def check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def check_non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
    return float(value)
