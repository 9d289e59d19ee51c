"""Tilted empirical risk minimisation (Li, Beirami, Sanjabi and Smith, ICLR 2021)."""

import math
import numbers

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_si")
class TiltedLoss(keras.losses.Loss):
    """The t-tilted aggregate of any per-example Keras loss (Li, Beirami, Sanjabi and Smith, ICLR 2021).

    "Tilted Empirical Risk Minimization", eq. (2), with per-example losses
    l_i and sample weights w_i (default 1):

        R_t = (1 / t) log( sum_i w_i exp(t l_i) / sum_i w_i )     (t != 0)
        R_0 = sum_i w_i l_i / sum_i w_i                           (the limit t -> 0)

    computed with a log-sum-exp, so large `t * l_i` do not overflow. t > 0
    emphasises the largest losses (fairness, class imbalance; t -> inf is the
    max), t < 0 suppresses them (robustness to outliers; t -> -inf is the min).

    The tilted aggregate *is* the reduction over the batch, so Keras's
    `reduction` argument has nothing to choose: only its default is
    accepted. Under `tf.distribute`, Keras computes a loss on each replica's
    share of the batch and averages the replicas: the tilt is therefore taken
    within each replica's batch (a tilted mean is not additive across
    replicas), as the paper's mini-batch algorithm does per batch.

    Args:
        base_loss: the per-example loss: a `keras.losses.Loss` instance, a
            name ("mean_squared_error", ...) or a function
            `(y_true, y_pred) -> [batch]` (default "mean_squared_error"). A
            `Loss` instance has its `reduction` set to None here, so that it
            returns per-example values. Keras's own wrapper,
            `keras.losses.LossFunctionWrapper`, says `fn` and takes a
            function only; this takes any identifier `keras.losses.get` does.
        tilt: t, a finite real number (default 1.0); 0 gives the weighted mean.
            The paper's name; Keras has no word for it.
        name: the loss's name (default "tilted_loss").
        **kwargs: `keras.losses.Loss` arguments (`dtype`; `reduction` only at
            its default "sum_over_batch_size").

    Call args:
        y_true, y_pred: as `base_loss` takes them (batch first).
        sample_weight: optional per-example weights >= 0, `[batch]` or
            broadcastable to the per-example losses (default: all 1).
            Examples of weight 0 drop out.

    Returns:
        (when called) a float32 scalar: R_t, in the units of `base_loss`.

    Raises:
        ValueError: if `tilt` is not a finite real number, if `reduction` is
            not the default, or (from Keras) if `base_loss` names no loss.

    Example:

    >>> import numpy as np
    >>> from keras_si.losses import TiltedLoss
    >>> y_true, y_pred = np.zeros((4, 1)), np.array([[1.0], [1.0], [1.0], [5.0]])  # per-example MAE 1, 1, 1, 5
    >>> [round(float(TiltedLoss("mean_absolute_error", tilt=t)(y_true, y_pred)), 4) for t in (-50.0, 0.0, 1.0, 50.0)]
    [1.0058, 2.0, 3.6672, 4.9723]
    """

    def __init__(self, base_loss="mean_squared_error", tilt=1.0, name="tilted_loss", **kwargs):
        reduction = kwargs.get("reduction", "sum_over_batch_size")
        if reduction != "sum_over_batch_size":
            raise ValueError("`reduction` has no effect on TiltedLoss (the tilted aggregate is its reduction); "
                             f"leave it at its default. Received: reduction={reduction!r}")
        super().__init__(name=name, **kwargs)
        if isinstance(tilt, bool) or not (isinstance(tilt, numbers.Real) and math.isfinite(tilt)):
            raise ValueError(f"`tilt` must be a finite number. Received: tilt={tilt!r}")
        self.tilt = float(tilt)
        self.base_loss = keras.losses.get(base_loss)
        if isinstance(self.base_loss, keras.losses.Loss):
            self.base_loss.reduction = None  # per-example values

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = ops.cast(ops.reshape(self.base_loss(y_true, y_pred), (-1,)), "float32")
        if sample_weight is None:
            weights = ops.ones_like(losses)
        else:
            weights = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
            weights = ops.broadcast_to(weights, ops.shape(losses))
        total = ops.maximum(ops.sum(weights), 1e-30)
        if self.tilt == 0.0:
            return ops.sum(weights * losses) / total
        # log(sum w exp(t l)) with log w: zero weights drop out (log 0 = -inf).
        log_w = ops.where(weights > 0, ops.log(ops.maximum(weights, 1e-30)), float("-inf"))
        return (ops.logsumexp(self.tilt * losses + log_w) - ops.log(total)) / self.tilt

    def call(self, y_true, y_pred):  # the per-example values (Keras's Loss interface)
        return self.base_loss(y_true, y_pred)

    def get_config(self):
        """`name`, `tilt` and the serialised `base_loss` (Keras's loss contract; `from_config` inverts it).

        Returns:
            dict.
        """
        return {"name": self.name, "tilt": self.tilt,
                "base_loss": keras.losses.serialize(self.base_loss)}

    @classmethod
    def from_config(cls, config):
        """A `TiltedLoss` from `get_config()`'s dict (the base loss deserialised).

        Args:
            config: the dict `get_config` returned.

        Returns:
            TiltedLoss.
        """
        config = dict(config)
        config["base_loss"] = keras.losses.deserialize(config["base_loss"])
        return cls(**config)
