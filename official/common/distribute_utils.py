"""tf.distribute strategies from a flag value, as the Model Garden names them.

    strategy = get_strategy("mirrored")
    strategy = get_strategy("tpu", tpu="local")        # a TPU VM
    strategy = get_strategy("multi_worker_mirrored")   # TF_CONFIG describes the cluster
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def get_strategy(name, tpu=None, num_gpus=None):
    """Returns the `tf.distribute.Strategy` called `name`.

    Args:
        name: one of `STRATEGIES`.
        tpu: the TPU address for `name="tpu"`: "local" on a TPU VM, a
            `grpc://` address or a TPU name. Required for TPUs, ignored otherwise.
        num_gpus: for "mirrored", use this many GPUs (default: all); with
            none available, MirroredStrategy runs on the CPU.

    Raises:
        ValueError: naming the flag, for an unknown strategy, a TPU strategy
            without an address, or a multi-worker strategy without TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}.")
    if name != "tpu" and tpu:
        raise ValueError(f"--tpu={tpu!r} is only used with --strategy=tpu (got --strategy={name}).")
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if num_gpus is not None:
            if num_gpus > len(gpus):
                raise ValueError(f"--num_gpus={num_gpus} but only {len(gpus)} GPUs are visible.")
            gpus = gpus[:num_gpus]
        return tf.distribute.MirroredStrategy(gpus or None)
    if name == "multi_worker_mirrored":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "--strategy=multi_worker_mirrored needs the TF_CONFIG environment variable "
                "describing the cluster and this worker's task."
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    # TPU
    if not tpu:
        raise ValueError("--strategy=tpu needs --tpu (\"local\" on a TPU VM, or the TPU's name or address).")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="" if tpu == "local" else tpu)
    if tpu != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def chief_and_task(strategy):
    """(is this worker the chief, its task id): the chief writes checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None) or 0
    if not task_type or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True, 0
    cluster = resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)
    return chief, task_id
