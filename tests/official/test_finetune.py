"""Fine-tuning on GLUE-style TFDS data (tfds.testing.mock_data: no download), and its metrics."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from official.nlp import finetune, pretrain
from official.nlp.configs import FinetuneConfig, PretrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt")


def args(**overrides):
    values = dict(model="sibert", config="tiny", vocab_file=VOCAB, tfds_name="glue/mnli", max_seq_length=32,
                  batch_size=8, epochs=1, learning_rate=1e-3, verbose=0)
    values.update(overrides)
    return FinetuneConfig(**values)


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
    pretrained, _ = pretrain.run(PretrainConfig(
        model="sibert", config="tiny", vocab_file=VOCAB, text_files=[corpus], global_batch_size=4, max_seq_length=32,
        max_predictions_per_seq=5, train_steps=2, steps_per_epoch=2, warmup_steps=1, learning_rate=0.5, verbose=0,
        export=False, model_dir=init))
    with tfds.testing.mock_data(num_examples=16):
        results = finetune.run(args(init_model_dir=init, model=None, config=None, vocab_file=None,
                                    model_dir=str(tmp_path / "mnli")))
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


GLUE_MNLI = (  # GLUE's MNLI layout: 12 columns, an unbalanced quotation mark that a CSV reader would run on with
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    '0\t1\t1e\tgov\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tThe "module is imported once.\tIt is imported.\t'
    "entailment\tentailment\n"
    "1\t2\t2n\tgov\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tA list is mutable.\tLists are fast.\tneutral\tneutral\n"
    "2\t3\t3c\tgov\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tA tuple is immutable.\tTuples change.\t"
    "contradiction\tcontradiction\n"
)


def test_glue_tsv_csv_and_jsonl_read_the_same_examples(tmp_path):
    from official.nlp.data import labelled_text

    (tmp_path / "train.tsv").write_text(GLUE_MNLI * 1, encoding="utf-8")
    texts, y, labels = labelled_text.load_examples(str(tmp_path / "train.tsv"), ["sentence1", "sentence2"],
                                                   "gold_label")
    assert labels == ["contradiction", "entailment", "neutral"] and y == [1, 2, 0]
    assert texts[0][0] == 'The "module is imported once.' and texts[1][2] == "Tuples change."
    import csv
    import json

    with open(tmp_path / "train.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sentence1", "sentence2", "gold_label"])
        w.writerows(zip(texts[0], texts[1], ["entailment", "neutral", "contradiction"]))
    with open(tmp_path / "train.jsonl", "w", encoding="utf-8") as fh:
        for a, b, label in zip(texts[0], texts[1], ["entailment", "neutral", "contradiction"]):
            fh.write(json.dumps({"sentence1": a, "sentence2": b, "gold_label": label}) + "\n")
    for name in ("train.csv", "train.jsonl"):
        assert labelled_text.load_examples(str(tmp_path / name), ["sentence1", "sentence2"], "gold_label") == \
            (texts, y, labels)
    # CoLA's files have no header: columns by number.
    (tmp_path / "cola.tsv").write_text("gj04\t1\t\tThe book was read.\ngj04\t0\t*\tRead book the was.\n")
    texts, y, labels = labelled_text.load_examples(str(tmp_path / "cola.tsv"), ["3"], "1")
    assert texts == [["The book was read.", "Read book the was."]] and y == [1, 0] and labels == ["0", "1"]
    # Regression (STS-B's score).
    (tmp_path / "stsb.jsonl").write_text('{"s": "a b", "score": 4.5}\n{"s": "c", "score": "0.25"}\n')
    assert labelled_text.load_examples(str(tmp_path / "stsb.jsonl"), ["s"], "score", regression=True)[1] == [4.5, 0.25]


@pytest.mark.parametrize("content,fields,label,match", [
    ("sentence\tlabel\na\tx\nb\ty\n", ["text"], "label", r"no column 'text'; the header has \['sentence', 'label'\]"),
    ("sentence\tlabel\na\tx\n", ["sentence"], "label", "every row has the label 'x'"),
    ("sentence\tlabel\na\tx\nb\n", ["sentence"], "label", r"line 3: 1 fields, but column 1"),
    ("sentence\tlabel\n", ["sentence"], "label", "has no data rows"),
])
def test_table_mistakes_name_the_file_and_what_is_wrong(tmp_path, content, fields, label, match):
    from official.nlp.data import labelled_text

    (tmp_path / "t.tsv").write_text(content)
    with pytest.raises(ValueError, match=match):
        labelled_text.load_examples(str(tmp_path / "t.tsv"), fields, label)


def test_an_evaluation_label_unseen_in_training_is_named(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\na b\tyes\nc d\tno\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\ne f\tmaybe\n")
    with pytest.raises(ValueError, match=r"dev.tsv, line 2: the label 'maybe' is not one of the classes"):
        finetune.run(args(tfds_name=None, train_file=str(tmp_path / "train.tsv"), eval_file=str(tmp_path / "dev.tsv"),
                          model_dir=str(tmp_path / "out")))
