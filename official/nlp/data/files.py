"""Inputs: glob expansion, TFRecord integrity checks and prepared TFDS datasets, with errors that name the input."""

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


def load_prepared_tfds(name, split, data_dir=None):
    """`(dataset, info)` of a TFDS split that was prepared beforehand; nothing is downloaded.

    An unknown split, or a dataset not prepared in `data_dir`, is a ValueError
    that says so and how to prepare it (TFDS itself raises a bare AssertionError).
    """
    import tensorflow_datasets as tfds

    info = tfds.builder(name, data_dir=data_dir).info
    if info.splits and split not in info.splits:
        raise ValueError(f"{name} has no split {split!r}; it has {sorted(info.splits)}.")
    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except AssertionError as e:  # TFDS's way of saying the data is not there
        raise ValueError(
            f"TFDS dataset {name} is not prepared in {data_dir or '~/tensorflow_datasets'} "
            f"(nothing is downloaded here): run `tfds build {name} --data_dir=...` first. ({e})"
        ) from None
    return ds, info
