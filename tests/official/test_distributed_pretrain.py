"""`official.nlp.pretrain` under tf.distribute, each against a one-device run on the same global batches.

- MirroredStrategy over the two logical CPU devices of the test process (conftest.py), in this process with
  the suite's shared strategy (tests/testing_utils.two_cpu_strategy).
- MultiWorkerMirroredStrategy with two worker processes (one CPU replica each) on loopback.

Why the runs can be equal: Keras's `fit` splits every global batch of the pipeline over the replicas (across
workers, tf.data's auto-sharding gives each worker its replicas' part), so together the replicas see exactly the
one-device batch; the replicas' gradients are summed with the loss divided by the number of replicas. Two
things would break exact equality, and the tests rule them out:

- dropout draws its masks per replica, not over the global batch: the runs use `--dropout=0`;
- the masked-LM loss is a weighted mean over the real predictions *per replica* (as in the Model Garden), so
  the replicas' mean of means equals the global mean only when the replicas hold as many real predictions;
  `test_batches_have_equal_prediction_counts` checks that every sequence of these batches has all
  `max_predictions_per_seq` of them.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from official.nlp import pretrain
from official.nlp.data.vocab import Vocab
from tests import testing_utils as tu
from tests.official.test_pretrain import ROOT, SMALL, flag_values

# The same flags for every run here (on top of test_pretrain.SMALL): 4 steps, a checkpoint every 2.
RUN = dict(SMALL, dropout=0.0, eval_text_files=None, seed=3, train_steps=4, steps_per_epoch=2, export=False)

# Float32 tolerance for a distributed run against the one-device run. The runs do the same arithmetic except
# for the order of some sums: the gradient is the all-reduce of two half-batch gradients instead of one sum over
# the batch, and the loss likewise. Reordering a float32 sum changes it by a few ulps (eps = 1.2e-7 relative), and
# four steps of SGDClip (which normalises by the gradient's norm) and Lamb (trust ratios) carry that forward: we
# see differences of about 6e-8 absolute. A real distribution error (a replica's half of the batch lost, the loss
# not divided by the replica count, unsynchronised optimizer slots) shows at the scale of a step's update, which
# the `one_device_run` fixture checks is over 1e3 times atol here (steps 3-4 change variables by about 0.2).
RTOL, ATOL = 1e-5, 1e-6

# A hang (a worker waiting forever for its peer in a collective) fails the test after this many seconds.
WORKER_TIMEOUT_S = 150


def _assert_checkpoints_close(actual, expected):
    tu.assert_checkpoints_close(actual, expected, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("one_device"))
    _, summary = pretrain.run(flag_values(model_dir=model_dir, strategy="one_device", **RUN))
    # The comparison is not vacuous: training moves the weights far more than the tolerance.
    before, after = tu.checkpoint_variables(os.path.join(model_dir, "ckpt-2")), tu.checkpoint_variables(os.path.join(model_dir, "ckpt-4"))
    moved = max(float(np.max(np.abs(after[n] - before[n]))) for n in after if after[n].dtype.kind == "f")
    assert moved > 1e3 * ATOL, f"steps 3-4 changed the checkpointed variables by only {moved}"
    return model_dir, summary


def test_batches_have_equal_prediction_counts():
    f = flag_values(model_dir="unused", **RUN)
    data = pretrain.make_dataset(f, None, Vocab(f.vocab_file))(None)
    for batch in data.take(f.train_steps):
        counts = batch["masked_lm_weights"].numpy().sum(axis=1)
        assert (counts == f.max_predictions_per_seq).all(), (
            f"real predictions per sequence {counts}: the per-replica MLM means would not average to the "
            "global mean, so the distributed runs could not equal the one-device run"
        )


def test_mirrored_on_two_cpus_matches_one_device(one_device_run, tmp_path):
    strategy = tu.two_cpu_strategy()
    assert strategy.num_replicas_in_sync == 2
    model_dir = str(tmp_path / "mirrored")
    model, summary = pretrain.run(flag_values(model_dir=model_dir, strategy="mirrored", **dict(RUN, export=True)),
                                  strategy=strategy)
    assert model.distribute_strategy is strategy
    assert model.encoder_config.dropout == model.encoder_config.attention_dropout == 0.0  # --dropout=0
    assert {"ckpt-2.index", "ckpt-4.index", "checkpoint", "flags.json", "summary.json", "export"} <= set(
        os.listdir(model_dir))
    assert tf.io.gfile.exists(os.path.join(model_dir, "export", "saved_model.pb"))
    expected_dir, expected = one_device_run
    assert summary["steps"] == expected["steps"] == 4
    np.testing.assert_allclose(summary["final"]["loss"], expected["final"]["loss"], rtol=RTOL)
    _assert_checkpoints_close(os.path.join(model_dir, "ckpt-4"), os.path.join(expected_dir, "ckpt-4"))


def _free_ports(n):
    # Ports the OS had free a moment ago (another process could take one before the workers bind it: unlikely).
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _cli_flags(values):
    out = []
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        out.append(f"--{name}={value}")
    return out


def _run_two_workers(model_dir, logs_dir, **overrides):
    """Runs 2 worker processes of pretrain to completion; returns their outputs (chief first)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    # --deterministic: the resumed run must redo steps 3-4 exactly as the first run did.
    # --log_level=info: the strategy's replica count is an INFO line.
    cmd = [sys.executable, "-m", "official.nlp.pretrain", "--strategy=multi_worker_mirrored", "--deterministic",
           "--log_level=info",
           f"--model_dir={model_dir}"] + _cli_flags(dict(RUN, **overrides))
    procs, logs = [], []
    try:
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            # One CPU device per worker and no GPU (two workers must not share one).
            env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), CUDA_VISIBLE_DEVICES="",
                       TF_CPP_MIN_LOG_LEVEL="2")
            log = open(os.path.join(logs_dir, f"worker{index}.log"), "w+")
            logs.append(log)
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        # Until both are done, one fails (its peer would then wait for it forever), or the deadline passes.
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        why = ""
        while True:
            codes = [proc.poll() for proc in procs]
            if all(c is not None for c in codes):
                break
            if any(c not in (None, 0) for c in codes):
                why = " (a worker failed: the other was killed)"
                break
            if time.monotonic() > deadline:
                why = f" (killed: not done after {WORKER_TIMEOUT_S} s)"
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    tails = "\n".join(f"--- worker {i} (last lines):\n" + "\n".join(o.splitlines()[-25:])
                      for i, o in enumerate(outputs))
    codes = [proc.returncode for proc in procs]
    assert codes == [0, 0], f"worker exit codes {codes}{why}\n{tails}"
    return outputs


@pytest.mark.slow
def test_multi_worker_two_processes_chief_writes_matches_one_device_and_resumes(one_device_run, tmp_path):
    model_dir = str(tmp_path / "model")
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    # With held-out evaluation before and after training (model.evaluate under the strategy too).
    chief_out, worker_out = _run_two_workers(model_dir, str(logs_dir), export=True,
                                             eval_text_files=SMALL["eval_text_files"])

    # Only the chief writes into --model_dir (worker 1 saves into a temporary directory, then deletes it).
    assert sorted(os.listdir(model_dir)) == sorted([
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-4.data-00000-of-00001", "ckpt-4.index",
        "export", "flags.json", "logs", "model_config.json", "summary.json"])
    assert len(tf.io.gfile.glob(os.path.join(model_dir, "logs", "train", "events.out.tfevents.*"))) == 1
    assert "Exported a SavedModel" in chief_out and "Exported" not in worker_out
    assert "with 2 replica(s)" in chief_out and "with 2 replica(s)" in worker_out

    # Two workers of one replica each on the global batch train like one device.
    expected_dir, expected = one_device_run
    _assert_checkpoints_close(os.path.join(model_dir, "ckpt-4"), os.path.join(expected_dir, "ckpt-4"))
    summary = json.load(open(os.path.join(model_dir, "summary.json")))
    np.testing.assert_allclose(summary["final"]["loss"], expected["final"]["loss"], rtol=RTOL)
    heldout = summary["heldout"]
    assert 0 <= heldout["before"]["mlm_accuracy"] <= 1 and 0 <= heldout["after"]["mlm_accuracy"] <= 1, heldout
    assert "Held-out after training: MLM loss" in chief_out

    # Resume: go back to the state of a run stopped after its step-2 checkpoint, run both workers again.
    final = tu.checkpoint_variables(os.path.join(model_dir, "ckpt-4"))
    for name in tf.io.gfile.glob(os.path.join(model_dir, "ckpt-4.*")) + [os.path.join(model_dir, "summary.json")]:
        os.remove(name)
    tf.io.gfile.rmtree(os.path.join(model_dir, "export"))
    step2 = os.path.join(model_dir, "ckpt-2")
    tf.compat.v1.train.update_checkpoint_state(model_dir, step2, all_model_checkpoint_paths=[step2])
    outputs = _run_two_workers(model_dir, str(logs_dir))
    for i, out in enumerate(outputs):
        assert "(step 2)" in out and "Resuming from" in out, f"worker {i} did not resume from step 2"
    assert {"ckpt-4.index", "summary.json"} <= set(os.listdir(model_dir))
    assert not [n for n in os.listdir(model_dir) if n.startswith(".worker")]
    resumed = tu.checkpoint_variables(os.path.join(model_dir, "ckpt-4"))
    for name in final:
        np.testing.assert_allclose(resumed[name], final[name], rtol=1e-6, atol=1e-7, err_msg=name)
