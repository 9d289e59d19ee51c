"""The optimizers of pretraining: the paper's for SIBERT, the Model Garden's for BERT."""

import re

import keras

import keras_si
from official.nlp.configs import EMBEDDING_TABLES, check_warmup


def sibert_optimizer(model, train_steps, learning_rate=8e-4, weight_decay=1e-2, clip_factor=2.0,
                     head_learning_rate=8e-4, head_warmup_steps=10000, decay_at=(0.6, 0.9),
                     embedding_tables="sgdclip"):
    """SGDClip on the scale-invariant encoder, Lamb on the heads (Li et al., ICML 2022, Section 5).

    Encoder (`keras_si.scale_invariant_variables`): SGDClip at a constant
    learning rate, no warm-up, divided by 10 at each fraction of `train_steps`
    in `decay_at` (the paper: 60% and 90%).

    Heads: linear warm-up then linear decay to 0. Their matrices on Keras's
    Lamb; their biases and normalisation parameters (every head variable of
    rank <= 1) on Adam with Lamb's betas and epsilon, i.e. Lamb without the
    layer adaptation, as the LAMB paper's implementation and the Model Garden
    exclude them. Keras's Lamb applies its trust ratio ||w|| / ||update|| to
    every variable, so a zero-initialised bias moves by the learning rate once
    and then in proportion to its own tiny norm: it stays near zero.

    Embedding tables (`embedding_tables`): "sgdclip" (the paper's recipe: they
    are part of the scale-invariant group), "adam" (the heads' Adam) or "lamb"
    (the heads' Lamb). Under SGD + weight decay every row decays at every step
    but only the rows looked up get a gradient, so the rows of rare tokens
    shrink towards 0 (3-5x smaller than the position rows at 2,000 steps on the
    shipped corpus), and from a small initialisation they never grow back;
    Adam's per-coordinate steps do not have that bias. Lamb's steps are relative
    to each table's norm, so the tables then train alike from any
    initialisation scale (Adam's fixed-size steps barely move a table
    initialised 100x too large). SGDClip's norms and clipping are then over the
    rest of the group (the model stays invariant to scaling the whole group;
    SGDClip's equilibrium analysis covers its part). Measured in
    docs/sgdclip.md and docs/reproduction.md.

    Returns:
        A `keras.optimizers.MultiOptimizer` over three optimizers named
        "encoder_sgdclip", "head_lamb" and "head_adam" (the variable paths of
        each group are written into its config).

    Raises:
        ValueError: if the model has no scale-invariant variable.
    """
    boundaries = [int(f * train_steps) for f in decay_at]
    values = [learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
    si_lr = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else learning_rate
    encoder = keras_si.SGDClip(si_lr, weight_decay=weight_decay, clip_factor=clip_factor, name="encoder_sgdclip")
    si, rest = keras_si.scale_invariant_variables(model)
    if not si:
        raise ValueError(f"Model {model.name!r} has no variables in a layer marked as scale invariant.")
    if embedding_tables not in EMBEDDING_TABLES:
        raise ValueError(f"`embedding_tables` must be one of {EMBEDDING_TABLES}. Received: {embedding_tables!r}")
    lamb, adam = _head_optimizers(train_steps, head_learning_rate, head_warmup_steps)
    vectors = [v for v in rest if len(v.shape) <= 1]
    if embedding_tables != "sgdclip":
        tables = embedding_table_variables(si)
        si = [v for v in si if all(v is not t for t in tables)]
        if embedding_tables == "adam":
            vectors += tables  # Adam's route; the rest (the tables when "lamb") falls to Lamb, the default
    routes = {_exact_paths(si): encoder}
    if vectors:
        routes[_exact_paths(vectors)] = adam
    return keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(lamb, routes))


def embedding_table_variables(variables):
    """The embedding tables (word, position, type) among `variables`: rank 2, named "*embedding*"."""
    return [v for v in variables if len(v.shape) == 2 and "embedding" in v.path.rsplit("/", 1)[-1]]


def heads_optimizer(model, train_steps, head_learning_rate=8e-4, head_warmup_steps=10000):
    """The heads' part of `sibert_optimizer` alone, for every trainable variable of `model`.

    For a model whose encoder is frozen (`model.encoder.trainable = False`, or
    its variables' `trainable` set to False, all but the embedding tables if
    they are to train): the heads-only controls of examples/reproduce_paper.py,
    which tell an encoder that learns from one that is merely frozen at its
    initialisation.

    Returns:
        A `keras.optimizers.MultiOptimizer`: Lamb on matrices, Adam on vectors.
    """
    lamb, adam = _head_optimizers(train_steps, head_learning_rate, head_warmup_steps)
    vectors = [v for v in model.trainable_variables if len(v.shape) <= 1]
    routes = {_exact_paths(vectors): adam} if vectors else {}
    return keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(lamb, routes))


def _head_optimizers(train_steps, head_learning_rate, head_warmup_steps):
    """(Lamb, Adam with Lamb's betas and epsilon), both warming up linearly then decaying linearly to 0."""
    head_lr = keras_si.schedules.LinearWarmup(
        keras.optimizers.schedules.PolynomialDecay(head_learning_rate, max(train_steps, 1), 0.0),
        warmup_steps=check_warmup(head_warmup_steps, train_steps, "`head_warmup_steps`"),
    )
    lamb = keras.optimizers.Lamb(head_lr, name="head_lamb")
    adam = keras.optimizers.Adam(head_lr, beta_1=lamb.beta_1, beta_2=lamb.beta_2, epsilon=lamb.epsilon,
                                 name="head_adam")
    return lamb, adam


def _exact_paths(variables):
    """A regular expression matching exactly these variables' paths (OptimizerMap uses re.fullmatch)."""
    return "|".join(re.escape(v.path) for v in variables)


def bert_optimizer(train_steps, learning_rate=1e-4, weight_decay=1e-2, warmup_steps=10000):
    """AdamW, linear warm-up then linear decay, no decay of LayerNorm and biases (as the Model Garden)."""
    lr = keras_si.schedules.LinearWarmup(
        keras.optimizers.schedules.PolynomialDecay(learning_rate, max(train_steps, 1), 0.0),
        warmup_steps=check_warmup(warmup_steps, train_steps),
    )
    opt = keras.optimizers.AdamW(lr, weight_decay=weight_decay, epsilon=1e-6)
    opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return opt


def pretraining_losses():
    """Masked-LM loss averaged over the real predictions (weights), plus next-sentence loss."""
    return {
        "mlm": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
        "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    }


def pretraining_metrics():
    """(metrics, weighted_metrics) for compile: MLM accuracy over real predictions, NSP accuracy."""
    return ({"nsp": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
            {"mlm": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]})


def current_learning_rates(optimizer):
    """{name: current learning rate} of an optimizer or of each sub-optimizer (for logging)."""
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        return current_learning_rates(inner)
    if isinstance(optimizer, keras.optimizers.MultiOptimizer):
        rates = {}
        for opt in optimizer.optimizers:
            rates.update(current_learning_rates(opt))
        return rates
    lr = optimizer._get_current_learning_rate()
    return {f"lr/{optimizer.name}": float(keras.ops.convert_to_numpy(lr))}


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate(s) to the logs (progress bar, TensorBoard)."""

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None and self.model.optimizer.built:
            logs.update(current_learning_rates(self.model.optimizer))

    on_epoch_end = on_train_batch_end
