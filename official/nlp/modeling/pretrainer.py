"""The pretraining model: an encoder (SIBERT or BERT) with masked-LM and next-sentence heads."""

import keras

from official.nlp.modeling.bert import BertEncoder
from official.nlp.modeling.configs import EncoderConfig
from official.nlp.modeling.heads import MaskedLMHead, NextSentenceHead
from official.nlp.modeling.sibert import SIBertEncoder

MODELS = ("sibert", "bert")
FEATURES = ("input_word_ids", "input_mask", "input_type_ids", "masked_lm_positions")
# The records' features that are the heads' labels and weights (`pretraining_targets`).
TARGET_FEATURES = ("masked_lm_ids", "masked_lm_weights", "next_sentence_labels")


@keras.saving.register_keras_serializable(package="official")
class Pretrainer(keras.Model):
    """Takes BERT's pretraining features, returns `{"mlm": logits, "nsp": logits}` (float32).

    Inputs: a dict of int `[batch, seq]` `input_word_ids`, `input_mask`,
    `input_type_ids` and `[batch, predictions]` `masked_lm_positions`.
    Outputs: `mlm` `[batch, predictions, vocab]`, and with `use_nsp`
    `nsp` `[batch, 2]` (class 1 = segment B is random, as in BERT's records).

    For `model="sibert"` the encoder is the scale-invariant group and the
    heads are not (their output projection is untied); for `model="bert"`
    the masked-LM projection is tied to the token embeddings, as in BERT.
    """

    def __init__(self, model="sibert", config=None, use_nsp=True, **kwargs):
        super().__init__(**kwargs)
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}. Received: {model!r}")
        self.model_type = model
        config = config or EncoderConfig()
        self.encoder_config = config if isinstance(config, EncoderConfig) else EncoderConfig.from_dict(config)
        self.use_nsp = use_nsp
        c = self.encoder_config
        encoder_cls = SIBertEncoder if model == "sibert" else BertEncoder
        self.encoder = encoder_cls(c, name=f"{model}_encoder")
        self.mlm_head = MaskedLMHead(c.vocab_size, tied=(model == "bert"), initializer_std=c.initializer_std,
                                     name="mlm_head")
        self.nsp_head = NextSentenceHead(c.initializer_std, name="nsp_head") if use_nsp else None

    def build(self, input_shape):
        ids_shape = tuple(input_shape["input_word_ids"])
        self.encoder.build({k: ids_shape for k in ("input_word_ids", "input_mask", "input_type_ids")})
        sequence_shape = ids_shape + (self.encoder_config.hidden_dim,)
        self.mlm_head.build(sequence_shape, tuple(input_shape["masked_lm_positions"]))
        if self.nsp_head is not None:
            self.nsp_head.build(sequence_shape)
        self.built = True

    def call(self, inputs, training=None):
        missing = [k for k in FEATURES if k not in inputs]
        if missing:
            raise ValueError(f"Pretrainer inputs lack {missing}; expected the features {list(FEATURES)}.")
        sequence = self.encoder(
            {k: inputs[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}, training=training
        )
        table = self.encoder.word_embeddings if self.model_type == "bert" else None
        outputs = {"mlm": self.mlm_head(sequence, inputs["masked_lm_positions"], table)}
        if self.use_nsp:
            outputs["nsp"] = self.nsp_head(sequence)
        return outputs

    # `*args`: the TensorFlow trainer passes `(data,)`, the JAX one `(state, data)`
    # and returns `(logs, state)`, which the multi-worker fix (TensorFlow only) leaves alone.
    # The data is a batch of record features or an `(inputs, labels, sample_weights)` triple.
    def train_step(self, *args):
        args = args[:-1] + (_as_targets(args[-1]),)
        return _per_replica_logs_for_multi_worker(self, super().train_step(*args))

    def test_step(self, *args):
        args = args[:-1] + (_as_targets(args[-1]),)
        return _per_replica_logs_for_multi_worker(self, super().test_step(*args))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 (TF backend) reduces the first distributed batch with
        # `strategy.reduce("MEAN", batch, axis=None)`, the whole nested (x, y, weights)
        # in one call, which MultiWorkerMirroredStrategy cannot do (it tries to convert
        # the structure to one tensor: "Attempt to convert a value ({'input_word_ids':
        # PerReplica..."). Only the batch's structure and shapes matter for the
        # symbolic build, so hand Keras one replica's part instead.
        if iterator is None or keras.backend.backend() != "tensorflow" or self._distribute_strategy is None:
            data_batch = None if data_batch is None else _as_targets(data_batch)
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        import tensorflow as tf

        for _, _, it in iterator:
            batch = next(it)
            break
        local = keras.tree.map_structure(
            lambda x: self._distribute_strategy.experimental_local_results(x)[0]
            if isinstance(x, tf.distribute.DistributedValues) else x,
            batch,
        )
        return super()._maybe_symbolic_build(data_batch=_as_targets(local))

    def get_config(self):
        config = super().get_config()
        config.update(model=self.model_type, config=self.encoder_config.to_dict(), use_nsp=self.use_nsp)
        return config


def pretraining_targets(features):
    """A batch of pretraining records' features -> `(inputs, labels, sample_weights)` for the Pretrainer's heads.

    The one place where the records' names (`official.nlp.data.records`) meet
    the heads': `masked_lm_ids` (weighted by `masked_lm_weights`) are the
    `"mlm"` head's labels, `next_sentence_labels` the `"nsp"` head's (every
    sequence weighted 1: Keras wants a weight for every output once one has
    weights). `Pretrainer.fit`/`evaluate` call it on feature batches, so a
    dataset of features can be given to them as it is.

    Args:
        features: a dict of `[batch, length]` arrays or tensors named as the
            records' features (int ids, float `masked_lm_weights`).

    Returns:
        `(inputs, labels, sample_weights)`: inputs are the four `FEATURES`;
        labels `{"mlm": [batch, P], "nsp": [batch]}`; weights likewise (float32).

    Example:
        >>> f = {k: np.zeros((2, 1), "int32") for k in ("input_word_ids", "input_mask", "input_type_ids",
        ...      "masked_lm_positions", "masked_lm_ids", "next_sentence_labels")}
        >>> f["masked_lm_weights"] = np.ones((2, 1), "float32")
        >>> x, y, w = pretraining_targets(f)
        >>> tuple(y["nsp"].shape), tuple(w["nsp"].shape)
        ((2,), (2,))
    """
    missing = [k for k in FEATURES + TARGET_FEATURES if k not in features]
    if missing:
        raise ValueError(f"Pretraining features lack {missing}; expected {list(FEATURES + TARGET_FEATURES)}.")
    nsp = keras.ops.reshape(features["next_sentence_labels"], (-1,))
    inputs = {k: features[k] for k in FEATURES}
    labels = {"mlm": features["masked_lm_ids"], "nsp": nsp}
    weights = {"mlm": features["masked_lm_weights"], "nsp": keras.ops.ones_like(nsp, "float32")}
    return inputs, labels, weights


def _as_targets(data):
    """A batch of record features -> `pretraining_targets`; an `(x, y, w)` batch is returned as it is."""
    if isinstance(data, dict) and "masked_lm_ids" in data:
        return pretraining_targets(data)
    return data


def _in_multi_worker_mode(strategy):
    """Keras's own test (`_collective_all_reduce_multi_worker` in its TF trainer) for its multi-worker branch."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def _per_replica_logs_for_multi_worker(model, logs):
    """Makes a train/test step's scalar logs survive Keras 3.15's multi-worker reduction.

    Keras 3.15's TF trainer reduces what a step returns with
    `reduce_per_replica(..., reduction="mean")`. With one worker it takes
    `tf.reduce_mean(local_results, axis=0)`, axis 0 being the replicas; in
    multi-worker mode it calls `strategy.reduce("MEAN", v, axis=0)` instead,
    where `axis` means a dimension *of each replica's value*, so every scalar
    log (loss, metric results) fails with "Invalid reduction dimension 0 for
    input with 0 dimensions" (tensorflow/tensorflow#72388). Giving each scalar a
    length-1 axis 0 makes that call what Keras meant: per replica the sum over
    the one element and a count of 1, summed over all replicas of all workers,
    i.e. the mean over replicas, returned as a scalar again. Only in the mode
    that takes that branch; one device, MirroredStrategy and TPUs are untouched.
    """
    if keras.backend.backend() != "tensorflow" or not _in_multi_worker_mode(model.distribute_strategy):
        return logs
    import tensorflow as tf

    return keras.tree.map_structure(
        lambda v: tf.reshape(v, [1]) if tf.is_tensor(v) and v.shape.rank == 0 else v, logs
    )


def scale_initialization(pretrainer, scale):
    """Multiplies the initial weights of the part that Figure 1 of the paper rescales by `scale`.

    SIBERT: exactly its scale-invariant group (`keras_si.scale_invariant_variables`,
    the encoder with its embedding normalisation's gain and bias), so the
    function it computes is unchanged and only the weight norm is multiplied by
    `scale`. BERT: every encoder weight (LayerNorm gains included), which changes
    its function: that is the paper's point. The heads keep their initialisation.

    Args:
        pretrainer: a built `Pretrainer`.
        scale: a float > 0.

    Returns:
        The list of variables that were multiplied.

    Raises:
        ValueError: if `scale` is not > 0 or the pretrainer is not built.
    """
    import keras_si

    if not scale > 0:
        raise ValueError(f"The initialisation scale must be > 0. Received: {scale}")
    if not pretrainer.built:
        raise ValueError("scale_initialization needs a built Pretrainer (call it on dummy_features first).")
    if pretrainer.model_type == "sibert":
        variables, _ = keras_si.scale_invariant_variables(pretrainer)
    else:
        variables = list(pretrainer.encoder.trainable_variables)
    if scale != 1:
        for v in variables:
            v.assign(v * scale)
    return variables


def dummy_features(batch_size, seq_length, predictions, vocab_size, seed=0):
    """Random but well-formed pretraining features (for building and tests)."""
    import numpy as np

    rng = np.random.RandomState(seed)
    lengths = rng.randint(seq_length // 2, seq_length + 1, size=batch_size)
    mask = (np.arange(seq_length)[None, :] < lengths[:, None]).astype("int32")
    ids = rng.randint(5, vocab_size, size=(batch_size, seq_length)).astype("int32") * mask
    types = ((np.arange(seq_length)[None, :] >= lengths[:, None] // 2) * mask).astype("int32")
    positions = np.sort(
        np.stack([rng.choice(np.arange(1, lengths[i]), size=predictions, replace=False) for i in range(batch_size)]),
        axis=1,
    ).astype("int32")
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types, "masked_lm_positions": positions}
