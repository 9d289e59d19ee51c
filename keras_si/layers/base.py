"""How keras_si layers say which of their weights are scale invariant."""

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
