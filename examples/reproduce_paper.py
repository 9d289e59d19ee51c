"""The paper's Figures 1-3 and Table 1's pretraining-loss column at small scale, on the shipped corpus.

    .venv/bin/python examples/reproduce_paper.py                 # every run still missing, then the figures
    .venv/bin/python examples/reproduce_paper.py --runs sibert_sgdclip,bert_adamw   # some runs only
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
position). Each finished run writes `docs/images/reproduction/<run>.csv`;
a run whose CSV exists is skipped, so the reproduction can be done piece by
piece (or elsewhere, e.g. on a GPU) and the figures rebuilt from the CSVs.
Time on a 2-core CPU: docs/reproduction.md.

Requires matplotlib for the figures (`pip install ".[examples]"`).
"""

import argparse
import csv
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OUT = os.path.join(ROOT, "docs", "images", "reproduction")
CORPUS = os.path.join(ROOT, "official", "nlp", "corpus")
EVAL_EVERY = 100
EVAL_BATCHES = 16

# SGDClip's hyperparameters, from the sweep (docs/reproduction.md): eta * lambda sets the equilibrium angular step
# sqrt(2 eta lambda) (smaller: less noise, a better loss at this budget) and the time ln(c^2) / (2 eta lambda) that an
# initialisation c times too large needs to reach equilibrium. BEST is the sweep's best loss at 2,000 steps;
# ROBUST has eta * lambda large enough for init x100 to reach equilibrium in 1,440 of the 2,000 steps.
SGDCLIP = dict(learning_rate=32.0, weight_decay=1e-5, clip_factor=2.0)
ROBUST = dict(learning_rate=32.0, weight_decay=1e-4)
HEADS = dict(head_learning_rate=3e-3, warmup_steps=300)  # heads' Lamb/Adam, warm-up then linear decay
ADAMW_LR = 1e-3

# name: (title, model, optimizer, options). Optimizers: "sgdclip" (the paper's: SGDClip on the scale-invariant
# encoder, Lamb/Adam on the heads), "adamw" (AdamW on everything), "sgd" (plain SGD on everything), "heads"
# (encoder frozen at its initialisation, heads as in sgdclip: the control that tells learning from a frozen encoder).
RUNS = {
    "bert_adamw": ("BERT + AdamW", "bert", "adamw", {}),
    "sibert_adamw": ("SIBERT + AdamW", "sibert", "adamw", {}),
    "sibert_sgdclip": ("SIBERT + SGDClip", "sibert", "sgdclip", {}),
    "sibert_sgd_wd": ("SIBERT + SGD + WD, no clipping", "sibert", "sgdclip", dict(clip_factor=0.0)),
    "sibert_heads_only": ("SIBERT, heads only (encoder frozen)", "sibert", "heads", {}),
    "bert_sgd": ("BERT + SGD (lr 0.5)", "bert", "sgd", dict(learning_rate=0.5)),
    "bert_sgd_si_lr": ("BERT + SGD (SIBERT's lr 32)", "bert", "sgd", dict(learning_rate=SGDCLIP["learning_rate"])),
    "sibert_robust_x0.01": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x0.01", "sibert", "sgdclip",
                            dict(ROBUST, init_scale=0.01)),
    "sibert_robust_x1": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x1", "sibert", "sgdclip", dict(ROBUST)),
    "sibert_robust_x100": ("SIBERT + SGDClip (eta*lambda 3.2e-3), init x100", "sibert", "sgdclip",
                           dict(ROBUST, init_scale=100.0)),
    "bert_sgd_x0.01": ("BERT + SGD (lr 0.5), init x0.01", "bert", "sgd", dict(learning_rate=0.5, init_scale=0.01)),
    "bert_sgd_x100": ("BERT + SGD (lr 0.5), init x100", "bert", "sgd", dict(learning_rate=0.5, init_scale=100.0)),
    "sibert_sgdclip_tables_adam": ("SIBERT + SGDClip, embedding tables on Adam", "sibert", "sgdclip",
                                   dict(embedding_tables="heads")),
    "sibert_sgdclip_lam3e-6_tables_adam": ("SIBERT + SGDClip (lambda 3e-6, the sweep's best), tables on Adam",
                                          "sibert", "sgdclip", dict(weight_decay=3e-6, embedding_tables="heads")),
    "sibert_sgd_no_wd": ("SIBERT + SGD, no WD, no clipping", "sibert", "sgdclip", dict(clip_factor=0.0,
                                                                                        weight_decay=0.0)),
}
# The sweep: SIBERT + SGDClip over eta * lambda at eta = 32, and over eta at eta * lambda = 3.2e-3.
SWEEP = {f"sweep_eta{eta:g}_lam{lam:g}": (f"SGDClip eta {eta:g}, lambda {lam:g}", "sibert", "sgdclip",
                                          dict(learning_rate=eta, weight_decay=lam))
         for eta, lam in [(32, 3e-6), (32, 1e-5), (32, 3e-5), (32, 1e-4), (32, 2e-4), (8, 4e-4), (128, 2.5e-5)]}

FIELDS = ["step", "heldout_loss", "heldout_accuracy", "rare_accuracy", "train_loss", "weight_norm", "clip_rate",
          "seconds"]


def run_config(model, options, args):
    """The run's `official.nlp.configs.PretrainConfig` (the same fields as pretrain.py's flags)."""
    from official.nlp.configs import PretrainConfig

    values = dict(model=model, config="tiny", vocab_file=os.path.join(CORPUS, "vocab.txt"),
                  max_seq_length=args.seq, max_predictions_per_seq=args.pred, global_batch_size=args.batch,
                  train_steps=args.steps, lr_decay_at=(0.9,), dropout=0.0, **SGDCLIP, **HEADS)
    values.update({k: v for k, v in options.items() if k != "embedding_tables"})
    return PretrainConfig(**values)


def make_optimizer(model, kind, f, embedding_tables="sgdclip"):
    import keras

    from official.nlp import optimization

    if kind == "sgdclip":
        return optimization.sibert_optimizer(
            model, f.train_steps, learning_rate=f.learning_rate, weight_decay=f.weight_decay,
            clip_factor=f.clip_factor or None, head_learning_rate=f.head_learning_rate,
            head_warmup_steps=f.warmup_steps, decay_at=[float(x) for x in f.lr_decay_at],
            embedding_tables=embedding_tables)
    if kind == "heads":
        model.encoder.trainable = False
        return optimization.heads_optimizer(model, f.train_steps, f.head_learning_rate, f.warmup_steps)
    if kind == "adamw":
        return optimization.bert_optimizer(f.train_steps, ADAMW_LR, 0.01, f.warmup_steps)
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
    optimizer = make_optimizer(model, kind, f, options.get("embedding_tables", "sgdclip"))
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
    model.fit(data, epochs=args.steps // EVAL_EVERY, steps_per_epoch=EVAL_EVERY, verbose=0,
              callbacks=callbacks + [Recorder()])
    return rows, first


def write_csv(path, rows, args):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as fh:
        fh.write(f"# steps={args.steps} seq={args.seq} batch={args.batch} pred={args.pred} seed={args.seed}\n")
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


def unigram_baseline(eval_data, train_docs, vocab):
    """(loss in nats, accuracy) on the held-out targets of always predicting the training text's frequencies."""
    import numpy as np

    from official.nlp import modeling, pretrain

    targets = []
    for batch in eval_data:
        _, y, w = modeling.pretraining_targets(batch) if isinstance(batch, dict) else batch
        targets.append(np.asarray(y["mlm"])[np.asarray(w["mlm"]) > 0])
    b = pretrain.context_free_baseline(np.concatenate(targets), pretrain.unigram_distribution(train_docs, vocab))
    return b["unigram_loss"], b["unigram_accuracy"]


def final(rows, last=3):
    """The mean held-out loss of the last `last` evaluations (the last 300 steps): less noisy than one point."""
    values = [r["heldout_loss"] for r in rows[-last:]]
    return sum(values) / len(values)


def draw_figures(figures, panel, baseline, plt):
    """Figures 1-2 (held-out loss curves) and 3 (weight norms, clip rate) into OUT."""
    for fig_name, panels in figures.items():
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
        for ax, (title, runs) in zip(axes[0], panels):
            panel(ax, runs, ylim=(baseline[0] - 1.0, baseline[0] + 1.5) if baseline else None)
            ax.set_title(title)
            ax.set_ylabel("held-out masked-LM loss (nats)")
        fig.tight_layout()
        fig.savefig(os.path.join(OUT, f"{fig_name}.png"), dpi=100)
        plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    panel(axes[0], ["sibert_sgd_no_wd", "sibert_sgd_wd", "sibert_sgdclip", "sibert_robust_x0.01",
                    "sibert_robust_x1", "sibert_robust_x100"], key="weight_norm", log=True)
    axes[0].set_ylabel("||w|| of the scale-invariant group")
    axes[0].set_title("weight norm: with and without weight decay and clipping")
    panel(axes[1], ["sibert_sgdclip", "sibert_robust_x0.01", "sibert_robust_x1", "sibert_robust_x100"],
          key="clip_rate")
    axes[1].set_ylabel("fraction of steps clipped (per 100)")
    axes[1].set_title("clip rate")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "figure3_norms.png"), dpi=100)
    plt.close(fig)


def plot(names, args, baseline):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {n: read_csv(os.path.join(OUT, f"{n}.csv"))[1] for n in names
              if os.path.exists(os.path.join(OUT, f"{n}.csv"))}
    specs = {**RUNS, **SWEEP}

    def panel(ax, runs, key="heldout_loss", log=False, ylim=None):
        for n in runs:
            if n in curves:
                rows = curves[n]
                label = specs[n][0]
                bad = [r["step"] for r in rows if math.isnan(r["heldout_loss"])]
                if bad:  # a diverged run: its last finite point, and an x where it became NaN
                    label += f": diverged (NaN by step {bad[0]:.0f})"
                line, = ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=label)
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

    figures = {
        "figure1_init_scale": [
            ("SIBERT + SGDClip (eta*lambda 3.2e-3)", ["sibert_robust_x0.01", "sibert_robust_x1", "sibert_robust_x100",
                                                     "sibert_heads_only"]),
            ("BERT + SGD", ["bert_sgd_x0.01", "bert_sgd", "bert_sgd_x100"])],
        "figure2_recipe": [("held-out masked-LM loss", ["bert_adamw", "sibert_adamw", "sibert_sgdclip",
                                                        "sibert_sgdclip_tables_adam",
                                                        "sibert_sgdclip_lam3e-6_tables_adam",
                                                        "sibert_sgd_wd", "bert_sgd", "bert_sgd_si_lr",
                                                        "sibert_heads_only"])],
    }
    table = "sweep.md" if all(n in SWEEP for n in names) else "table.md"
    if table == "table.md":
        draw_figures(figures, panel, baseline, plt)
    with open(os.path.join(OUT, table), "w") as fh:
        fh.write("| run | held-out MLM loss | accuracy | outside the 10 most frequent | ||w|| at the end | "
                 "clip rate (last 100 steps) | minutes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
        if baseline:
            fh.write(f"| unigram: always the training text's frequencies | {baseline[0]:.3f} | {baseline[1]:.2%} | "
                     "0.00% | | | |\n")
        for n in names:
            if n in curves:
                rows = curves[n]
                r = rows[-1]
                loss = final(rows)
                if math.isnan(loss):
                    bad = next(int(x["step"]) for x in rows if math.isnan(x["heldout_loss"]))
                    fh.write(f"| {specs[n][0]} | diverged (NaN by step {bad}) | | | | | {r['seconds'] / 60:.1f} |\n")
                    continue
                fh.write(f"| {specs[n][0]} | {loss:.3f} | {r['heldout_accuracy']:.2%} | "
                         f"{r['rare_accuracy']:.2%} | {r['weight_norm']:.3g} | "
                         f"{'' if math.isnan(r['clip_rate']) else format(r['clip_rate'], '.2f')} | "
                         f"{r['seconds'] / 60:.1f} |\n")
        fh.write("\nHeld-out loss: mean of the last three evaluations (steps "
                 f"{args.steps - 200}-{args.steps}), nats per masked position.\n")
    lines = equilibrium_report(OUT)
    if lines:
        with open(os.path.join(OUT, "equilibrium.md"), "w") as fh:
            fh.write("| quantity | predicted | measured |\n| --- | ---: | ---: |\n" + "\n".join(lines) + "\n")


def equilibrium_report(out):
    """The equilibrium analysis's predictions against the measured runs (docs/sgdclip.md), as Markdown lines.

    - Time for an init c times too large to come back: ln(c^2) / (2 eta lambda) steps; measured as the first
      evaluation where the x100 run's norm is within 10% of the x1 run's.
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
            close = [r["step"] for r in rows if r["step"] and abs(r["weight_norm"] / ref[r["step"]] - 1) < 0.25]
            predicted = f"{math.log(c * c) / (2 * eta * lam):.0f}" if c > 1 else "fast (gradient steps grow it)"
            lines.append(f"| init x{c:g}: first step where ||w|| is within 25% of the x1 run's | {predicted} | "
                         f"{int(close[0]) if close else 'not within 2,000 (ratio %.2f at the end)' % (rows[-1]['weight_norm'] / ref[rows[-1]['step']])} |")
    sweep = [("sweep_eta8_lam0.0004", 8, 4e-4), ("sweep_eta32_lam0.0001", 32, 1e-4),
             ("sweep_eta128_lam2.5e-05", 128, 2.5e-5)]
    have = [(n, eta, lam) for n, eta, lam in sweep if os.path.exists(path(n))]
    if len(have) >= 2:
        base_name, base_eta, base_lam = have[0]
        base_rows = read_csv(path(base_name))[1]
        base = next(r["weight_norm"] for r in base_rows if r["step"] == 1800)
        for name, eta, lam in have[1:]:
            rows = read_csv(path(name))[1]
            norm = next(r["weight_norm"] for r in rows if r["step"] == 1800)
            predicted = ((eta / lam) / (base_eta / base_lam)) ** 0.25
            lines.append(f"| ||w|| at step 1,800, eta {eta:g} / lambda {lam:g} against eta {base_eta:g} / lambda "
                         f"{base_lam:g} (same eta*lambda) | x{predicted:.2f} | x{norm / base:.2f} |")
        for name, eta, lam in have:
            lines.append(f"| final held-out loss, eta {eta:g}, lambda {lam:g} (eta*lambda sets the effective "
                         f"learning rate: the same loss expected) | | {final(read_csv(path(name))[1]):.3f} |")
    return lines


def main():
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=None, help="comma-separated run names (default: all of RUNS)")
    parser.add_argument("--sweep", action="store_true", help="the eta * lambda sweep instead of RUNS")
    parser.add_argument("--plot", action="store_true", help="only rebuild figures and table from the CSVs")
    parser.add_argument("--force", action="store_true", help="rerun runs whose CSV exists")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--pred", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "reproduction"), help="where the CSVs, figures and table go")
    args = parser.parse_args()
    OUT = args.out
    specs = SWEEP if args.sweep else RUNS
    names = args.runs.split(",") if args.runs else list(specs)
    unknown = [n for n in names if n not in {**RUNS, **SWEEP}]
    if unknown:
        sys.exit(f"error: --runs: unknown run {unknown[0]!r}; the runs are {list(RUNS) + list(SWEEP)}")
    if args.steps % EVAL_EVERY:
        sys.exit(f"error: --steps must be a multiple of {EVAL_EVERY}")
    os.makedirs(OUT, exist_ok=True)

    from official.nlp.data import pretrain_dataloader as loader
    from official.nlp.data.vocab import Vocab

    vocab = Vocab(os.path.join(CORPUS, "vocab.txt"))
    eval_docs = loader.load_documents([os.path.join(CORPUS, "heldout.txt")])
    eval_data = loader.text_dataset(eval_docs, vocab, args.batch, args.seq, args.pred, seed=1234)
    eval_data = eval_data.take(EVAL_BATCHES).cache()
    train_docs = loader.load_documents([os.path.join(CORPUS, "train.txt")])
    baseline = unigram_baseline(eval_data, train_docs, vocab)
    if not args.plot:
        for n in names:
            path = os.path.join(OUT, f"{n}.csv")
            if os.path.exists(path) and not args.force:
                print(f"{n}: {path} exists, skipped (--force reruns it)")
                continue
            print(f"{n}: {({**RUNS, **SWEEP})[n][0]}", flush=True)
            rows, _ = train(n, ({**RUNS, **SWEEP})[n], args, train_docs, eval_data, vocab)
            write_csv(path, rows, args)
            print(f"{n}: final held-out loss {final(rows):.3f} in {rows[-1]['seconds'] / 60:.1f} min", flush=True)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("The figures need matplotlib: .venv/bin/pip install matplotlib")
    plot(list(specs) if not args.runs else names, args, baseline)
    print(f"Figures and table in {OUT}")


if __name__ == "__main__":
    main()
