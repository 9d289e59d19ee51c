"""What dropout costs a pretraining step: Keras's mask, keras_si's hashed mask, and no dropout, in one process.

    KERAS_BACKEND=jax python3 benchmarks/dropout_cost.py --layers 12 --hidden 768 --heads 12 \\
        --intermediate 3072 --batch 512 --policy mixed_bfloat16 --peak_tflops 989      # a GPU
    .venv/bin/python benchmarks/dropout_cost.py                                        # the CPU size, TF + XLA

Trains BERT (AdamW) as `pretrain_throughput.py` does, three times:
`keras` swaps `keras_si.layers.HashedDropout.call` back to `keras.layers.Dropout.call`
(Keras's own mask: ThreeFry keys on JAX, `stateless_dropout` on TensorFlow),
`keras_si` is the model as shipped, `none` sets both dropout rates to 0 (the
floor; on JAX, Keras's attention then also switches to cuDNN flash attention).
Prints sequences/s, MFU and the ratio to `keras`. With `--trace DIR` (JAX), it
writes a profiler trace of one epoch per variant; `xplane_summary.py` sums it
per kernel.
"""

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402

import pretrain_throughput as pt  # noqa: E402
from keras_si.layers import dropout as dropout_module  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pt.add_run_arguments(parser)
    parser.add_argument("--variants", default="keras,keras_si,none")
    parser.add_argument("--trace", default=None, help="JAX: write a profiler trace per variant under this folder")
    args = parser.parse_args()
    config, fps = pt.setup(args)
    shipped = dropout_module.HashedDropout.call
    rates = {}
    for variant in args.variants.split(","):
        dropout_module.HashedDropout.call = keras.layers.Dropout.call if variant == "keras" else shipped
        cfg = dataclasses.replace(config, dropout=0.0, attention_dropout=0.0) if variant == "none" else config
        trace = os.path.join(args.trace, variant) if args.trace else None
        rates[variant] = rate = pt.train_rate("bert", cfg, args, trace_dir=trace)
        line = f"{variant:9s} {rate:9.1f} sequences/s"
        if args.peak_tflops:
            line += f"  MFU {100 * rate * fps / args.peak_tflops / 1e12:.1f}%"
        if "keras" in rates:
            line += f"  {rate / rates['keras']:.3f}x Keras's dropout"
        print(line, flush=True)
    dropout_module.HashedDropout.call = shipped


if __name__ == "__main__":
    main()
