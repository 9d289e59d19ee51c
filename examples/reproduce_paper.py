"""The paper's Figures 1-3 and Table 1's pretraining-loss column at small scale, on the shipped corpus.

    .venv/bin/python examples/reproduce_paper.py                 # the runs behind the figures still missing, then
                                                                  # the figures and tables
    .venv/bin/python examples/reproduce_paper.py --all           # the ablations too
    .venv/bin/python examples/reproduce_paper.py --runs sibert_sgdclip,bert_adamw   # some runs only
    .venv/bin/python examples/reproduce_paper.py --runs bert_adamw --seed 1         # another seed (seeds.md)
    .venv/bin/python examples/reproduce_paper.py --sweep         # the eta * lambda sweep of docs/sgdclip.md
    .venv/bin/python examples/reproduce_paper.py --plot          # figures and tables from the committed CSVs

Li, Bhojanapalli, Zaheer, Reddi and Kumar, "Robust Training of Neural
Networks Using Scale Invariant Architectures", ICML 2022: Figure 1 (SIBERT +
SGD with weight decay and relative clipping is robust to the initialisation
scale, BERT + SGD is not), Figures 2-3 (SIBERT + SGDClip against BERT + Adam,
weight norms with and without weight decay and clipping), Table 1 (final
pretraining loss).

Tiny models (2 layers, hidden 128), sequence 64, batch 32, 10 predictions per
sequence, dynamic masking of `official/nlp/corpus/train.txt`; held-out
masked-LM loss over 16 fixed batches of `heldout.txt` every 100 steps
(`official.nlp.pretrain.heldout_metrics`: from the logits, over every masked
position). Each finished run writes `<run>.csv` (`<run>_seed<N>.csv` for
`--seed N` other than 0) into `--out` (by default docs/images/reproduction/, where the committed runs are);
a run whose CSV exists is skipped, so the reproduction can be done piece by
piece (or elsewhere, e.g. on a GPU) and the figures rebuilt from the CSVs.
Time on a 2-core CPU: docs/reproduction.md.

Requires matplotlib for the figures (`pip install ".[examples]"`).
"""

import argparse
import csv
import math
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")
EVAL_EVERY = 100
EVAL_BATCHES = 16
STEPS = 2000  # the budget of a run that does not say otherwise

# SGDClip's hyperparameters (docs/reproduction.md): eta * lambda sets the equilibrium angular step sqrt(2 eta lambda)
# (smaller: less noise, a better loss at a fixed budget) and the time ln(c^2) / (2 eta lambda) that an initialisation
# c times too large needs to reach equilibrium.
# SGDCLIP: the main runs (eta * lambda 3.2e-4; the sweep's best at 2,000 steps is 9.6e-5, the demo's).
# ROBUST / PAPER: eta * lambda 3.2e-3, large enough for init x100 to reach equilibrium in 1,440 of 2,000 steps;
# PAPER with the paper's schedule (LR / 10 at 60% and 90%), ROBUST at 90% only (the equilibrium checks).
# INIT: Figure 1's budget, 6,000 steps at eta * lambda 1.6e-3 (x100 back in 2,900 steps, before the first LR drop),
# the embedding tables on the heads' Lamb, whose steps are relative to each table's norm: from a small init, SGD
# grows only the rows looked up (see `sibert_paper_x0.01`).
SGDCLIP = dict(learning_rate=32.0, weight_decay=1e-5, clip_factor=2.0)
ROBUST = dict(learning_rate=32.0, weight_decay=1e-4)
PAPER = dict(ROBUST, lr_decay_at=(0.6, 0.9))
INIT = dict(learning_rate=32.0, weight_decay=5e-5, lr_decay_at=(0.6, 0.9), train_steps=6000, embedding_tables="lamb")
HEADS = dict(head_learning_rate=3e-3, warmup_steps=300)  # heads' Lamb/Adam, warm-up then linear decay
ADAMW_LR = 1e-3
OPTIMIZER_OPTIONS = ("embedding_tables", "adamw_learning_rate")

# name: (title, model, optimizer, options). Optimizers: "sgdclip" (the paper's: SGDClip on the scale-invariant
# encoder, Lamb/Adam on the heads), "adamw" (AdamW on everything), "sgd" (plain SGD on everything), "heads"
# (the encoder frozen at its initialisation, heads as in sgdclip: the control that tells an encoder that learns from
# one that is merely frozen; with embedding_tables="lamb" the tables train too, on Lamb, and only the layers are
# frozen). Options are PretrainConfig fields (train_steps: the run's budget, 2,000 unless given) and the
# OPTIMIZER_OPTIONS, arguments of make_optimizer: embedding_tables ("sgdclip", "adam", "lamb":
# official.nlp.optimization.sibert_optimizer), adamw_learning_rate (the peak, default ADAMW_LR).
RUNS = {
    # Table 1 and Figures 2-3: the recipe against AdamW and the ablations, 2,000 steps.
    "bert_adamw": ("BERT + AdamW", "bert", "adamw", {}),
    "sibert_adamw": ("SIBERT + AdamW", "sibert", "adamw", {}),
    "sibert_sgdclip": ("SIBERT + SGDClip", "sibert", "sgdclip", {}),
    "sibert_sgdclip_tables_adam": ("SIBERT + SGDClip, embedding tables on Adam", "sibert", "sgdclip",
                                   dict(embedding_tables="adam")),
    "sibert_sgdclip_lam3e-6_tables_adam": ("SIBERT + SGDClip (lambda 3e-6, the sweep's best), tables on Adam",
                                          "sibert", "sgdclip", dict(weight_decay=3e-6, embedding_tables="adam")),
    "sibert_sgdclip_tables_lamb": ("SIBERT + SGDClip, embedding tables on Lamb", "sibert", "sgdclip",
                                   dict(embedding_tables="lamb")),
    "sibert_sgd_wd": ("SIBERT + SGD + WD, no clipping", "sibert", "sgdclip", dict(clip_factor=0.0)),
    "sibert_sgd_no_wd": ("SIBERT + SGD, no WD, no clipping", "sibert", "sgdclip", dict(clip_factor=0.0,
                                                                                        weight_decay=0.0)),
    "sibert_heads_only": ("SIBERT, heads only (encoder frozen)", "sibert", "heads", {}),
    "sibert_heads_tables": ("SIBERT, heads and embedding tables only (layers frozen)", "sibert", "heads",
                            dict(embedding_tables="lamb")),
    "bert_sgd": ("BERT + SGD (lr 0.5)", "bert", "sgd", dict(learning_rate=0.5)),
    "bert_sgd_si_lr": ("BERT + SGD (SIBERT's lr 32)", "bert", "sgd", dict(learning_rate=SGDCLIP["learning_rate"])),
    # Figure 1: the initialisation scale. BERT + SGD, 2,000 steps.
    "bert_sgd_x0.01": ("BERT + SGD (lr 0.5), init x0.01", "bert", "sgd", dict(learning_rate=0.5, init_scale=0.01)),
    "bert_sgd_x100": ("BERT + SGD (lr 0.5), init x100", "bert", "sgd", dict(learning_rate=0.5, init_scale=100.0)),
    # SIBERT + SGDClip, the paper's recipe (every scale-invariant weight on SGDClip) and schedule, 2,000 steps.
    "sibert_paper_x0.01": ("SIBERT + SGDClip (eta*lambda 3.2e-3, /10 at 60% and 90%), init x0.01", "sibert",
                           "sgdclip", dict(PAPER, init_scale=0.01)),
    "sibert_paper_x1": ("SIBERT + SGDClip (eta*lambda 3.2e-3, /10 at 60% and 90%), init x1", "sibert", "sgdclip",
                        dict(PAPER)),
    "sibert_paper_x100": ("SIBERT + SGDClip (eta*lambda 3.2e-3, /10 at 60% and 90%), init x100", "sibert",
                          "sgdclip", dict(PAPER, init_scale=100.0)),
    # The same at a constant LR until 90%: the equilibrium checks (equilibrium.md) and Figure 3's norms.
    "sibert_robust_x0.01": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x0.01", "sibert", "sgdclip",
                            dict(ROBUST, init_scale=0.01)),
    "sibert_robust_x1": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x1", "sibert", "sgdclip", dict(ROBUST)),
    "sibert_robust_x100": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x100", "sibert", "sgdclip",
                           dict(ROBUST, init_scale=100.0)),
    # 6,000 steps, the embedding tables on Lamb, with both controls at the same budget.
    "sibert_init_x0.01": ("SIBERT + SGDClip, tables on Lamb (6,000 steps), init x0.01", "sibert", "sgdclip",
                          dict(INIT, init_scale=0.01)),
    "sibert_init_x1": ("SIBERT + SGDClip, tables on Lamb (6,000 steps), init x1", "sibert", "sgdclip", dict(INIT)),
    "sibert_init_x100": ("SIBERT + SGDClip, tables on Lamb (6,000 steps), init x100", "sibert", "sgdclip",
                         dict(INIT, init_scale=100.0)),
    "bert_adamw_6000": ("BERT + AdamW (6,000 steps)", "bert", "adamw", dict(train_steps=INIT["train_steps"])),
    "sibert_adamw_6000": ("SIBERT + AdamW (6,000 steps)", "sibert", "adamw", dict(train_steps=INIT["train_steps"])),
    "sibert_sgdclip_6000": ("SIBERT + SGDClip (lambda 3e-6), tables on Adam (6,000 steps)", "sibert", "sgdclip",
                            dict(weight_decay=3e-6, embedding_tables="adam", train_steps=INIT["train_steps"])),
    "sibert_init_heads_only": ("SIBERT, heads only (encoder frozen, 6,000 steps)", "sibert", "heads",
                               dict(train_steps=INIT["train_steps"])),
    "sibert_init_heads_tables": ("SIBERT, heads and embedding tables only (layers frozen, 6,000 steps)", "sibert",
                                 "heads", dict(train_steps=INIT["train_steps"], embedding_tables="lamb")),
    # Is SIBERT's gap to BERT + AdamW at 6,000 steps its learning rate? (Scale-invariant weights see AdamW's steps
    # relative to their growing norm.)
    "sibert_adamw_3e-3_6000": ("SIBERT + AdamW 3e-3 (6,000 steps)", "sibert", "adamw",
                               dict(train_steps=INIT["train_steps"], adamw_learning_rate=3e-3)),
}
# The sweep: SIBERT + SGDClip over eta * lambda at eta = 32, and over eta at eta * lambda = 3.2e-3.
SWEEP = {f"sweep_eta{eta:g}_lam{lam:g}": (f"SGDClip eta {eta:g}, lambda {lam:g}", "sibert", "sgdclip",
                                          dict(learning_rate=eta, weight_decay=lam))
         for eta, lam in [(32, 3e-6), (32, 1e-5), (32, 3e-5), (32, 1e-4), (8, 4e-4), (128, 2.5e-5)]}
ALL_RUNS = {**RUNS, **SWEEP}
# Ablations: run with --all (or --runs), shown in figure4_ablations.png; the default set is what Figures 1-3 and the
# targets of docs/reproduction.md need (the ablations explain them: why the tables are on Lamb in Figure 1, what the
# tables alone learn). Time on the 2-core CPU: docs/reproduction.md.
ABLATIONS = ["sibert_sgdclip_tables_lamb", "sibert_sgdclip_lam3e-6_tables_adam", "sibert_heads_tables",
             "sibert_paper_x0.01", "sibert_paper_x1", "sibert_paper_x100", "sibert_init_heads_tables",
             "sibert_adamw_3e-3_6000"]
DEFAULT_RUNS = [n for n in RUNS if n not in ABLATIONS]

FIELDS = ["step", "heldout_loss", "heldout_accuracy", "rare_accuracy", "train_loss", "weight_norm", "clip_rate",
          "seconds"]


def run_config(model, options, args):
    """The run's `official.nlp.configs.PretrainConfig` (the same fields as pretrain.py's flags)."""
    from official.nlp.configs import PretrainConfig

    values = dict(model=model, config="tiny", vocab_file=os.path.join(CORPUS, "vocab.txt"),
                  max_seq_length=args.seq, max_predictions_per_seq=args.pred, global_batch_size=args.batch,
                  train_steps=STEPS, lr_decay_at=(0.9,), dropout=0.0, **SGDCLIP, **HEADS)
    values.update({k: v for k, v in options.items() if k not in OPTIMIZER_OPTIONS})
    if args.steps:  # --steps: one budget for every run
        values["train_steps"] = args.steps
    # A warm-up must end before the run does (official.nlp.optimization.check_warmup): short runs warm up for 20%.
    values["warmup_steps"] = min(values["warmup_steps"], values["train_steps"] // 5)
    return PretrainConfig(**values)


def make_optimizer(model, kind, f, embedding_tables="sgdclip", adamw_learning_rate=ADAMW_LR):
    import keras

    from official.nlp import optimization

    if kind == "sgdclip":
        return optimization.sibert_optimizer(
            model, f.train_steps, learning_rate=f.learning_rate, weight_decay=f.weight_decay,
            clip_factor=f.clip_factor or None, head_learning_rate=f.head_learning_rate,
            head_warmup_steps=f.resolved_warmup_steps, decay_at=[float(x) for x in f.lr_decay_at],
            embedding_tables=embedding_tables)
    if kind == "heads":
        if embedding_tables not in ("sgdclip", "lamb"):  # heads_optimizer puts every matrix on Lamb
            raise ValueError("the heads-only control trains the tables on Lamb or not at all, not "
                             f"{embedding_tables!r}")
        tables = optimization.embedding_table_variables(model.encoder.weights) if embedding_tables == "lamb" else []
        for v in model.encoder.weights:
            v.trainable = any(v is t for t in tables)
        return optimization.heads_optimizer(model, f.train_steps, f.head_learning_rate, f.resolved_warmup_steps)
    if kind == "adamw":
        return optimization.bert_optimizer(f.train_steps, adamw_learning_rate, 0.01, f.resolved_warmup_steps)
    boundary = int(float(f.lr_decay_at[0]) * f.train_steps)
    lr = keras.optimizers.schedules.PiecewiseConstantDecay([boundary], [f.learning_rate, f.learning_rate / 10])
    return keras.optimizers.SGD(lr)


def encoder_norm(model):
    """||w|| of the encoder's weights: SIBERT's scale-invariant group (also when frozen), BERT's encoder."""
    import numpy as np

    return float(np.sqrt(sum(np.sum(np.square(np.asarray(v.numpy(), np.float64))) for v in model.encoder.weights
                             if "float" in str(v.dtype))))


def train(name, spec, args, train_docs, eval_data, vocab):
    import keras
    import numpy as np

    import keras_si
    from official.nlp import optimization, pretrain
    from official.nlp.data import pretrain_dataloader as loader

    title, model_type, kind, options = spec
    f = run_config(model_type, options, args)
    keras.utils.set_random_seed(args.seed)
    model = pretrain.build_model(f, len(vocab))
    optimizer = make_optimizer(model, kind, f, **{k: v for k, v in options.items() if k in OPTIMIZER_OPTIONS})
    metrics, weighted = optimization.pretraining_metrics()
    model.compile(optimizer=optimizer, loss=optimization.pretraining_losses(), metrics=metrics,
                  weighted_metrics=weighted)
    rows, start = [], time.time()

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            m = pretrain.heldout_metrics(model, eval_data)
            rows.append(dict(step=(epoch + 1) * EVAL_EVERY, heldout_loss=m["mlm_loss"],
                             heldout_accuracy=m["mlm_accuracy"], rare_accuracy=m["rare_accuracy"],
                             train_loss=float(logs.get("mlm_loss", float("nan"))), weight_norm=encoder_norm(model),
                             clip_rate=float(logs.get("clip_rate", float("nan"))),
                             seconds=time.time() - start))
            if args.verbose:
                r = rows[-1]
                print(f"  {name} step {r['step']}: held-out loss {r['heldout_loss']:.3f}, accuracy "
                      f"{r['heldout_accuracy']:.2%}, ||w|| {r['weight_norm']:.3g}, clip rate {r['clip_rate']:.2f}",
                      flush=True)
            if not np.isfinite(m["mlm_loss"]):
                self.model.stop_training = True

    callbacks = [keras_si.SGDClipMonitor()] if kind == "sgdclip" else []
    data = loader.text_dataset(train_docs, vocab, args.batch, args.seq, args.pred, seed=args.seed)
    first = pretrain.heldout_metrics(model, eval_data)
    rows.append(dict(step=0, heldout_loss=first["mlm_loss"], heldout_accuracy=first["mlm_accuracy"],
                     rare_accuracy=first["rare_accuracy"], train_loss=float("nan"), weight_norm=encoder_norm(model),
                     clip_rate=float("nan"), seconds=0.0))
    model.fit(data, epochs=f.train_steps // EVAL_EVERY, steps_per_epoch=EVAL_EVERY, verbose=0,
              shuffle=False, callbacks=callbacks + [Recorder()])  # the dataset is shuffled already
    return rows, f.train_steps, model


def row_norms_by_frequency(model, unigram, positions, bands=((0, 100), (100, 1000), (1000, None))):
    """Median L2 norm of the word-embedding rows in bands of training-text frequency rank, and of the position rows.

    Returns:
        {"position": median norm of the first `positions` position rows (those a sequence of that length uses; the
        others only decay), "rank a-b": median norm of the word rows of the tokens ranked
        a to b by training-text frequency (0 = the most frequent)}.
    """
    import numpy as np

    from official.nlp import optimization

    tables = optimization.embedding_table_variables(model.encoder.weights)
    table = lambda name: np.asarray(next(v for v in tables if name in v.path).numpy(), np.float64)  # noqa: E731
    words = np.linalg.norm(table("token_embedding"), axis=1)
    result = {"position": float(np.median(np.linalg.norm(table("position_embedding")[:positions], axis=1)))}
    order = np.argsort(-np.asarray(unigram), kind="stable")
    for a, b in bands:
        result[f"rank {a}-{b if b else len(order)}"] = float(np.median(words[order[a:b]]))
    return result


def csv_path(out, name, seed=0):
    """The CSV of run `name` at `seed`: `<name>.csv` for seed 0 (the main table's), else `<name>_seed<N>.csv`."""
    return os.path.join(out, f"{name}.csv" if seed == 0 else f"{name}_seed{seed}.csv")


def seeds_found(out, name):
    """The seeds of `name` with a CSV in `out` (exactly the names `csv_path` gives), ascending."""
    pattern = re.compile(re.escape(name) + r"_seed([1-9][0-9]*)\.csv")
    found = [0] if os.path.exists(csv_path(out, name)) else []
    return found + sorted(int(m.group(1)) for m in map(pattern.fullmatch, os.listdir(out)) if m)


def seeds_table(names, out):
    """Markdown lines: the final held-out loss of every run with CSVs for two seeds or more, per seed, their mean and
    the spread (largest - smallest; both "n/a" if a seed diverged); [] when there is none.

    Only the seeds run with the first seed's settings (steps, sequence, batch, predictions) are put together; the
    others are named on stdout and left out.
    """
    lines = []
    for n in names:
        found = {seed: read_csv(csv_path(out, n, seed)) for seed in seeds_found(out, n)}
        if len(found) < 2:
            continue
        same = lambda settings: {k: v for k, v in settings.items() if k != "seed"}  # noqa: E731
        first = same(next(iter(found.values()))[0])
        for seed, (settings, _) in list(found.items()):
            if same(settings) != first:
                print(f"{csv_path(out, n, seed)}: left out of the seeds table, run with {same(settings)} "
                      f"where seed {next(iter(found))} was run with {first}")
                del found[seed]
        if len(found) < 2:
            continue
        losses = [final(rows) for _, rows in found.values()]
        shown = " / ".join("diverged" if math.isnan(x) else f"{x:.3f}" for x in losses)
        if any(math.isnan(x) for x in losses):
            mean = spread = "n/a"
        else:
            mean, spread = f"{sum(losses) / len(losses):.3f}", f"{max(losses) - min(losses):.3f}"
        lines.append(f"| {ALL_RUNS[n][0]} | {', '.join(map(str, found))} | {shown} | {mean} | {spread} |")
    if lines:
        lines = ["| run | seeds | held-out MLM loss per seed | mean | spread |", "| --- | --- | ---: | ---: | ---: |",
                 *lines]
    return lines


def write_csv(path, rows, args, steps):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as fh:
        fh.write(f"# steps={steps} seq={args.seq} batch={args.batch} pred={args.pred} seed={args.seed}\n")
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)


def read_csv(path):
    with open(path) as fh:
        header = fh.readline().lstrip("# ").split()
        settings = dict(kv.split("=") for kv in header)
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    return settings, rows


def unigram_baseline(eval_data, unigram):
    """(loss in nats, accuracy) on the held-out targets of always predicting `unigram`, the training text's
    frequencies (`official.nlp.pretrain.unigram_distribution`)."""
    import numpy as np

    from official.nlp import modeling, pretrain

    targets = []
    for batch in eval_data:
        _, y, w = modeling.pretraining_targets(batch) if isinstance(batch, dict) else batch
        targets.append(np.asarray(y["mlm"])[np.asarray(w["mlm"]) > 0])
    b = pretrain.context_free_baseline(np.concatenate(targets), unigram)
    return b["unigram_loss"], b["unigram_accuracy"]


def final(rows, last=3):
    """The mean held-out loss of the last `last` evaluations (steps T-200, T-100, T): less noisy than one point."""
    values = [r["heldout_loss"] for r in rows[1:][-last:]] or [rows[0]["heldout_loss"]]  # not the untrained step 0
    return sum(values) / len(values)


LOSS = ("heldout_loss", "held-out masked-LM loss (nats)", False)
NORM = ("weight_norm", "||w|| of the encoder (the scale-invariant group)", True)
CLIP = ("clip_rate", "fraction of steps clipped (per 100)", False)
# Figure: [(panel title, runs, (CSV column, y label, log scale))].
FIGURES = {
    "figure1_init_scale": [
        ("SIBERT + SGDClip, tables on Lamb, 6,000 steps",
         ["sibert_init_x0.01", "sibert_init_x1", "sibert_init_x100", "sibert_init_heads_only"], LOSS),
        ("BERT + SGD, 2,000 steps", ["bert_sgd_x0.01", "bert_sgd", "bert_sgd_x100"], LOSS)],
    "figure2_recipe": [
        ("held-out masked-LM loss, 2,000 steps",
         ["bert_adamw", "sibert_adamw", "sibert_sgdclip", "sibert_sgdclip_tables_adam", "sibert_sgd_wd", "bert_sgd",
          "bert_sgd_si_lr", "sibert_heads_only"], LOSS),
        ("6,000 steps", ["bert_adamw_6000", "sibert_adamw_6000", "sibert_sgdclip_6000", "sibert_init_x1",
                         "sibert_init_heads_only"], LOSS)],
    "figure3_norms": [
        ("weight norm: with and without weight decay and clipping",
         ["sibert_sgd_no_wd", "sibert_sgd_wd", "sibert_sgdclip", "sibert_robust_x0.01", "sibert_robust_x1",
          "sibert_robust_x100"], NORM),
        ("clip rate", ["sibert_sgdclip", "sibert_robust_x0.01", "sibert_robust_x1", "sibert_robust_x100"], CLIP)],
    "figure4_ablations": [
        ("the paper's recipe (every scale-invariant weight on SGDClip), 2,000 steps",
         ["sibert_paper_x0.01", "sibert_paper_x1", "sibert_paper_x100", "sibert_heads_only", "sibert_heads_tables"],
         LOSS),
        ("the embedding tables' optimizer, 2,000 steps",
         ["sibert_sgdclip", "sibert_sgdclip_tables_adam", "sibert_sgdclip_lam3e-6_tables_adam",
          "sibert_sgdclip_tables_lamb", "sibert_heads_tables"], LOSS),
        ("6,000 steps: controls, AdamW's learning rate",
         ["bert_adamw_6000", "sibert_adamw_6000", "sibert_adamw_3e-3_6000", "sibert_init_x1", "sibert_init_heads_only",
          "sibert_init_heads_tables"], LOSS)],
}


def draw_figures(panel, have, plt, out):
    """FIGURES into the folder `out`, each only when every run it shows has a CSV (`have`)."""
    for fig_name, panels in FIGURES.items():
        missing = list(dict.fromkeys(n for _, runs, _ in panels for n in runs if n not in have))
        if missing:
            print(f"{fig_name}.png not drawn: no CSV yet for {', '.join(missing)}")
            continue
        # One colour per run across the figure's panels.
        shown = list(dict.fromkeys(n for _, runs, _ in panels for n in runs))
        tab20 = [c for i, c in enumerate(plt.get_cmap("tab20").colors) if i not in (14, 15)]  # not the baseline's grey
        cycle = tab20[::2] + tab20[1::2]  # nine distinct hues first, then their light shades
        colors = {n: cycle[i % len(cycle)] for i, n in enumerate(shown)}
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
        for ax, (title, runs, (key, ylabel, log)) in zip(axes[0], panels):
            panel(ax, runs, colors, key=key, log=log)
            ax.set_title(title)
            ax.set_ylabel(ylabel)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{fig_name}.png"), dpi=100)
        plt.close(fig)


def plot(names, args, baseline):
    """The table (table.md, or sweep.md for sweep runs), seeds.md (sweep_seeds.md) when a run has CSVs for several
    seeds, equilibrium.md and, with matplotlib, the figures."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    found = {n: read_csv(csv_path(args.out, n)) for n in names if os.path.exists(csv_path(args.out, n))}
    settings = {n: s for n, (s, _) in found.items()}
    curves = {n: rows for n, (_, rows) in found.items()}
    specs = ALL_RUNS

    def panel(ax, runs, colors, key="heldout_loss", log=False):
        ylim = None
        if key == "heldout_loss" and baseline:  # from the lowest loss shown to a little above the unigram's
            lowest = min([r[key] for n in runs if n in curves for r in curves[n] if math.isfinite(r[key])],
                         default=baseline[0])
            ylim = (min(baseline[0] - 0.75, lowest - 0.1), baseline[0] + 0.5)
        for n in runs:
            if n in curves:
                rows = curves[n]
                label = specs[n][0]
                bad = [r["step"] for r in rows if math.isnan(r["heldout_loss"])]
                if bad:  # a diverged run: its last finite point, and an x where it became NaN
                    label += f": diverged (NaN by step {bad[0]:.0f})"
                line, = ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=label, color=colors[n])
                if bad and ylim:
                    ax.plot([bad[0]], [ylim[1] - 0.05], "x", color=line.get_color(), markersize=10)
        if key == "heldout_loss" and baseline:
            ax.axhline(baseline[0], color="grey", ls=":", label="unigram (training-text frequencies)")
        if log:
            ax.set_yscale("log")
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)

    table = "sweep.md" if all(n in SWEEP for n in names) else "table.md"
    if table == "table.md" and plt is not None:
        draw_figures(panel, curves, plt, args.out)
    elif table == "table.md":
        print("The figures need matplotlib (pip install '.[examples]'); only the tables were written.")
    with open(os.path.join(args.out, table), "w") as fh:
        fh.write("| run | steps | held-out MLM loss | accuracy | outside the 10 most frequent | ||w|| at the end | "
                 "clip rate (last 100 steps) | minutes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        if baseline:
            fh.write(f"| unigram: always the training text's frequencies | | {baseline[0]:.3f} | {baseline[1]:.2%} | "
                     "0.00% | | | |\n")
        for n in names:
            if n in curves:
                rows = curves[n]
                r = rows[-1]
                loss = final(rows)
                start = f"| {specs[n][0]} | {int(settings[n]['steps']):,} |"
                if math.isnan(loss):
                    bad = next(int(x["step"]) for x in rows if math.isnan(x["heldout_loss"]))
                    fh.write(f"{start} diverged (NaN by step {bad}) | | | | | {r['seconds'] / 60:.1f} |\n")
                    continue
                fh.write(f"{start} {loss:.3f} | {r['heldout_accuracy']:.2%} | "
                         f"{r['rare_accuracy']:.2%} | {r['weight_norm']:.3g} | "
                         f"{'' if math.isnan(r['clip_rate']) else format(r['clip_rate'], '.2f')} | "
                         f"{r['seconds'] / 60:.1f} |\n")
        fh.write("\nHeld-out loss: mean of the last three evaluations (a run's last 200 steps), nats per masked "
                 "position. Minutes: wall time on the machine that ran it, often shared with other runs.\n")
    lines = seeds_table(names, args.out)
    if lines:
        with open(os.path.join(args.out, "seeds.md" if table == "table.md" else "sweep_seeds.md"), "w") as fh:
            fh.write("\n".join(lines) + "\n\nHeld-out loss: mean of the last three evaluations, nats per masked "
                     "position; seed 0 is the run of the main table.\n")
    lines = equilibrium_report(args.out)
    if lines:
        with open(os.path.join(args.out, "equilibrium.md"), "w") as fh:
            fh.write("| quantity | predicted | measured |\n| --- | ---: | ---: |\n" + "\n".join(lines) + "\n")


def equilibrium_report(out):
    """The equilibrium analysis's predictions against the measured runs (docs/sgdclip.md), as Markdown lines.

    - Time for an init c times too large to come back: ln(c^2) / (2 eta lambda) steps; measured as the first
      evaluation where the x100 run's norm is within 25% of the x1 run's.
    - Norm at equilibrium: ||x||^4 proportional to eta / lambda; measured at step 1,800 (before the LR decay) over
      the sweep's runs at eta * lambda = 3.2e-3, which reach equilibrium (1 / (eta lambda) = 313 steps).
    """
    lines = []
    path = lambda n: os.path.join(out, f"{n}.csv")  # noqa: E731
    if all(os.path.exists(path(n)) for n in ("sibert_robust_x1", "sibert_robust_x100", "sibert_robust_x0.01")):
        ref = {r["step"]: r["weight_norm"] for r in read_csv(path("sibert_robust_x1"))[1]}
        eta, lam = ROBUST["learning_rate"], ROBUST["weight_decay"]
        big = read_csv(path("sibert_robust_x100"))[1]
        for r in big:
            if r["step"] in (400, 800, 1200):
                # While the gradient is negligible against ||w||, only the decay acts: (1 - eta lambda)^t.
                lines.append(f"| init x100: ||w|| at step {r['step']:.0f}, weight decay alone | "
                             f"{big[0]['weight_norm'] * (1 - eta * lam) ** r['step']:.1f} | {r['weight_norm']:.1f} |")
        for name, c in (("sibert_robust_x100", 100.0), ("sibert_robust_x0.01", 0.01)):
            rows = read_csv(path(name))[1]
            both = [r for r in rows if r["step"] in ref and r["step"]]
            close = [r["step"] for r in both if abs(r["weight_norm"] / ref[r["step"]] - 1) < 0.25]
            predicted = f"{math.log(c * c) / (2 * eta * lam):.0f}" if c > 1 else "fast (gradient steps grow it)"
            if close:
                measured = f"{int(close[0])}"
            elif both:
                last = both[-1]
                measured = (f"not within {int(last['step']):,} (ratio {last['weight_norm'] / ref[last['step']]:.2f} "
                            "at the end)")
            else:
                continue
            lines.append(f"| init x{c:g}: first step where ||w|| is within 25% of the x1 run's | {predicted} | "
                         f"{measured} |")
    sweep = [("sweep_eta8_lam0.0004", 8, 4e-4), ("sweep_eta32_lam0.0001", 32, 1e-4),
             ("sweep_eta128_lam2.5e-05", 128, 2.5e-5)]
    curves = {n: read_csv(path(n))[1] for n, _, _ in sweep if os.path.exists(path(n))}
    norm_at = {n: next((r["weight_norm"] for r in rows if r["step"] == 1800), None) for n, rows in curves.items()}
    have = [(n, eta, lam) for n, eta, lam in sweep if norm_at.get(n) is not None]  # the runs that got to 1,800
    if len(have) >= 2:
        base_name, base_eta, base_lam = have[0]
        base = norm_at[base_name]
        for name, eta, lam in have[1:]:
            norm = norm_at[name]
            predicted = ((eta / lam) / (base_eta / base_lam)) ** 0.25
            lines.append(f"| ||w|| at step 1,800, eta {eta:g} / lambda {lam:g} against eta {base_eta:g} / lambda "
                         f"{base_lam:g} (same eta*lambda) | x{predicted:.2f} | x{norm / base:.2f} |")
        for name, eta, lam in have:
            lines.append(f"| final held-out loss, eta {eta:g}, lambda {lam:g} (eta*lambda sets the effective "
                         f"learning rate: the same loss expected) | | {final(curves[name]):.3f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=None,
                        help="comma-separated run names (default: the runs behind Figures 1-3, without the ablations)")
    parser.add_argument("--all", action="store_true",
                        help="every run of RUNS, the ablations included (the sweep is --sweep)")
    parser.add_argument("--sweep", action="store_true", help="the eta * lambda sweep instead of RUNS")
    parser.add_argument("--plot", action="store_true", help="only rebuild figures and table from the CSVs")
    parser.add_argument("--embedding_rows", action="store_true",
                        help="train the paper's recipe from init x0.01 and x1 (--steps, default 600) and print the "
                             "word-embedding rows' norms by token frequency, against the position rows'")
    parser.add_argument("--force", action="store_true", help="rerun runs whose CSV exists")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps of every run (default: each run's own, {STEPS} unless it says more)")
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--pred", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0,
                        help="initialisation and data-order seed, in [0, 2**32) (default 0: the committed runs; "
                             "others write <run>_seed<N>.csv and the per-seed table seeds.md, sweep_seeds.md for the "
                             "sweep)")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "reproduction"),
                        help="where the CSVs, figures and table go")
    args = parser.parse_args()
    if args.embedding_rows and (args.runs or args.plot or args.sweep or args.force or args.all):
        sys.exit("error: --embedding_rows runs its own two trainings: it takes no --runs, --plot, --sweep, --force "
                 "or --all")
    if args.all and (args.runs or args.sweep):
        sys.exit("error: --all is every run of RUNS: it takes no --runs or --sweep")
    if not 0 <= args.seed < 2**32:  # NumPy's seed range (keras.utils.set_random_seed)
        sys.exit(f"error: --seed must be in [0, 2**32), got {args.seed}")
    if args.runs:
        names = args.runs.split(",")
    else:
        names = list(SWEEP) if args.sweep else list(RUNS) if args.all else DEFAULT_RUNS
    unknown = [n for n in names if n not in ALL_RUNS]
    if unknown:
        sys.exit(f"error: --runs: unknown run {unknown[0]!r}; the runs are {list(RUNS) + list(SWEEP)}")
    if args.steps is not None and (args.steps <= 0 or args.steps % EVAL_EVERY):
        sys.exit(f"error: --steps must be a positive multiple of {EVAL_EVERY}, got {args.steps}")
    os.makedirs(args.out, exist_ok=True)

    from official.nlp import pretrain
    from official.nlp.data import pretrain_dataloader as loader
    from official.nlp.data.vocab import Vocab

    vocab = Vocab(os.path.join(CORPUS, "vocab.txt"))
    eval_docs = loader.load_documents([os.path.join(CORPUS, "heldout.txt")])
    eval_data = loader.text_dataset(eval_docs, vocab, args.batch, args.seq, args.pred, seed=1234)
    eval_data = eval_data.take(EVAL_BATCHES).cache()
    train_docs = loader.load_documents([os.path.join(CORPUS, "train.txt")])
    unigram = pretrain.unigram_distribution(train_docs, vocab)
    baseline = unigram_baseline(eval_data, unigram)
    if args.embedding_rows:
        # From a small init, SGD grows only the rows looked up: rare tokens' rows stay small against the position
        # rows (docs/reproduction.md, Figure 1). Nothing is written.
        args.steps, args.verbose = args.steps or 600, 0
        for n in ("sibert_paper_x0.01", "sibert_paper_x1"):
            _, _, model = train(n, RUNS[n], args, train_docs, eval_data, vocab)
            norms = row_norms_by_frequency(model, unigram, args.seq)
            position = norms.pop("position")
            print(f"{n}, step {args.steps}: position rows {position:.3g}; word rows by frequency rank: "
                  + ", ".join(f"{band} {v:.3g} ({v / position:.2f}x)" for band, v in norms.items()), flush=True)
        return
    if not args.plot:
        for n in names:
            path = csv_path(args.out, n, args.seed)
            if os.path.exists(path) and not args.force:
                print(f"{n}: {path} exists, skipped (--force reruns it)")
                continue
            print(f"{n}: {ALL_RUNS[n][0]}", flush=True)
            rows, steps, _ = train(n, ALL_RUNS[n], args, train_docs, eval_data, vocab)
            write_csv(path, rows, args, steps)
            print(f"{n}: final held-out loss {final(rows):.3f} in {rows[-1]['seconds'] / 60:.1f} min", flush=True)
    if args.seed and not args.plot:
        print(f"The table and figures show seed 0's runs; seed {args.seed}'s final losses go into the per-seed table "
              "(seeds.md) beside those of the other seeds in --out.")
    # The tables list every run with a CSV in --out, whichever were run now.
    if not args.sweep or any(n in RUNS for n in names):
        plot(list(RUNS), args, baseline)
    if args.sweep or any(n in SWEEP for n in names):
        plot(list(SWEEP), args, baseline)
    print(f"Tables and figures in {args.out}")


if __name__ == "__main__":
    main()
