"""The paper's Figure 1 at small scale: SIBERT + SGDClip is robust to the initialisation scale, BERT + SGD is not.

    .venv/bin/python examples/init_scale_robustness.py            # ~8 minutes on 2 CPU cores
    .venv/bin/python examples/init_scale_robustness.py --steps 200  # quicker, rougher

Pretrains SIBERT-tiny (encoder on SGDClip, heads on Lamb, as in the paper)
and BERT-tiny (everything on plain SGD) on the shipped corpus with dynamic
masking, after multiplying every encoder parameter at initialisation by
c in {0.01, 1, 100}; the heads keep the usual initialisation. Writes
`docs/images/init_scale_robustness.png` (masked-LM loss per step) and
`docs/images/init_scale_robustness.md` (a table of the final losses).

The theory's warm-up: from an init c times too large, weight decay needs about
ln(c^2) / (2 eta lam) steps to bring the norm to equilibrium, so eta * lam
must fit the step budget: eta = 2, lam = 0.01 gives ~230 steps for c = 100.
Requires matplotlib (an optional dependency of this example).
"""

import argparse
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from official.nlp import modeling, optimization  # noqa: E402
from official.nlp.data import pretrain_dataloader as loader  # noqa: E402
from official.nlp.data.vocab import Vocab  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = (0.01, 1.0, 100.0)


WINDOW = 20  # steps per point: Keras's logs are means over an epoch, so an epoch is a window


class LossRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["mlm_loss"]))


def train(model_type, scale, data, vocab_size, steps, args):
    keras.utils.set_random_seed(0)
    config = modeling.get_config("tiny", vocab_size=vocab_size, max_position_embeddings=args.seq)
    model = modeling.Pretrainer(model_type, config)
    model(modeling.dummy_features(2, args.seq, args.pred, vocab_size))
    for v in model.encoder.trainable_variables:
        v.assign(v * scale)
    if model_type == "sibert":
        optimizer = optimization.sibert_optimizer(
            model, steps, learning_rate=args.sgdclip_lr, weight_decay=args.weight_decay, clip_factor=2.0,
            head_learning_rate=args.lamb_lr, head_warmup_steps=steps // 10, decay_at=(0.6, 0.9))
    else:
        optimizer = keras.optimizers.SGD(args.sgd_lr)
    metrics, weighted = optimization.pretraining_metrics()
    model.compile(optimizer=optimizer, loss=optimization.pretraining_losses(), metrics=metrics,
                  weighted_metrics=weighted)
    recorder = LossRecorder()
    model.fit(data, steps_per_epoch=WINDOW, epochs=steps // WINDOW, verbose=0, callbacks=[recorder])
    return recorder.losses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--pred", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sgdclip_lr", type=float, default=2.0)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--lamb_lr", type=float, default=5e-3)
    parser.add_argument("--sgd_lr", type=float, default=0.5)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "init_scale_robustness"))
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("This example needs matplotlib: .venv/bin/pip install matplotlib")

    vocab = Vocab(os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt"))
    docs = loader.load_documents(os.path.join(ROOT, "official", "nlp", "corpus", "train.txt"))
    curves = {}
    for model_type, label in (("sibert", "SIBERT + SGDClip"), ("bert", "BERT + SGD")):
        for scale in SCALES:
            data = loader.text_dataset(docs, vocab, args.batch, args.seq, args.pred, seed=0)
            losses = train(model_type, scale, data, len(vocab), args.steps, args)
            curves[(label, scale)] = losses
            print(f"{label:18s} init x{scale:<6g} MLM loss: first {losses[0]:.3f}, last {losses[-1]:.3f}", flush=True)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, label in zip(axes, ("SIBERT + SGDClip", "BERT + SGD")):
        for scale in SCALES:
            y = np.asarray(curves[(label, scale)], np.float64)
            y = np.where(np.isfinite(y), y, np.nan)
            off = " (off the scale)" if np.nanmin(y) > 12 or not np.isfinite(y).any() else ""
            ax.plot(WINDOW * np.arange(1, len(y) + 1), y, label=f"init x{scale:g}{off}")
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylim(0, 12)
        ax.legend()
    axes[0].set_ylabel(f"masked-LM loss (mean over {WINDOW} steps)")
    fig.suptitle(f"Tiny models, shipped corpus, {args.steps} steps: encoder parameters x c at initialisation")
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=110)

    with open(args.out + ".md", "w") as f:
        f.write(f"Masked-LM loss (mean over the last {WINDOW} steps) after {args.steps} steps, batch {args.batch}, "
                f"sequence {args.seq}; `{' '.join(sys.argv)}`\n\n")
        f.write("| model | init x0.01 | init x1 | init x100 |\n| --- | ---: | ---: | ---: |\n")
        for label in ("SIBERT + SGDClip", "BERT + SGD"):
            cells = []
            for scale in SCALES:
                last = curves[(label, scale)][-1]
                cells.append(f"{last:.3f}" if math.isfinite(last) else "diverged")
            f.write(f"| {label} | " + " | ".join(cells) + " |\n")
    print(f"Wrote {args.out}.png and {args.out}.md")


if __name__ == "__main__":
    main()
