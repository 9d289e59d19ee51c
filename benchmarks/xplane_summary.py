"""Device time per kernel, and per kind of kernel, from a profiler trace (`*.xplane.pb`).

    .venv/bin/python benchmarks/xplane_summary.py TRACE_DIR_OR_FILE [--top 30] [--steps 15]

Reads the XSpace protobuf that `jax.profiler.trace` and `tf.profiler` write
(TensorFlow's copy of the proto definition parses it, so it runs here, on the
machine without a GPU, over traces brought back from one). Prints, for each
GPU compute stream, the kernels that took the most time and a breakdown by
kind (matmul/attention, transposes, reductions, random masks, the rest); with
`--steps`, per training step. This is how the dropout cost in
docs/benchmarks.md was found.
"""

import argparse
import collections
import glob
import os
import re


def kind(name):
    if re.search(r"nvjet|gemm|cublas|cutlass|sdpa|cudnn", name):
        return "matmul/attention"
    for word in ("compare", "transpose", "reduce"):
        if word in name:
            return {"compare": "masks (compare)"}.get(word, word)
    return "elementwise/other"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--steps", type=int, default=1, help="training steps in the trace (per-step figures)")
    args = parser.parse_args()
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = [args.trace] if os.path.isfile(args.trace) else glob.glob(f"{args.trace}/**/*.xplane.pb", recursive=True)
    if not paths:
        raise SystemExit(f"No *.xplane.pb under {args.trace!r}.")
    for path in paths:
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            if not plane.name.startswith("/device:GPU"):
                continue
            for line in plane.lines:
                if "Compute" not in line.name:
                    continue
                per_kernel, calls = collections.Counter(), collections.Counter()
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    per_kernel[name] += event.duration_ps / 1e9 / args.steps  # ms
                    calls[name] += 1
                total = sum(per_kernel.values())
                kinds = collections.Counter()
                for name, ms in per_kernel.items():
                    kinds[kind(name)] += ms
                print(f"{path}\n{plane.name} {line.name}: {total:.1f} ms" + (" per step" if args.steps > 1 else ""))
                print("  " + ", ".join(f"{k} {v:.1f}" for k, v in kinds.most_common()))
                for name, ms in per_kernel.most_common(args.top):
                    print(f"  {ms:9.2f} ms {100 * ms / total:5.1f}% x{calls[name]:<5d} {name[:90]}")


if __name__ == "__main__":
    main()
