"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) for `model.fit`, with ASAM (Kwon et al., ICML 2021)."""

import keras
from keras import ops

from keras_si.optimizers import _norms
from keras_si.optimizers.base import check_positive_number

PERTURBATIONS = ("replica", "global")


@keras.saving.register_keras_serializable(package="keras_si")
class SharpnessAwareMinimization(keras.Model):
    """Wraps a model so that `fit` takes SAM steps with the compiled optimizer.

    "Sharpness-Aware Minimization for Efficiently Improving Generalization",
    Foret, Kleiner, Mobahi and Neyshabur, ICLR 2021, Algorithm 1. Each
    training step on a batch with loss L:

        g  = grad L(w)
        e  = rho * g / ||g||                     (||.|| over all trainable variables)
        g' = grad L(w + e)
        w  <- optimizer step with g' taken from w  (any Keras optimizer)

    With `adaptive=True` it is ASAM ("ASAM: Adaptive Sharpness-Aware
    Minimization for Scale-Invariant Learning of Deep Neural Networks", Kwon,
    Kim, Park and Choi, ICML 2021, Algorithm 1), whose neighbourhood follows
    the weights' scale: with the element-wise `T = |w| + eta`,

        e = rho * T^2 g / ||T g||

    (ASAM's authors use rho 0.5 to 2 where SAM uses 0.05.) This applies `T` to
    every trainable variable, biases included; the authors' code leaves biases
    out (T = 1 for them).

    What the two passes do to state (the known traps of SAM):
    - The reported loss and metrics are those of the first pass, at `w`.
    - Batch-norm statistics and other non-trainable state are updated by the
      first pass only: the second pass at `w + e` runs with `training=True`
      (so dropout and batch statistics behave as in training) and its updates
      are dropped. Random-seed states are the exception and advance, so the two
      passes draw different dropout masks and the next step does not repeat
      this one's.
    - The variables keep `w`: the second pass reads `w + e` in their place
      (a `keras.StatelessScope`), so nothing has to be subtracted back.
    - Under `mixed_float16` (Keras wraps the optimizer in a
      `LossScaleOptimizer`), `e` uses the direction of the scaled gradient,
      which the loss scale does not change; a non-finite first gradient gives
      `e = 0`, and the optimizer then skips the step as usual.

    Under `tf.distribute`, `perturbation` says which gradient defines `e`:
    - `"replica"` (default): each replica perturbs with its own batch's
      gradient: the paper's m-sharpness with m the per-replica batch size
      (Section 4.1 and Appendix C.3: smaller m generalizes better, and this is
      how the paper ran SAM on many accelerators). No extra communication.
    - `"global"`: `e` from the all-reduced gradient of the whole global batch,
      so the step equals one-device SAM on that batch (one more all-reduce of
      the gradients per step).
    On one device the two are the same. The second gradients `g'` are always
    averaged over replicas by the optimizer, as in any step.

    Cost: two forward and backward passes per step, and memory for `w + e`.

    Example:

        model = keras.Sequential([...])
        sam = keras_si.SharpnessAwareMinimization(model, rho=0.05)
        sam.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        sam.fit(x, y)          # `model` is trained in place; sam(x) == model(x)

    Args:
        model: the `keras.Model` to train.
        rho: the radius of the neighbourhood, >= 0 (0 gives plain training).
        adaptive: ASAM instead of SAM.
        eta: ASAM's offset in `T = |w| + eta`, >= 0 (used only if `adaptive`).
        perturbation: `"replica"` or `"global"`, see above.
        eps: added to the norm in the denominator, > 0, so that a zero gradient gives `e = 0`.

    On JAX, Keras differentiates the global batch's loss (also under a
    `keras.distribution` that shards the batch), so `e` is the global one;
    `perturbation="replica"` then raises if a distribution spans several
    devices, and means the same as `"global"` on one device.

    Implemented for the TensorFlow and JAX backends.
    """

    def __init__(self, model, rho=0.05, adaptive=False, eta=0.01, perturbation="replica",
                 eps=1e-12, **kwargs):
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise NotImplementedError(
                "SharpnessAwareMinimization implements its training step for the TensorFlow and JAX "
                f"backends; the Keras backend is {keras.backend.backend()!r}."
            )
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
        check_positive_number("rho", rho, allow_zero=True)
        check_positive_number("eta", eta, allow_zero=True)
        check_positive_number("eps", eps)
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"`perturbation` must be one of {PERTURBATIONS}. Received: {perturbation!r}")
        super().__init__(**kwargs)
        self.model = model
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self.eta = float(eta)
        self.perturbation = perturbation
        self.eps = float(eps)
        if model.built:
            self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def ascent(self, gradients, variables):
        """The perturbation `e`, one tensor per variable (zeros where a gradient is None)."""
        grads = [ops.zeros_like(v) if g is None else ops.convert_to_tensor(g)
                 for g, v in zip(gradients, variables)]
        if self.adaptive:
            scales = [ops.abs(v) + self.eta for v in variables]
            grads = [s * g for s, g in zip(scales, grads)]
        norm = _norms.global_norm(grads)
        # A non-finite gradient (an overflow under loss scaling) gives no perturbation.
        factor = ops.where(ops.isfinite(norm), self.rho / (norm + self.eps), 0.0)
        if self.adaptive:
            grads = [s * g for s, g in zip(scales, grads)]
        # factor is 0 then, and 0 * inf is nan: those entries become 0 too.
        return [ops.where(ops.isfinite(e), e, 0.0) for e in (factor * g for g in grads)]

    def _seed_states(self):
        return [sg.state for layer in self._flatten_layers() for sg in getattr(layer, "_seed_generators", [])]

    def _loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return y_pred, loss

    def train_step(self, *args):
        # The TF trainer calls train_step(data); the JAX trainer train_step(state, data).
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def _jax_train_step(self, state, data):
        """The same step, stateless, as Keras's JAX trainer runs it (`keras/src/backend/jax/trainer.py`)."""
        import jax

        distribution = keras.distribution.distribution()
        devices = 1 if distribution is None else len(distribution.device_mesh.devices.flat)
        if self.perturbation == "replica" and devices > 1:
            raise NotImplementedError(
                "perturbation='replica' (m-sharpness per device) is not implemented on JAX, where Keras "
                "differentiates the global batch's loss; use perturbation='global'."
            )
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)

        # First pass, at w: loss, predictions, and the non-trainable updates kept.
        (_, aux), grads = grad_fn(trainable, non_trainable, metrics_vars, x, y, sample_weight,
                                  training=True, optimizer_variables=optimizer_vars)
        unscaled_loss, y_pred, non_trainable, metrics_vars = aux
        e = self.ascent(grads, trainable)

        # Second pass, at w + e: only its gradients and its random-seed states are kept.
        perturbed = [w + ops.cast(d, w.dtype) for w, d in zip(trainable, e)]
        (_, aux), perturbed_grads = grad_fn(perturbed, non_trainable, metrics_vars, x, y, sample_weight,
                                            training=True, optimizer_variables=optimizer_vars)
        seeds = {id(seed_state) for seed_state in self._seed_states()}
        non_trainable = [after if id(v) in seeds else kept
                         for v, kept, after in zip(self.non_trainable_variables, non_trainable, aux[2])]

        trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, perturbed_grads, trainable)
        logs, metrics_vars = self._update_metrics_variables(metrics_vars, unscaled_loss, x, y, y_pred, sample_weight)
        return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

    def _tf_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables

        # First pass, at w: the step's loss, metrics and state updates, as in Keras's own train_step.
        with tf.GradientTape() as tape:
            y_pred, loss = self._loss(x, y, sample_weight)
            batch = tf.shape(next(t for t in keras.tree.flatten(x) if t is not None))[0]
            self._loss_tracker.update_state(
                keras.src.losses.loss.unscale_loss_for_distribution(loss), sample_weight=batch
            )
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        if self.perturbation == "global":
            grads = _norms.all_reduce_sum(grads)
        e = self.ascent(grads, variables)

        # Second pass, at w + e, without touching the variables: the stateless
        # scope reads w + e in their place and records, instead of applying, the
        # assignments of the pass (batch-norm statistics, metrics). Writing w + e
        # into the variables would not do: under MirroredStrategy an assignment
        # in replica context is averaged across replicas, which would erase the
        # per-replica perturbations.
        perturbed = [v.value + ops.cast(d, v.dtype) for v, d in zip(variables, e)]
        with tf.GradientTape() as tape:
            tape.watch(perturbed)
            with keras.StatelessScope(state_mapping=list(zip(variables, perturbed)),
                                      collect_losses=True) as scope:
                _, perturbed_loss = self._loss(x, y, sample_weight)
                perturbed_scaled = self.optimizer.scale_loss(perturbed_loss)
        perturbed_grads = tape.gradient(perturbed_scaled, perturbed)
        # Of the recorded updates only the random seeds move on, so that the
        # next step's dropout masks differ from this second pass's.
        for state in self._seed_states():
            new = scope.get_current_value(state)
            if new is not None:
                state.assign(new)

        self.optimizer.apply_gradients(zip(perturbed_grads, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            model=keras.saving.serialize_keras_object(self.model),
            rho=self.rho,
            adaptive=self.adaptive,
            eta=self.eta,
            perturbation=self.perturbation,
            eps=self.eps,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"], custom_objects=custom_objects)
        return cls(**config)


SAM = SharpnessAwareMinimization
