"""The one place where keras_si uses Keras's private API, each use with why.

SharpnessAwareMinimization writes its own `train_step`, which has to do what
Keras's trainers do between the forward pass and the metrics: compute the
compiled loss, feed the loss tracker, find the layers' seed generators, and
(on JAX) update the metric variables statelessly. Keras exposes none of these
publicly. `check()` verifies that every attribute used here still exists, and
tests/keras_si/test_sam.py calls it, so a Keras upgrade that changes them fails with a
message naming the attribute instead of an AttributeError deep in `fit`.
"""

import keras

# The attributes used below, looked up by `check()` on a compiled model.
_USED = ("_compute_loss", "_loss_tracker", "_flatten_layers")


def check():
    """Raises RuntimeError naming the private Keras attribute that this Keras version lacks."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dropout(0.5)])
    model.compile(loss="mse")
    missing = [f"Model.{name}" for name in _USED if not hasattr(model, name)]
    if keras.backend.backend() == "jax" and not hasattr(model, "_update_metrics_variables"):
        missing.append("Model._update_metrics_variables (JAX trainer)")
    if not hasattr(model.layers[0], "_seed_generators"):
        missing.append("Layer._seed_generators")
    if missing:
        raise RuntimeError(
            f"keras_si's SharpnessAwareMinimization relies on Keras private API that Keras {keras.__version__} "
            f"no longer has: {', '.join(missing)}. Update keras_si/backend/keras_private.py for this Keras."
        )


def compute_loss(model, x, y, y_pred, sample_weight):
    # Why private: `Model.compute_loss` is public but Keras's trainers call
    # `_compute_loss`, which also handles `training` (regularization losses of
    # the pass) and the loss scaling for tf.distribute the same way `fit` does.
    return model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)


def track_loss(model, loss, batch_size):
    # Why private: `fit` reports `model._loss_tracker`'s mean; a custom
    # train_step must feed it or the "loss" log is missing/wrong.
    model._loss_tracker.update_state(loss, sample_weight=batch_size)


def seed_states(model):
    """The state variables of every SeedGenerator of the model's layers (dropout, noise)."""
    # Why private: no public API lists a layer's seed generators; SAM must
    # advance them past its second pass (see SharpnessAwareMinimization).
    return [sg.state for layer in model._flatten_layers() for sg in getattr(layer, "_seed_generators", [])]


def jax_update_metrics_variables(model, metrics_vars, unscaled_loss, x, y, y_pred, sample_weight):
    # Why private: the JAX trainer's stateless metric update, which a stateless
    # train_step must return with its new metric variables.
    return model._update_metrics_variables(metrics_vars, unscaled_loss, x, y, y_pred, sample_weight)
