"""Tilted empirical risk minimisation (Li, Beirami, Sanjabi and Smith, ICLR 2021)."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_si")
class TiltedLoss(keras.losses.Loss):
    """The t-tilted aggregate of any per-example Keras loss.

    "Tilted Empirical Risk Minimization", Li et al., ICLR 2021, eq. (2), with
    per-example losses l_i and sample weights w_i (default 1):

        R_t = (1 / t) log( sum_i w_i exp(t l_i) / sum_i w_i )     (t != 0)
        R_0 = sum_i w_i l_i / sum_i w_i                           (the limit t -> 0)

    computed with a log-sum-exp, so large `t * l_i` do not overflow. t > 0
    emphasises the largest losses (fairness, class imbalance; t -> inf is the
    max), t < 0 suppresses them (robustness to outliers; t -> -inf is the min).

    Under `tf.distribute`, Keras computes a loss on each replica's share of
    the batch and averages the replicas: the tilt is therefore taken within
    each replica's batch (a tilted mean is not additive across replicas), as
    the paper's mini-batch algorithm does per batch.

    Args:
        base_loss: a Keras loss (instance, name or function) giving per-example values.
        tilt: t, a finite float.
    """

    def __init__(self, base_loss="mean_squared_error", tilt=1.0, name="tilted_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if not (isinstance(tilt, (int, float)) and math.isfinite(tilt)):
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
        return {"name": self.name, "tilt": self.tilt,
                "base_loss": keras.losses.serialize(self.base_loss)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base_loss"] = keras.losses.deserialize(config["base_loss"])
        return cls(**config)
