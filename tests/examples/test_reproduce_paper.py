"""examples/reproduce_paper.py run as a user runs it (`python examples/reproduce_paper.py ...` in a subprocess).

- `--plot` rebuilds the committed table and equilibrium report from the committed CSVs byte for byte, and
  docs/reproduction.md shows that table: its numbers are the ones the CSVs hold.
- A short run writes a CSV whose first held-out loss is the untrained model's (about ln(vocabulary size)) and
  whose final figure is the one printed.
- `--seed N` writes `<run>_seed<N>.csv` beside seed 0's, and seeds.md gives each seed's final loss, their mean
  and spread, as the CSVs hold them.
- The default set is every run Figures 1-3 show, without the ablations (`--all`).
- `--embedding_rows` prints the embedding rows' norms by token frequency, checked against NumPy.
- A mistake gets one `error:` line naming the argument.
"""

import csv
import math
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "examples", "reproduce_paper.py")
COMMITTED = os.path.join(ROOT, "docs", "images", "reproduction")


def reproduce(*args):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_plot_rebuilds_the_committed_tables(tmp_path):
    for name in os.listdir(COMMITTED):
        if name.endswith(".csv"):
            shutil.copy(os.path.join(COMMITTED, name), tmp_path)
    proc = reproduce("--plot", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for table in ("table.md", "equilibrium.md", "seeds.md"):
        with open(tmp_path / table) as rebuilt, open(os.path.join(COMMITTED, table)) as committed:
            assert rebuilt.read() == committed.read(), table
    page = open(os.path.join(ROOT, "docs", "reproduction.md"), encoding="utf-8").read()
    rows = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("|")]
    assert len(rows) > 20 and all(line in page.splitlines() for line in rows)
    proc = reproduce("--plot", "--sweep", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "sweep.md") as rebuilt, open(os.path.join(COMMITTED, "sweep.md")) as committed:
        assert rebuilt.read() == committed.read()


def test_a_short_run_writes_its_csv(tmp_path):
    proc = reproduce("--runs", "sibert_sgdclip", "--steps", "100", "--seq", "32", "--pred", "4", "--batch", "8",
                     "--out", str(tmp_path), "--verbose", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "sibert_sgdclip.csv") as fh:
        header = fh.readline()
        rows = list(csv.DictReader(fh))
    assert header.split()[1:] == ["steps=100", "seq=32", "batch=8", "pred=4", "seed=0"]
    assert [int(r["step"]) for r in rows] == [0, 100]
    vocab_size = sum(1 for _ in open(os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt")))
    # Untrained: near-uniform logits, so the loss is close to ln(V) (the output layer's small init).
    assert abs(float(rows[0]["heldout_loss"]) - math.log(vocab_size)) < 0.1
    assert float(rows[1]["heldout_loss"]) < float(rows[0]["heldout_loss"])
    assert 0 <= float(rows[1]["clip_rate"]) <= 1 and float(rows[1]["weight_norm"]) > 0
    # The printed final loss is the mean of the last three evaluations after step 0 (here the one there is).
    assert f"sibert_sgdclip: final held-out loss {float(rows[1]['heldout_loss']):.3f}" in proc.stdout
    assert (tmp_path / "table.md").exists()
    # A rerun skips the finished run instead of overwriting it.
    again = reproduce("--runs", "sibert_sgdclip", "--steps", "100", "--out", str(tmp_path), "--verbose", "0")
    assert again.returncode == 0 and "exists, skipped" in again.stdout

    # Another seed: its own CSV, seed 0's untouched, and the per-seed table.
    before = (tmp_path / "sibert_sgdclip.csv").read_text()
    proc = reproduce("--runs", "sibert_sgdclip", "--steps", "100", "--seq", "32", "--pred", "4", "--batch", "8",
                     "--out", str(tmp_path), "--verbose", "0", "--seed", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "sibert_sgdclip.csv").read_text() == before
    with open(tmp_path / "sibert_sgdclip_seed1.csv") as fh:
        assert fh.readline().split()[-1] == "seed=1"
        other = [float(r["heldout_loss"]) for r in csv.DictReader(fh)][-1]
    first = float(rows[1]["heldout_loss"])
    assert other != first  # another initialisation and data order
    line = next(x for x in (tmp_path / "seeds.md").read_text().splitlines() if x.startswith("| SIBERT + SGDClip |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "0, 1" and cells[2] == f"{first:.3f} / {other:.3f}"
    assert float(cells[3]) == pytest.approx((first + other) / 2, abs=6e-4)
    assert float(cells[4]) == pytest.approx(abs(first - other), abs=6e-4)


def test_the_default_set_is_what_figures_1_to_3_show():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import reproduce_paper as r

    shown = {n for name, panels in r.FIGURES.items() if name != "figure4_ablations" for _, runs, _ in panels
             for n in runs}
    assert set(r.DEFAULT_RUNS) == shown
    assert set(r.ABLATIONS) <= set(r.RUNS) and not set(r.ABLATIONS) & shown
    assert {n for _, runs, _ in r.FIGURES["figure4_ablations"] for n in runs} >= set(r.ABLATIONS)


def test_mistakes_get_one_line(tmp_path):
    proc = reproduce("--runs", "sibert_sgdclipp", "--out", str(tmp_path))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "--runs" in proc.stderr
    proc = reproduce("--steps", "150", "--out", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --steps")
    proc = reproduce("--all", "--runs", "bert_adamw", "--out", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --all")
    proc = reproduce("--seed", "-1", "--out", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --seed")
    assert not os.listdir(tmp_path)


def test_row_norms_by_frequency_against_numpy():
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import reproduce_paper

    from official.nlp import pretrain

    class Args:
        seq, pred, batch, seed, steps = 16, 3, 4, 0, None

    config = reproduce_paper.run_config("sibert", {}, Args)
    model = pretrain.build_model(config, 50)
    rng = np.random.default_rng(0)
    words = rng.normal(size=(50, 128)) * rng.uniform(0.1, 3, size=(50, 1))
    token = next(v for v in model.encoder.weights if v.path.endswith("token_embedding/embeddings"))
    token.assign(words.astype("float32"))
    position = next(v for v in model.encoder.weights if v.path.endswith("position_embedding"))
    unigram = rng.permutation(np.arange(1, 51)) / 1275.0
    position.assign(np.concatenate([np.ones((8, 128)), np.zeros((position.shape[0] - 8, 128))]).astype("float32"))
    got = reproduce_paper.row_norms_by_frequency(model, unigram, 8, bands=((0, 10), (10, None)))
    by_rank = sorted(range(50), key=lambda i: -unigram[i])
    norm = lambda rows: np.median([math.sqrt(sum(float(x) ** 2 for x in r)) for r in rows])  # noqa: E731
    assert got["rank 0-10"] == pytest.approx(norm(words[by_rank[:10]]), rel=1e-6)
    assert got["rank 10-50"] == pytest.approx(norm(words[by_rank[10:]]), rel=1e-6)
    assert got["position"] == pytest.approx(math.sqrt(128), rel=1e-6)  # the 8 rows used, not the zero rows after


def test_embedding_rows_mode_prints_both_inits(tmp_path):
    proc = reproduce("--embedding_rows", "--steps", "100", "--seq", "32", "--pred", "4", "--batch", "8",
                     "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if ", step 100: position rows" in line]
    assert [line.split(",")[0] for line in lines] == ["sibert_paper_x0.01", "sibert_paper_x1"]
    for line in lines:  # each ratio printed is the band's median over the position rows' median
        position = float(line.split("position rows ")[1].split(";")[0])
        assert len(line.split("rank ")[1:]) == 3, line
        for band in line.split("rank ")[1:]:
            value, ratio = band.split(" ")[1], band.split("(")[1].split("x)")[0]
            assert float(ratio) == pytest.approx(float(value) / position, abs=0.01 + 0.01 * float(ratio))
    assert not os.listdir(tmp_path)  # nothing written
    proc = reproduce("--embedding_rows", "--plot", "--out", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --embedding_rows")
