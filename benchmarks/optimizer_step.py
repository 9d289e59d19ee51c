"""One optimizer step on BERT-base-shaped variables: keras_si optimizers vs Keras's own.

Every optimizer updates the same ~109M float32 variables with the same
gradients, one compiled `apply` per call. Optimizers are timed round-robin
(one call each, repeated), so that a noisy neighbour slows all of them alike;
the median of the repeats is printed with its ratio to the baseline measured
in the same run.

    .venv/bin/python benchmarks/optimizer_step.py            # XLA, 7 repeats
    .venv/bin/python benchmarks/optimizer_step.py --no-xla   # TF graph kernels
    .venv/bin/python benchmarks/optimizer_step.py --layers 2 --repeats 3   # quick

With `KERAS_BACKEND=jax` (e.g. on a GPU machine without TensorFlow) the step
is `jax.jit(optimizer.stateless_apply)` with the state donated, as the JAX
trainer runs it.

Next to SGDP, AdamP, LARS and AGC, a `floor(...)` row measures the least an
exact step of that algorithm can cost here: its baseline's step plus one full
read of each tensor it must reduce before writing (see `ReadFloor`).

Also printed: the bytes of per-weight optimizer state ("slot bytes"), i.e. all
optimizer variables except scalars (iterations, learning rate, diagnostics).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import ops  # noqa: E402
import numpy as np  # noqa: E402

import keras_si  # noqa: E402
from keras_si.optimizers._norms import sum_of_squares  # noqa: E402


def bert_base_shapes(layers=12, hidden=768, intermediate=3072, vocab=30522, positions=512):
    shapes = [(vocab, hidden), (positions, hidden), (2, hidden), (hidden,), (hidden,)]
    for _ in range(layers):
        shapes += [(hidden, hidden), (hidden,)] * 4  # q, k, v, output projections
        shapes += [(hidden,), (hidden,)]  # attention LayerNorm
        shapes += [(hidden, intermediate), (intermediate,), (intermediate, hidden), (hidden,)]
        shapes += [(hidden,), (hidden,)]  # output LayerNorm
    shapes += [(hidden, hidden), (hidden,)]  # pooler
    return shapes


# (name, factory, baseline name). Toolbox optimizers add their entries here.
OPTIMIZERS = [
    ("SGD", lambda: keras.optimizers.SGD(1e-4), "SGD"),
    ("SGD(global_clipnorm)", lambda: keras.optimizers.SGD(1e-4, global_clipnorm=1.0), "SGD"),
    ("SGDClip", lambda: keras_si.SGDClip(1e-4, weight_decay=1e-2, clip_factor=2.0), "SGD"),
    ("SGDClip(momentum=0.9)", lambda: keras_si.SGDClip(1e-4, weight_decay=1e-2, momentum=0.9), "SGD(momentum=0.9)"),
    ("SGD(momentum=0.9)", lambda: keras.optimizers.SGD(1e-4, momentum=0.9), "SGD"),
    ("Adam", lambda: keras.optimizers.Adam(1e-6), "SGD"),
    ("Lamb", lambda: keras.optimizers.Lamb(1e-6), "Adam"),
]


def _add_toolbox_entries():
    """keras_si's toolbox optimizers, where present in this version."""
    extra = [
        ("SGDP", lambda: keras_si.SGDP(1e-4, momentum=0.9, weight_decay=1e-4), "SGD(momentum=0.9)"),
        ("LARS", lambda: keras_si.LARS(1e-4, momentum=0.9, weight_decay=1e-4), "SGD(momentum=0.9)"),
        ("AdamP", lambda: keras_si.AdamP(1e-6, weight_decay=1e-4), "Adam"),
        ("RAdam", lambda: keras_si.RAdam(1e-6), "Adam"),
        ("AGC(SGD)", lambda: keras_si.AGC(keras.optimizers.SGD(1e-4)), "SGD"),
    ]
    names = {"SGDP": "SGDP", "LARS": "LARS", "AdamP": "AdamP", "RAdam": "RAdam", "AGC(SGD)": "AGC"}
    for name, factory, base in extra:
        if hasattr(keras_si, names[name]):
            OPTIMIZERS.append((name, factory, base))


class ReadFloor:
    """A baseline optimizer's step plus full reads of the tensors an algorithm needs before it may write.

    SGDP, AdamP, LARS and AGC must know norms or dot products over a whole
    variable (or output unit) *before* writing any of it, so an exact step
    reads what its baseline reads plus these tensors once more. This entry
    measures that lower bound on the same machine, in the same run: the
    baseline's step and one `_norms.sum_of_squares` of each extra tensor, the
    reduction the algorithms use (on XLA:CPU it reads a 30522 x 768 table as
    fast as a plain `reduce_sum` does, 4.8 ms, and at about the speed at which
    SGD with momentum reads each of its tensors). A step that reduces several
    statistics of the same tensors in separate passes sits above this floor. `reads` holds "w" (weights),
    "g" (gradients) and "s" (the baseline's per-weight slots: momentum, or
    Adam's m and v).
    """

    def __init__(self, base, reads):
        self.base, self.reads = base, reads

    def tensors(self, variables, grads, slots):
        groups = {"w": variables, "g": grads, "s": slots}
        return [t for key in self.reads for t in groups[key]]

    @staticmethod
    def after_reads(grads, sums):
        """`grads` times exactly 1, made to depend on `sums` as the real algorithms' updates do.

        Without the dependency XLA may write the weights first and keep a copy
        of the old ones for the reads, which costs more than the algorithms
        it should bound. (XLA does not fold `0 * s` for floats: NaN semantics.)
        """
        one = 1.0 + 0.0 * sum(sums)
        return [g * ops.cast(one, g.dtype) for g in grads]


# name -> (baseline name, baseline factory, reads): the floors printed next to the toolbox entries.
FLOORS = {
    "LARS": ("SGD(momentum=0.9)", lambda: keras.optimizers.SGD(1e-4, momentum=0.9), "wg"),
    "SGDP": ("SGD(momentum=0.9)", lambda: keras.optimizers.SGD(1e-4, momentum=0.9), "wgs"),
    "AdamP": ("Adam", lambda: keras.optimizers.Adam(1e-6), "wgs"),
    "AGC(SGD)": ("SGD", lambda: keras.optimizers.SGD(1e-4), "wg"),
}


def _add_floor_entries():
    for name, (base, factory, reads) in FLOORS.items():
        OPTIMIZERS.append((f"floor({name})", lambda f=factory, r=reads: ReadFloor(f(), r), base))


def slot_bytes(optimizer):
    if isinstance(optimizer, ReadFloor):
        optimizer = optimizer.base
    return sum(
        int(np.prod(v.shape)) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
        for v in optimizer.variables
        if len(v.shape) > 0
    )


def _tf_step(opt, init, grad_values, xla):
    import tensorflow as tf

    floor = opt if isinstance(opt, ReadFloor) else None
    opt = floor.base if floor else opt
    variables = [keras.Variable(v, name=f"w{i}") for i, v in enumerate(init)]
    grads = [tf.constant(g) for g in grad_values]
    opt.build(variables)
    slots = [v for v in opt.variables if len(v.shape) > 0]

    def apply(g):
        if floor:
            g = floor.after_reads(g, [sum_of_squares(t) for t in floor.tensors(variables, g, slots)])
        opt.apply(g, variables)

    fn = tf.function(apply, jit_compile=xla)

    def step():
        fn(grads)
        float(variables[0][0, 0])  # wait for the step to finish

    step()  # compile
    step()
    return step


def _jax_step(opt, init, grad_values, xla):
    import jax

    floor = opt if isinstance(opt, ReadFloor) else None
    opt = floor.base if floor else opt
    variables = [keras.Variable(v, name=f"w{i}") for i, v in enumerate(init)]
    opt.build(variables)
    state = {
        "opt": [v.value for v in opt.variables],
        "vars": [v.value for v in variables],
    }
    grads = [jax.numpy.asarray(g) for g in grad_values]
    has_shape = [len(v.shape) > 0 for v in opt.variables]

    # Inputs in the order of the outputs (weights, then optimizer state), as in
    # Keras's JAX trainer, whose step returns the state it was given. JAX pairs
    # donated input buffers with outputs of the same shape in order; with
    # `stateless_apply`'s own argument order (optimizer state first) a weight
    # landed in a momentum's buffer and XLA copied every weight and slot
    # (Keras's SGD with momentum measured 6x slower than with this order).
    def apply(model_vars, opt_vars, grads):
        if floor:
            slots = [v for v, keep in zip(opt_vars, has_shape) if keep]
            grads = floor.after_reads(grads, [sum_of_squares(t) for t in floor.tensors(model_vars, grads, slots)])
        return opt.stateless_apply(opt_vars, grads, model_vars)

    fn = jax.jit(apply, donate_argnums=(0, 1)) if xla else apply

    def step():
        new_vars, new_opt = fn(state["vars"], state["opt"], grads)
        state["vars"], state["opt"] = new_vars, new_opt
        jax.block_until_ready(state["vars"])

    step()  # compile
    step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-xla", action="store_true")
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="",
                        help="comma-separated names measured together; ';' separates groups measured one "
                             "after the other (baselines and floors are added to each group)")
    args = parser.parse_args()

    foundation = [name for name, _, _ in OPTIMIZERS]
    _add_toolbox_entries()
    _add_floor_entries()
    if args.only:
        groups = [group.split(",") for group in args.only.split(";") if group]
    else:
        # Groups measured one after the other, each round-robin with its own
        # baselines (and floor): all entries at once (a copy of the weights and
        # the slots for each) need more than the 24 GiB of this project's machines.
        toolbox = [name for name, _, _ in OPTIMIZERS if name not in foundation and not name.startswith("floor(")]
        groups = [foundation] + [[name] for name in toolbox]

    shapes = bert_base_shapes(layers=args.layers)
    if not args.no_header:
        if args.repeats < 5:
            print(f"note: {args.repeats} repeats; quote medians of >= 5")
        print(f"{sum(int(np.prod(s)) for s in shapes) / 1e6:.1f}M float32 parameters in {len(shapes)} variables; "
              f"backend {keras.backend.backend()}; XLA={'off' if args.no_xla else 'on'}; median of {args.repeats} "
              f"round-robin repeats; keras {keras.__version__}, {os.cpu_count()} CPUs")
        print(f"{'optimizer':24s} {'median ms':>10s} {'ratio':>7s}  {'vs':20s} {'slot bytes':>14s}", flush=True)
    if len(groups) > 1:
        # One process per group: TensorFlow does not give a group's weights and
        # slots back when they go out of scope (the resident size grew by each
        # group's footprint, and the whole toolbox ran out of 24 GiB).
        for group in groups:
            command = [sys.executable, os.path.abspath(__file__), "--only", ",".join(group), "--no-header",
                       "--layers", str(args.layers), "--repeats", str(args.repeats)]
            subprocess.run(command + (["--no-xla"] if args.no_xla else []), check=True)
        return

    rng = np.random.RandomState(0)
    init = [rng.randn(*s).astype("float32") * 0.02 for s in shapes]
    grad_values = [rng.randn(*s).astype("float32") * 1e-3 for s in shapes]
    measure(with_baselines(groups[0]), init, grad_values, args)


def with_baselines(names):
    """The entries named, with their baselines (and the baselines' baselines)."""
    wanted = set(names) | {f"floor({name})" for name in names if name in FLOORS}
    for _ in range(2):
        wanted |= {base for name, _, base in OPTIMIZERS if name in wanted}
    return [e for e in OPTIMIZERS if e[0] in wanted]


def measure(entries, init, grad_values, args):
    """Times `entries` round-robin and prints one line each (ratios within this group)."""
    make_step = _tf_step if keras.backend.backend() == "tensorflow" else _jax_step
    optimizers, steps = {}, {}
    for name, factory, _ in entries:
        optimizers[name] = factory()
        steps[name] = make_step(optimizers[name], init, grad_values, xla=not args.no_xla)

    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, _, base in entries:
        ratio = med[name] / med[base]
        print(f"{name:24s} {1e3 * med[name]:10.1f} {ratio:7.2f}x  {base:20s} {slot_bytes(optimizers[name]):14,d}",
              flush=True)
    print()


if __name__ == "__main__":
    main()
