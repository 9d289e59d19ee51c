"""examples/reproduce_paper.py run as a user runs it (`python examples/reproduce_paper.py ...` in a subprocess).

- `--plot` rebuilds the committed table and equilibrium report from the committed CSVs byte for byte, and
  docs/reproduction.md shows that table and the per-seed one: its numbers are the ones the CSVs hold.
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
    rows = [line for line in (tmp_path / "seeds.md").read_text().splitlines() if line.startswith("|")]
    assert len(rows) > 10 and all(line in page.splitlines() for line in rows)
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
    assert "seed 1's final losses go into the per-seed table (seeds.md)" in proc.stdout
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


@pytest.fixture
def reproduce_paper(monkeypatch):
    """The script as a module (for its functions)."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "examples"))
    import reproduce_paper

    return reproduce_paper


def test_the_default_set_is_what_figures_1_to_3_show(reproduce_paper):
    r = reproduce_paper

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
    proc = reproduce("--all", "--sweep", "--out", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --all")
    for seed in ("-1", str(2**32)):
        proc = reproduce("--seed", seed, "--out", str(tmp_path))
        assert proc.returncode != 0 and proc.stderr.strip().startswith("error: --seed"), proc.stderr
    assert not os.listdir(tmp_path)


def test_seeds_found_takes_only_the_runs_own_seed_files(reproduce_paper, tmp_path):
    # Run names that extend another's (bert_sgd, bert_sgd_si_lr), half-written and malformed files.
    for name in ["bert_sgd.csv", "bert_sgd_seed2.csv", "bert_sgd_seed10.csv", "bert_sgd_si_lr_seed1.csv",
                 "bert_sgd_seed3.csv.tmp", "bert_sgd_seedx.csv", "bert_sgd_seed0.csv", "bert_sgd_seed02.csv"]:
        (tmp_path / name).write_text("")
    assert reproduce_paper.seeds_found(str(tmp_path), "bert_sgd") == [0, 2, 10]
    assert reproduce_paper.seeds_found(str(tmp_path), "bert_sgd_si_lr") == [1]
    assert reproduce_paper.seeds_found(str(tmp_path), "bert_adamw") == []


def _write_run(reproduce_paper, out, name, seed, losses, steps=2000):
    class Args:
        seq, batch, pred = 64, 32, 10

    Args.seed = seed
    rows = [dict(step=100 * i, heldout_loss=x, heldout_accuracy=0.1, rare_accuracy=0.05, train_loss=x,
                 weight_norm=1.0, clip_rate=0.0, seconds=1.0) for i, x in enumerate(losses)]
    reproduce_paper.write_csv(reproduce_paper.csv_path(out, name, seed), rows, Args, steps)


def test_seeds_table_means_spreads_diverged_and_mismatched_runs(reproduce_paper, tmp_path, capsys):
    r, out = reproduce_paper, str(tmp_path)
    _write_run(r, out, "bert_adamw", 0, [8.0, 6.0, 5.9, 5.8])  # final: mean of the last three after step 0: 5.9
    _write_run(r, out, "bert_adamw", 1, [8.0, 6.2, 6.1, 6.0])  # 6.1
    _write_run(r, out, "bert_sgd_x100", 0, [8.0, 7.0, float("nan"), float("nan")])
    _write_run(r, out, "bert_sgd_x100", 2, [8.0, 6.5, 6.4, 6.3])
    _write_run(r, out, "sibert_adamw", 0, [8.0, 6.0, 6.0, 6.0])
    _write_run(r, out, "sibert_adamw", 1, [8.0, 7.0], steps=100)  # another budget: left out, said so
    _write_run(r, out, "sibert_sgdclip", 0, [8.0, 6.0])  # one seed only: no row
    lines = r.seeds_table(list(r.RUNS), out)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]] for line in lines[2:]}
    assert rows == {"BERT + AdamW": ["0, 1", "5.900 / 6.100", "6.000", "0.200"],
                    "BERT + SGD (lr 0.5), init x100": ["0, 2", "diverged / 6.400", "n/a", "n/a"]}
    assert "sibert_adamw_seed1.csv: left out of the seeds table" in capsys.readouterr().out


def test_row_norms_by_frequency_against_numpy(reproduce_paper):
    import numpy as np

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
