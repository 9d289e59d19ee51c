"""Pretraining throughput of BERT (AdamW) and SIBERT (SGDClip + Lamb), and of the input pipelines.

    .venv/bin/python benchmarks/pretrain_throughput.py                       # the issue's size, CPU
    .venv/bin/python benchmarks/pretrain_throughput.py --model_garden ../shared/bench/model_garden_bert.sh
    .venv/bin/python benchmarks/pretrain_throughput.py --input_only --batch 512  # input pipelines alone

Default size (the Model Garden comparison): 4 layers, hidden 256, 4 heads,
intermediate 1024, sequence 128, batch 32, 20 predictions, vocabulary 30522,
XLA on. Each model trains on synthetic well-formed batches (the input pipeline
is measured separately) with `steps_per_execution=--steps`; at least `--chunks`
executions are timed, each from the end of the previous one in the same epoch
(Keras's work between epochs and the compiling first epoch are left out, as the
Model Garden reference times bare steps); the median gives sequences/s. Model
FLOPs per sequence are counted from the shapes (matmuls only, training = 3 x
forward), so the rate carries to other devices: MFU = achieved FLOP/s / the
device's peak (`--peak_tflops`).

With `--model_garden SCRIPT`, the Model Garden's BertPretrainerV2 reference
(tf-models-official, its own virtualenv) runs in the same benchmark run and the
ratio is printed. The input pipelines (TFRecords, dynamic masking) are timed
on the shipped corpus and printed as a multiple of the training consumption.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from official.nlp import modeling, optimization  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flops_per_sequence(c, seq, pred):
    """Training FLOPs (3 x forward, matmuls only) of one sequence."""
    h, i, layers, v = c.hidden_dim, c.intermediate_dim, c.num_layers, c.vocab_size
    dense = layers * (4 * h * h + 2 * h * i) * 2 * seq  # q, k, v, o and the feed-forward
    attention = layers * 2 * 2 * seq * seq * h  # scores and context
    head = 2 * pred * (h * h + h * v)  # MLM transform + vocabulary projection at the masked positions
    return 3 * (dense + attention + head)


def synthetic_data(batch, seq, pred, vocab, steps):
    """Well-formed random batches as numpy arrays (backend-neutral: also runs on JAX without TensorFlow)."""
    n = batch * steps
    x = modeling.dummy_features(n, seq, pred, vocab)
    rng = np.random.RandomState(0)
    y = {"mlm": rng.randint(0, vocab, (n, pred)).astype("int32"), "nsp": rng.randint(0, 2, n).astype("int32")}
    w = {"mlm": np.ones((n, pred), "float32"), "nsp": np.ones(n, "float32")}
    return x, y, w


def train_rate(model_type, config, args, trace_dir=None):
    """Median sequences/s of `model.fit`; with `trace_dir` (JAX), a profiler trace of one more epoch."""
    keras.utils.set_random_seed(0)
    model = modeling.Pretrainer(model_type, config)
    model(modeling.dummy_features(2, args.seq, args.pred, config.vocab_size))
    total = args.steps * (args.chunks + 1)
    if model_type == "sibert":
        opt = optimization.sibert_optimizer(model, total, head_warmup_steps=min(100, total // 2))
    else:
        opt = optimization.bert_optimizer(total, warmup_steps=min(100, total // 2))
    metrics, weighted = optimization.pretraining_metrics()
    model.compile(optimizer=opt, loss=optimization.pretraining_losses(), metrics=metrics, weighted_metrics=weighted,
                  jit_compile=not args.no_xla, steps_per_execution=args.steps)
    times = []

    class Timer(keras.callbacks.Callback):
        """Times each execution of `steps` steps from the end of the previous one.

        Only executions within an epoch count: Keras's work between epochs
        (a new iterator, logs) is not training throughput, and the Model
        Garden reference times bare steps.
        """

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch, self.last = epoch, None

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if self.last is not None and self.epoch >= 1:  # the first epoch compiles
                times.append(now - self.last)
            self.last = now

    x, y, w = synthetic_data(args.batch, args.seq, args.pred, config.vocab_size, args.steps * 3)
    model.fit(x, y, sample_weight=w, batch_size=args.batch, epochs=1 + -(-args.chunks // 2), shuffle=False,
              verbose=0, callbacks=[Timer()])
    if trace_dir:
        import jax

        with jax.profiler.trace(trace_dir):
            model.fit(x, y, sample_weight=w, batch_size=args.batch, epochs=1, shuffle=False, verbose=0)
    return args.batch * args.steps / statistics.median(times)


def input_rates(args):
    """Sequences/s of the TFRecord loader and of dynamic masking, on the shipped corpus."""
    from official.nlp.data import create_pretraining_data as cpd
    from official.nlp.data import pretrain_dataloader as loader
    from official.nlp.data.vocab import Vocab

    vocab_file = os.path.join(ROOT, "official", "nlp", "corpus", "vocab.txt")
    heldout = os.path.join(ROOT, "official", "nlp", "corpus", "heldout.txt")
    vocab = Vocab(vocab_file)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = cpd.create([heldout], vocab_file, os.path.join(tmp, "bench"), max_seq_length=args.seq,
                           max_predictions_per_seq=args.pred, dupe_factor=4)
        datasets = {
            "tfrecord": loader.tfrecord_dataset(files, args.batch, args.seq, args.pred, seed=0, shuffle_buffer=1000),
            "dynamic_masking": loader.text_dataset(loader.load_documents(heldout), vocab, args.batch, args.seq,
                                                   args.pred, seed=0),
        }
        for name, ds in datasets.items():
            it = iter(ds)
            for _ in range(5):
                next(it)
            start = time.perf_counter()
            for _ in range(50):
                next(it)
            rates[name] = 50 * args.batch / (time.perf_counter() - start)
    return rates


def add_run_arguments(parser):
    """The model size, timing, precision and MFU flags (shared with `dropout_cost.py`)."""
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pred", type=int, default=20)
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed chunk")
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=None, help="device peak, for MFU")
    parser.add_argument("--policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")


def setup(args):
    """Sets the dtype policy; returns the encoder config the flags describe and its FLOPs per sequence."""
    keras.mixed_precision.set_global_policy(args.policy)
    config = modeling.EncoderConfig(vocab_size=args.vocab, hidden_dim=args.hidden, num_layers=args.layers,
                                    num_heads=args.heads, intermediate_dim=args.intermediate,
                                    max_sequence_length=max(512, args.seq))
    return config, flops_per_sequence(config, args.seq, args.pred)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser)
    parser.add_argument("--model_garden", default=None, help="the Model Garden reference script, run alongside")
    parser.add_argument("--skip_input", action="store_true")
    parser.add_argument("--input_only", action="store_true",
                        help="time only the input pipelines (at --seq, --batch, --pred)")
    args = parser.parse_args()
    if args.input_only:
        for name, rate in input_rates(args).items():
            print(f"input {name:16s} {rate:9.1f} sequences/s (batch {args.batch})")
        return
    config, fps = setup(args)
    print(f"L={args.layers} H={args.hidden} A={args.heads} I={args.intermediate} S={args.seq} B={args.batch} "
          f"P={args.pred} V={args.vocab}; XLA={'off' if args.no_xla else 'on'}; {fps / 1e9:.2f} GFLOP/sequence; "
          f"median of {args.chunks} chunks of {args.steps} steps; backend {keras.backend.backend()}, "
          f"policy {args.policy}")
    results = {}
    reference = None
    if args.model_garden:
        out = subprocess.run(["bash", args.model_garden, str(args.layers), str(args.hidden), str(args.heads),
                              str(args.seq), str(args.batch), str(args.vocab), str(args.pred)],
                             capture_output=True, text=True, check=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
        reference = json.loads(line)
        print("Model Garden reference:", line)
    for model_type in ("bert", "sibert"):
        rate = train_rate(model_type, config, args)
        results[model_type] = rate
        tflops = rate * fps / 1e12
        line = f"{model_type:7s} {rate:8.2f} sequences/s  {tflops * 1e3:8.1f} GFLOP/s"
        if args.peak_tflops:
            line += f"  MFU {100 * tflops / args.peak_tflops:.1f}%"
        if reference:
            ref = reference.get("sequences_per_second") or reference.get("seq_per_s")
            if ref:
                line += f"  {rate / ref:.2f}x the Model Garden's {ref:.1f}"
        print(line, flush=True)
    if not args.skip_input:
        consumption = max(results.values())
        for name, rate in input_rates(args).items():
            print(f"input {name:16s} {rate:9.1f} sequences/s = {rate / consumption:.1f}x training consumption")


if __name__ == "__main__":
    main()
