"""Exports a pretrainer as one SavedModel: tokenizer, vocabulary (an asset) and weights.

    python -m official.nlp.export --model_dir=runs/demo --export_dir=runs/demo/export

Signatures:
- `serving_default` (`serve_text`): `text` string `[batch]` (or one string,
  served as a batch of one; more dimensions are an error) -> the masked-LM
  predictions at every `[MASK]` in the text (`predicted_ids`,
  `predicted_tokens`, `masked_positions`, `num_masks`; the `top_k` most
  likely tokens with their probabilities: `top_k_ids`, `top_k_tokens`,
  `top_k_probabilities`, `[batch, max_predictions, top_k]`) and the encoder's
  `sequence_output`. The text is lower-cased and WordPiece-tokenized inside
  the graph; `[CLS] text [SEP]`, padded or truncated to `max_seq_length`.
- `serve_ids`: the model's own int32 inputs -> `mlm_logits`, `nsp_logits`,
  `sequence_output`.

Reload with `tf.saved_model.load(path)` after `import tensorflow_text` (which
registers the tokenizer's ops); no keras_si or official import is needed.
"""

import os
import sys

if __name__ == "__main__":  # TensorFlow logs when imported: its C++ log level must be set before
    from official.common.cli import quiet_native_logs

    quiet_native_logs(sys.argv)

import tensorflow as tf  # noqa: E402
import tensorflow_text as tf_text  # noqa: E402
from absl import app, flags  # noqa: E402

from official.nlp.data.vocab import UNK, Vocab  # noqa: E402


class PretrainerServing(tf.Module):
    def __init__(self, model, vocab_file, max_seq_length, max_predictions, top_k=5):
        super().__init__()
        vocab = Vocab(vocab_file)  # checks the special tokens
        if not 1 <= top_k <= len(vocab):
            raise ValueError(f"top_k must be in [1, vocabulary size {len(vocab)}]. Received: {top_k}")
        self.top_k = top_k
        self.model = model
        self.vocab_asset = tf.saved_model.Asset(vocab_file)
        self.max_seq_length = max_seq_length
        self.max_predictions = max_predictions
        self.cls_id, self.sep_id, self.mask_id, self.pad_id = vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.pad_id
        ids = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(self.vocab_asset, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            num_oov_buckets=1)
        self.tokens = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(self.vocab_asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                                          tf.string, tf.lookup.TextFileIndex.WHOLE_LINE), default_value=UNK)
        self.tokenizer = tf_text.BertTokenizer(ids, token_out_type=tf.int64, lower_case=True, unknown_token=UNK)

    def _encode(self, text):
        # The WordPiece tokenizer would split "[MASK]" into "[", "mask", "]": tokenize the
        # pieces between the masks and put the [MASK] id back between them.
        parts = tf.strings.split(text, sep="[MASK]")
        pieces = self.tokenizer.tokenize(parts.flat_values).merge_dims(-2, -1)
        mask = tf.fill([tf.shape(parts.flat_values)[0], 1], tf.constant(self.mask_id, tf.int64))
        pieces = tf.concat([pieces, mask], axis=1)
        tokens = tf.RaggedTensor.from_row_lengths(pieces, parts.row_lengths()).merge_dims(1, 2)[:, :-1]
        tokens = tokens[:, : self.max_seq_length - 2]
        n = tf.shape(text)[0]
        cls = tf.fill([n, 1], tf.constant(self.cls_id, tf.int64))
        sep = tf.fill([n, 1], tf.constant(self.sep_id, tf.int64))
        ids = tf.concat([cls, tokens, sep], axis=1)
        ids = ids.to_tensor(default_value=self.pad_id, shape=[None, self.max_seq_length])
        ids = tf.cast(ids, tf.int32)
        mask = tf.cast(ids != self.pad_id, tf.int32)
        is_mask = ids == self.mask_id
        positions = tf.ragged.boolean_mask(tf.broadcast_to(tf.range(self.max_seq_length), tf.shape(ids)), is_mask)
        positions = positions[:, : self.max_predictions].to_tensor(default_value=0, shape=[None, self.max_predictions])
        return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": tf.zeros_like(ids),
                "masked_lm_positions": positions}, tf.minimum(tf.reduce_sum(tf.cast(is_mask, tf.int32), 1),
                                                              self.max_predictions)

    # Any shape, so that one string (a scalar) is a batch of one rather than an error deep in the tokenizer.
    @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="text")])
    def serve_text(self, text):
        tf.debugging.assert_rank_in(text, [0, 1], message="text must be one string or a 1-D batch of strings")
        text = tf.reshape(text, [-1])
        inputs, num_masks = self._encode(text)
        out = self.model(inputs, training=False)
        top_p, top_ids = tf.math.top_k(tf.nn.softmax(out["mlm"], axis=-1), k=self.top_k)
        top_tokens = self.tokens.lookup(tf.cast(top_ids, tf.int64))
        return {
            "predicted_ids": top_ids[..., 0],
            "predicted_tokens": top_tokens[..., 0],
            "top_k_ids": top_ids,
            "top_k_tokens": top_tokens,
            "top_k_probabilities": top_p,
            "masked_positions": inputs["masked_lm_positions"],
            "num_masks": num_masks,
            "sequence_output": tf.cast(self.model.encoder({k: inputs[k] for k in
                                                           ("input_word_ids", "input_mask", "input_type_ids")},
                                                          training=False), tf.float32),
        }

    def serve_ids_fn(self):
        spec = {k: tf.TensorSpec([None, self.max_seq_length], tf.int32, name=k)
                for k in ("input_word_ids", "input_mask", "input_type_ids")}
        spec["masked_lm_positions"] = tf.TensorSpec([None, self.max_predictions], tf.int32,
                                                    name="masked_lm_positions")

        @tf.function(input_signature=[spec])
        def serve_ids(inputs):
            out = self.model(inputs, training=False)
            result = {"mlm_logits": out["mlm"], "sequence_output": tf.cast(self.model.encoder(
                {k: inputs[k] for k in ("input_word_ids", "input_mask", "input_type_ids")}, training=False),
                tf.float32)}
            if "nsp" in out:
                result["nsp_logits"] = out["nsp"]
            return result

        return serve_ids


def export_pretrainer(model, vocab_file, export_dir, max_seq_length, max_predictions_per_seq, top_k=5):
    """Writes the SavedModel to `export_dir` (to a temporary name first, then renamed)."""
    module = PretrainerServing(model, vocab_file, max_seq_length, max_predictions_per_seq, top_k)
    serve_ids = module.serve_ids_fn()
    module.serve_ids = serve_ids
    tmp = export_dir.rstrip("/") + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve_text, "serve_ids": serve_ids})
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)
    return export_dir


def export_run(model_dir, export_dir=None):
    """Exports the latest checkpoint of the pretraining run in `model_dir`, rebuilt from its model_config.json.

    Returns:
        The export directory (default `<model_dir>/export`).

    Raises:
        ValueError: one line naming --model_dir: not a run directory, no
            checkpoint, or a checkpoint that does not fit its config.
    """
    from official.nlp import model_config

    config = model_config.load(model_dir)
    pretrainer = model_config.build_pretrainer(config)
    model_config.restore_weights(pretrainer, model_dir)
    out = export_dir or os.path.join(model_dir, "export")
    export_pretrainer(pretrainer, config.vocab_file, out, config.max_seq_length, config.max_predictions_per_seq)
    return out


def main(argv):
    del argv
    from official.common import cli
    from official.nlp.flags import FLAGS

    cli.set_log_level(FLAGS.log_level)
    out = cli.run_reporting_input_errors(export_run, FLAGS.model_dir, FLAGS.export_dir)
    print(f"Exported {FLAGS.model_dir} to {out}")


if __name__ == "__main__":
    from official.nlp import flags as nlp_flags

    nlp_flags.define_export_flags()
    flags.mark_flags_as_required(["model_dir"])
    app.run(main)
