"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) for `model.fit`, with ASAM (Kwon et al., ICML 2021)."""

import keras
from keras import ops

from keras_si import backend
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
    the weights' scale: with the element-wise `T = |w| + adaptive_offset`
    (the paper's `T_w = |w| + eta`),

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
        rho: the radius of the neighbourhood, >= 0 (default 0.05; 0 gives plain training).
        adaptive: ASAM instead of SAM (default False).
        adaptive_offset: ASAM's `eta` in `T = |w| + adaptive_offset`, >= 0
            (default 0.01, the ASAM paper's value; used only if `adaptive`).
            It keeps zero weights perturbable. Renamed from the paper's `eta`,
            which these docs use for the learning rate.
        perturbation: `"replica"` (default) or `"global"`, see above.
        epsilon: added to the norm in the denominator, > 0 (default 1e-12),
            so that a zero gradient gives `e = 0`.
        **kwargs: the other `keras.Model` arguments (e.g. `name`).

    Raises:
        TypeError: `model` is not a `keras.Model`.
        ValueError: a negative or non-finite `rho`/`adaptive_offset`, a
            non-positive `epsilon`, an unknown `perturbation`.
        NotImplementedError: on a Keras backend other than TensorFlow, JAX or
            PyTorch; on JAX, `perturbation="replica"` under a distribution
            over several devices.

    On JAX, Keras differentiates the global batch's loss (also under a
    `keras.distribution` that shards the batch), so `e` is the global one;
    `perturbation="replica"` then raises if a distribution spans several
    devices, and means the same as `"global"` on one device.

    Runs on TensorFlow, JAX and PyTorch (the step of each backend is in
    `keras_si/backend/<name>.py`). PyTorch trains on one device, where the two
    `perturbation`s are the same.
    """

    def __init__(self, model, rho=0.05, adaptive=False, adaptive_offset=0.01, perturbation="replica",
                 epsilon=1e-12, **kwargs):
        backend.current()  # NotImplementedError on a backend that cannot train (numpy)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
        check_positive_number("rho", rho, allow_zero=True)
        check_positive_number("adaptive_offset", adaptive_offset, allow_zero=True)
        check_positive_number("epsilon", epsilon)
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"`perturbation` must be one of {PERTURBATIONS}. Received: {perturbation!r}")
        super().__init__(**kwargs)
        self.model = model
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self.adaptive_offset = float(adaptive_offset)
        self.perturbation = perturbation
        self.epsilon = float(epsilon)
        if model.built:
            self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def ascent(self, gradients, variables):
        """The perturbation `e`, one tensor per variable (zeros where a gradient is None).

        Args:
            gradients: one gradient (tensor or None) per variable.
            variables: `keras.Variable`s or their values (the JAX step passes values).

        Returns:
            A list of tensors, each of its variable's shape.
        """
        # Values, not Variables: jax.numpy cannot take a keras.Variable.
        values = [ops.convert_to_tensor(v) for v in variables]
        grads = [ops.zeros_like(v) if g is None else ops.convert_to_tensor(g) for g, v in zip(gradients, values)]
        if self.adaptive:
            scales = [ops.abs(v) + self.adaptive_offset for v in values]
            grads = [s * g for s, g in zip(scales, grads)]
        norm = _norms.global_norm(grads)
        # A non-finite gradient (an overflow under loss scaling) gives no perturbation.
        factor = ops.where(ops.isfinite(norm), self.rho / (norm + self.epsilon), 0.0)
        if self.adaptive:
            grads = [s * g for s, g in zip(scales, grads)]
        # factor is 0 then, and 0 * inf is nan: those entries become 0 too.
        return [ops.where(ops.isfinite(e), e, 0.0) for e in (factor * g for g in grads)]

    def train_step(self, *args):
        # The TF and PyTorch trainers call train_step(data); the JAX trainer
        # train_step(state, data). Each backend's step is in keras_si/backend/.
        return backend.current().sam_train_step(self, *args)

    def get_config(self):
        config = super().get_config()
        config.update(
            model=keras.saving.serialize_keras_object(self.model),
            rho=self.rho,
            adaptive=self.adaptive,
            adaptive_offset=self.adaptive_offset,
            perturbation=self.perturbation,
            epsilon=self.epsilon,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"], custom_objects=custom_objects)
        return cls(**config)


SAM = SharpnessAwareMinimization
