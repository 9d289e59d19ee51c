"""Fine-tuning on GLUE-style TFDS data (tfds.testing.mock_data: no download), and its metrics."""

import os
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds

from official.nlp import finetune, pretrain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt")


def args(**overrides):
    values = dict(model="sibert", config="tiny", vocab_file=VOCAB, init_model_dir=None, tfds_name="glue/mnli",
                  tfds_data_dir=None, train_split="train", eval_split="validation_matched", max_seq_length=32,
                  batch_size=8, epochs=1, max_train_examples=0, learning_rate=1e-3, warmup_fraction=0.1,
                  model_dir=None)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_metrics_against_hand_computed_values():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([1, 0, 0, 0])  # tp=1, fp=1, tn=2, fn=0
    m = finetune.metrics_from_predictions(logits, labels, 2)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["mcc"] == pytest.approx((1 * 2 - 1 * 0) / np.sqrt(2 * 1 * 3 * 2))
    r = finetune.metrics_from_predictions(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 9.0]), None)
    assert r["pearson"] == pytest.approx(np.corrcoef([1, 2, 3, 4], [2, 4, 6, 9])[0, 1])
    assert r["spearman"] == pytest.approx(1.0)


def test_finetune_mnli_from_a_pretraining_checkpoint(tmp_path):
    corpus = os.path.join(ROOT, "official", "nlp", "corpus", "heldout.txt")
    init = str(tmp_path / "pretrain")
    values = {name: pretrain.FLAGS[name].default for name in pretrain.FLAGS if name in pretrain.FLAGS._flags()}
    values.update(model="sibert", config="tiny", vocab_file=VOCAB, text_files=[corpus], global_batch_size=4,
                  max_seq_length=32, max_predictions_per_seq=5, train_steps=2, steps_per_epoch=2, warmup_steps=1,
                  learning_rate=0.5, verbose=0, export=False, model_dir=init)
    pretrained, _ = pretrain.run(types.SimpleNamespace(**values))
    with tfds.testing.mock_data(num_examples=16):
        results = finetune.run(args(init_model_dir=init, model_dir=str(tmp_path / "mnli")))
    assert set(results) >= {"accuracy", "task", "text_features"} and 0.0 <= results["accuracy"] <= 1.0
    assert results["text_features"] == ["hypothesis", "premise"] or results["text_features"] == ["premise", "hypothesis"]
    assert os.path.exists(tmp_path / "mnli" / "eval_results.json")


def test_regression_task(tmp_path):
    with tfds.testing.mock_data(num_examples=16):
        results = finetune.run(args(model="bert", tfds_name="glue/stsb", eval_split="validation",
                                    model_dir=str(tmp_path / "stsb")))
    assert {"pearson", "spearman"} <= set(results)


def test_unprepared_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="not prepared"):
        finetune.run(args(tfds_data_dir=str(tmp_path / "empty"), model_dir=str(tmp_path / "x")))
