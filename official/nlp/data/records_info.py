"""The facts of a set of pretraining TFRecords, written beside them, so that training can check its flags.

`create_pretraining_data --output_file=<prefix>` writes, next to its shards
`<prefix>-00000-of-0000N.tfrecord`, ...:

* `<prefix>.info.json`: the facts (layout below);
* `<prefix>.vocab.txt`: a copy of the vocabulary the records were tokenized
  with (cleaned, see `official.nlp.data.vocab.read_tokens`). The records are
  thus self-contained: the ids mean something only with this file, and the
  original may be edited or deleted later. The JSON names the copy relative to
  itself, so the directory can be moved or copied (e.g. to gs://) whole.

The JSON's fields: `format`, `format_version`, `tool`, `tool_version`,
`vocab_file` (the copy's name), `source_vocab_file` (the path given),
`vocab_sha256` (see `official.nlp.data.vocab.tokens_sha256`), `vocab_size`,
`max_seq_length`, `max_predictions_per_seq`, `masked_lm_prob`,
`short_seq_prob`, `dupe_factor`, `random_seed`, `num_documents`,
`input_files`, `num_instances`, `random_next_fraction`, `num_files`, `files`
(the shards' names) and `instances_per_file`.

Trainers call `find(input_files)` and, when it returns facts, `check(...)`.
"""

import json
import os
import re

import tensorflow as tf

FORMAT = "keras_si.pretraining_records"
FORMAT_VERSION = 1
INFO_SUFFIX = ".info.json"
VOCAB_SUFFIX = ".vocab.txt"
# Must agree between all the facts files of one training input.
AGREE = ("vocab_sha256", "vocab_size", "max_seq_length", "max_predictions_per_seq")
_SHARD = re.compile(r"^(?P<base>.+)-\d{5,}-of-\d{5,}\.tfrecord$")


def info_path(output_file):
    """Where the facts of the records written under the prefix `output_file` are."""
    return output_file + INFO_SUFFIX


def vocab_copy_path(output_file):
    return output_file + VOCAB_SUFFIX


def is_info_file(path):
    """True for the facts and vocabulary-copy files that `write` puts beside the records."""
    return path.endswith(INFO_SUFFIX) or path.endswith(VOCAB_SUFFIX)


def expand_record_globs(patterns, what="--input_files"):
    """`files.expand_globs`, leaving out the facts files that a wildcard matched beside the records.

    A glob such as `train*` or `dir/*` matches `train.info.json` too; reading
    it as a TFRecord would fail. A file named without a wildcard is kept.
    """
    from official.nlp.data.files import expand_globs

    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p]
    files = []
    for pattern in patterns or []:
        matched = expand_globs([pattern], what)
        if any(c in pattern for c in "*?["):
            matched = [f for f in matched if not is_info_file(f)]
            if not matched:
                raise ValueError(f"{what}: {pattern!r} matches no TFRecord file, only the records' facts files.")
        files.extend(matched)
    if not files:
        raise ValueError(f"{what} is empty.")
    return files


def _write_text(path, text):
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)  # never a half-written file under the final name


def write(output_file, *, vocab, shard_files, instances_per_file, input_files, num_documents, random_next_fraction,
          max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob, dupe_factor, random_seed,
          tool="official.nlp.data.create_pretraining_data", tool_version=None):
    """Writes `<output_file>.vocab.txt` (the vocabulary's copy) and `<output_file>.info.json`.

    Args:
        output_file: the records' prefix (local or gs://).
        vocab: an `official.nlp.data.vocab.Vocab`.
        shard_files: the record files written (their names are stored).
        instances_per_file: the number of instances in each of them.
        input_files: the text files the records were made from.
        num_documents: documents in the input.
        random_next_fraction: the share of next-sentence labels 1 ("B is random").
        The rest: the options the records were written with.
        tool_version: the writer's version (bumped when it writes different
            records for the same seed).

    Returns:
        The facts (the JSON's content) as a dict.
    """
    if len(shard_files) != len(instances_per_file):
        raise ValueError(f"{len(shard_files)} files but {len(instances_per_file)} instance counts.")
    from official.nlp.data.vocab import canonical_text

    copy = vocab_copy_path(output_file)
    _write_text(copy, canonical_text(vocab.tokens))
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": tool,
        "tool_version": tool_version,
        "vocab_file": os.path.basename(copy),
        "source_vocab_file": vocab.path,
        "vocab_sha256": vocab.sha256,
        "vocab_size": len(vocab),
        "max_seq_length": int(max_seq_length),
        "max_predictions_per_seq": int(max_predictions_per_seq),
        "masked_lm_prob": float(masked_lm_prob),
        "short_seq_prob": float(short_seq_prob),
        "dupe_factor": int(dupe_factor),
        "random_seed": int(random_seed),
        "num_documents": int(num_documents),
        "input_files": list(input_files),
        "num_instances": int(sum(instances_per_file)),
        "random_next_fraction": round(float(random_next_fraction), 6),
        "num_files": len(shard_files),
        "files": [os.path.basename(f) for f in shard_files],
        "instances_per_file": [int(n) for n in instances_per_file],
    }
    _write_text(info_path(output_file), json.dumps(info, indent=2) + "\n")
    return info


def _read(path):
    with tf.io.gfile.GFile(path, "r") as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"The records' facts file {path} is not valid JSON ({e}).") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{path} is not a facts file of {FORMAT} records.")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {info['format_version']}; this code reads up to "
                         f"{FORMAT_VERSION}: update it.")
    return info


def find(input_files, what="--input_files"):
    """The facts of the records `input_files` (files or globs, a list or comma-separated), or None.

    A shard `<prefix>-NNNNN-of-NNNNN.tfrecord` has its facts in
    `<prefix>.info.json`. Records of other writers (no such file) give None.

    Returns:
        None if no file has facts; else the facts (as in `write`) of the
        first facts file, with `vocab_file` made the full path of the
        vocabulary's copy, plus `info_files` (the facts files read) and
        `instances_in_input` (the instances in the files given).

    Raises:
        ValueError: some files have facts and others none; a file is not
            among the shards its facts list (left over from an earlier run
            with another `--num_output_shards`); or the facts files disagree
            on the vocabulary or the lengths (`AGREE`).
    """
    files = expand_record_globs(input_files, what)
    infos, owner, missing, count = {}, {}, [], 0
    for f in files:
        match = _SHARD.match(os.path.basename(f))
        path = info_path(os.path.join(os.path.dirname(f), match.group("base"))) if match else None
        if path is None or (path not in infos and not tf.io.gfile.exists(path)):
            missing.append(f)
            continue
        if path not in infos:
            infos[path] = _read(path)
        info = infos[path]
        name = os.path.basename(f)
        if name not in info["files"]:
            raise ValueError(f"{what}: {f} is not one of the {info['num_files']} files that {path} describes "
                             f"({info['files'][0]}, ...): a shard left from an earlier run? Delete it or name "
                             "the files explicitly.")
        count += info["instances_per_file"][info["files"].index(name)]
        owner[path] = f
    if not infos:
        return None
    if missing:
        first = next(iter(infos))
        raise ValueError(f"{what}: {missing[0]} has no facts file beside it but {owner[first]} has ({first}): "
                         "do not mix records of different writers (their vocabulary and lengths cannot be checked).")
    paths = list(infos)
    result = dict(infos[paths[0]])
    for other in paths[1:]:
        for key in AGREE:
            if infos[other][key] != result[key]:
                raise ValueError(f"{what}: {owner[paths[0]]} and {owner[other]} were written with different "
                                 f"{key} ({result[key]} in {paths[0]}, {infos[other][key]} in {other}).")
    result["vocab_file"] = os.path.join(os.path.dirname(paths[0]), result["vocab_file"])
    result["info_files"] = paths
    result["instances_in_input"] = count
    return result


def check(info, vocab_file=None, max_seq_length=None, max_predictions_per_seq=None):
    """Raises a one-line ValueError when a flag disagrees with the records' facts (`find`'s result).

    Args:
        info: the facts, from `find`.
        vocab_file: the `--vocab_file` given (a path or a `Vocab`), or None
            to skip; compared by content hash, so a copy of the same
            vocabulary (even with other whitespace) passes.
        max_seq_length, max_predictions_per_seq: the flags' values, or None
            to skip.

    Raises:
        ValueError: naming the flag, its value, the records' value and the
            facts file.
    """
    where = info.get("info_files", ["the records' facts"])[0]
    if vocab_file is not None:
        from official.nlp.data.vocab import Vocab

        vocab = vocab_file if isinstance(vocab_file, Vocab) else Vocab(vocab_file)
        if vocab.sha256 != info["vocab_sha256"]:
            raise ValueError(
                f"--vocab_file={vocab.path} (sha256 {vocab.sha256[:12]}..., {len(vocab)} tokens) is not the "
                f"vocabulary the records were written with ({info['source_vocab_file']}, sha256 "
                f"{info['vocab_sha256'][:12]}..., {info['vocab_size']} tokens, per {where}): pass "
                f"--vocab_file={info['vocab_file']}."
            )
    for flag, value in (("max_seq_length", max_seq_length), ("max_predictions_per_seq", max_predictions_per_seq)):
        if value is not None and int(value) != info[flag]:
            raise ValueError(f"--{flag}={value} but the records were written with {flag}={info[flag]} "
                             f"(per {where}).")
