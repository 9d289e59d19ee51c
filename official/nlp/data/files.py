"""Input files: glob expansion and TFRecord integrity checks with errors that name the file."""

import tensorflow as tf


def expand_globs(patterns, what="--input_files"):
    """Expands comma-separated globs (local or gs://); a missing or empty glob is an error naming it."""
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p]
    if not patterns:
        raise ValueError(f"{what} is empty.")
    files = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise ValueError(f"{what}: no file matches {pattern!r}.")
        files.extend(matched)
    return files


def check_tfrecord_files(files, full_scan_bytes=1 << 30):
    """Reads the records of `files` and raises a ValueError naming a corrupt or truncated one.

    Files are read in full while their total size is below `full_scan_bytes`
    (a fast raw read, no parsing); above it only each file's first record is
    read, and corruption further in surfaces during training as TF's
    DataLossError.
    """
    total = sum(tf.io.gfile.stat(f).length for f in files)
    for f in files:
        if tf.io.gfile.stat(f).length == 0:
            raise ValueError(f"TFRecord file {f} is empty.")
        ds = tf.data.TFRecordDataset(f)
        if total > full_scan_bytes:
            ds = ds.take(1)
        try:
            for _ in ds:
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as e:
            raise ValueError(f"TFRecord file {f} is corrupt or truncated: {e.message.splitlines()[0]}") from None
