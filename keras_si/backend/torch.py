"""PyTorch-specific code of keras_si (imported only on the PyTorch backend).

The optimizers' entry points are `keras_si.backend.common`'s (dense, global
gradients, eager values). Then `SharpnessAwareMinimization`'s training step.
"""

import keras
import torch
from keras import ops

from keras_si.backend import keras_private
from keras_si.backend.common import (  # noqa: F401 (re-exported entry points)
    all_reduce_sum,
    concrete_scalar,
    has_strategy,
    in_xla_context,
    is_sparse,
    reductions_are_serial,
    replicas_to_reduce,
    sum_of_squares,
)


def sam_train_step(sam, data):
    """SharpnessAwareMinimization's step as Keras's PyTorch trainer runs `train_step(data)`.

    Gradients come from `torch.autograd.grad`, not `backward()`, so nothing
    accumulates in the parameters' `.grad` between the two passes.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    variables = sam.trainable_variables
    values = [v.value for v in variables]

    # First pass, at w: the step's loss, metrics and state updates, as in Keras's own train_step.
    y_pred = sam(x, training=True)
    loss = keras_private.compute_loss(sam, x, y, y_pred, sample_weight)
    keras_private.track_loss(sam, loss, next(t for t in keras.tree.flatten(x) if t is not None).shape[0])
    grads = torch.autograd.grad(sam.optimizer.scale_loss(loss), values, allow_unused=True)
    with torch.no_grad():
        e = sam.ascent(list(grads), variables)
        perturbed = [(w.detach() + ops.cast(d, w.dtype)).requires_grad_(True) for w, d in zip(values, e)]

    # Second pass, at w + e, without touching the variables (see the
    # TensorFlow step): the stateless scope reads w + e in their place and
    # records the pass's assignments (batch-norm statistics) instead of applying them.
    with keras.StatelessScope(state_mapping=list(zip(variables, perturbed)), collect_losses=True) as scope:
        perturbed_pred = sam(x, training=True)
        perturbed_loss = keras_private.compute_loss(sam, x, y, perturbed_pred, sample_weight)
        perturbed_scaled = sam.optimizer.scale_loss(perturbed_loss)
    perturbed_grads = torch.autograd.grad(perturbed_scaled, perturbed, allow_unused=True)
    with torch.no_grad():
        # Only the random seeds move on past the second pass (see the TensorFlow step).
        for state in keras_private.seed_states(sam):
            new = scope.get_current_value(state)
            if new is not None:
                state.assign(new)
        sam.optimizer.apply(list(perturbed_grads), variables)
    return sam.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
