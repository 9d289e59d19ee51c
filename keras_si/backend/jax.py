"""JAX-specific code of keras_si (imported only on the JAX backend).

The optimizers' entry points are `keras_si.backend.common`'s (dense, global
gradients), but for `concrete_scalar`, which must tell a traced value from a
concrete one. Then `SharpnessAwareMinimization`'s stateless training step.
"""

import jax
import keras
from keras import ops

from keras_si.backend import keras_private
from keras_si.backend.common import (  # noqa: F401 (re-exported entry points)
    all_reduce_sum,
    has_strategy,
    in_xla_context,
    is_sparse,
    reductions_are_serial,
    replicas_to_reduce,
    sum_of_squares,
)


def concrete_scalar(fn):
    """`fn()` as a Python float, or None inside `jax.jit` (where Keras's JAX trainer runs the step).

    There the values are tracers: the check that wanted them cannot run.
    """
    try:
        return float(fn())
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def sam_train_step(sam, state, data):
    """SharpnessAwareMinimization's step, stateless, as Keras's JAX trainer runs `train_step(state, data)`."""
    distribution = keras.distribution.distribution()
    devices = 1 if distribution is None else len(distribution.device_mesh.devices.flat)
    if sam.perturbation == "replica" and devices > 1:
        raise NotImplementedError(
            "perturbation='replica' (m-sharpness per device) is not implemented on JAX, where Keras "
            "differentiates the global batch's loss; use perturbation='global'."
        )
    trainable, non_trainable, optimizer_vars, metrics_vars = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    grad_fn = jax.value_and_grad(sam.compute_loss_and_updates, has_aux=True)

    # First pass, at w: loss, predictions, and the non-trainable updates kept.
    (_, aux), grads = grad_fn(trainable, non_trainable, metrics_vars, x, y, sample_weight,
                              training=True, optimizer_variables=optimizer_vars)
    unscaled_loss, y_pred, non_trainable, metrics_vars = aux
    e = sam.ascent(grads, trainable)

    # Second pass, at w + e: only its gradients and its random-seed states are kept.
    perturbed = [w + ops.cast(d, w.dtype) for w, d in zip(trainable, e)]
    (_, aux), perturbed_grads = grad_fn(perturbed, non_trainable, metrics_vars, x, y, sample_weight,
                                        training=True, optimizer_variables=optimizer_vars)
    seeds = {id(seed_state) for seed_state in keras_private.seed_states(sam)}
    non_trainable = [after if id(v) in seeds else kept
                     for v, kept, after in zip(sam.non_trainable_variables, non_trainable, aux[2])]

    trainable, optimizer_vars = sam.optimizer.stateless_apply(optimizer_vars, perturbed_grads, trainable)
    logs, metrics_vars = keras_private.jax_update_metrics_variables(
        sam, metrics_vars, unscaled_loss, x, y, y_pred, sample_weight)
    return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)
