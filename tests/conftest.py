"""Test set-up shared by the whole suite.

Two logical CPU devices are configured before TensorFlow initialises its
devices, so that `tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])` can be
compared with single-device training on any machine (CI has no GPU).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:  # devices already initialised by an earlier import
    pass
