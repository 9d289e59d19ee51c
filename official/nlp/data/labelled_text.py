"""Labelled sentences and sentence pairs from local files: GLUE's TSV layout, CSV, and JSON Lines.

A fine-tuning task is a table: one or two text columns (segments A and B)
and a label column. Three formats, told apart by the file's extension or
`file_format`:

- `tsv`: tab-separated, as GLUE distributes its tasks (MNLI `train.tsv`,
  `dev_matched.tsv`, SST-2, STS-B, ...). Fields are never quoted: GLUE's
  files hold unbalanced quotation marks (MNLI), which a CSV reader would
  merge across lines. With named columns the first line is the header; with
  0-based column numbers (CoLA's files have no header) every line is data.
- `csv`: RFC 4180 comma-separated with a header line (quoted fields allowed).
- `jsonl`: one JSON object per line; columns are keys.

Labels: for classification, the distinct label values of the training file,
sorted (or the order given), become class ids 0..n-1; for regression, the
label is a number.
"""

import csv
import io
import json

FORMATS = ("tsv", "csv", "jsonl")


def file_format(path, given=None):
    """The format named by `given`, or by the extension of `path` (.tsv, .csv, .jsonl/.json)."""
    if given:
        if given not in FORMATS:
            raise ValueError(f"--file_format must be one of {FORMATS}. Received: {given!r}")
        return given
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    ext = {"json": "jsonl", "txt": None}.get(ext, ext)
    if ext not in FORMATS:
        raise ValueError(f"{path}: cannot tell the format from the extension; name files .tsv, .csv or .jsonl, "
                         f"or give --file_format.")
    return ext


def _columns_are_numbers(columns):
    numeric = [c.isdigit() for c in columns]
    if any(numeric) and not all(numeric):
        raise ValueError(f"--text_fields and --label_field must be all names or all 0-based column numbers. "
                         f"Received: {columns}")
    return all(numeric)


def read_table(path, columns, fmt=None):
    """The values of `columns` in every row of `path`, as a list of tuples of strings (JSON values as str).

    Args:
        path: a local or gs:// file.
        columns: column names, or 0-based column numbers as strings (TSV/CSV without header).
        fmt: one of FORMATS, or None to take it from the extension.

    Returns:
        `(rows, lines)`: one tuple per data row, in file order, and each row's line number in the file (1-based,
        for error messages).

    Raises:
        ValueError: the file is missing or empty, a column is not in the header (the message lists the
            header), or a row lacks a column (the message gives the line number).
    """
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path}: file not found.")
    fmt = file_format(path, fmt)
    with tf.io.gfile.GFile(path, "rb") as fh:
        text = fh.read().decode("utf-8-sig")  # a BOM (Excel's CSV) is not part of the first column's name
    rows, lines_of_rows = [], []
    if fmt == "jsonl":
        if _columns_are_numbers(columns):
            raise ValueError(f"{path}: JSON Lines columns are keys, not numbers. Received: {columns}")
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {i}: not JSON ({e.msg}).") from None
            missing = [c for c in columns if c not in record]
            if missing:
                raise ValueError(f"{path}, line {i}: no key {missing[0]!r}; the keys are {sorted(record)}.")
            rows.append(tuple(str(record[c]) for c in columns))
            lines_of_rows.append(i)
    else:
        reader = (csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv"
                  else csv.reader(io.StringIO(text)))
        lines = list(reader)
        if _columns_are_numbers(columns):
            index = [int(c) for c in columns]
            start = 0
        else:
            if not lines:
                raise ValueError(f"{path} is empty.")
            header = [h.strip() for h in lines[0]]
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(f"{path}: no column {missing[0]!r}; the header has {header}.")
            index = [header.index(c) for c in columns]
            start = 1
        for i, fields in enumerate(lines[start:], start + 1):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if max(index) >= len(fields):
                raise ValueError(f"{path}, line {i}: {len(fields)} fields, but column {max(index)} (0-based) is used.")
            rows.append(tuple(fields[j] for j in index))
            lines_of_rows.append(i)
    if not rows:
        raise ValueError(f"{path} has no data rows.")
    return rows, lines_of_rows


def load_examples(path, text_fields, label_field, fmt=None, labels=None, regression=False):
    """Texts and labels of a task file.

    Args:
        path: the file.
        text_fields: one or two column names (or 0-based numbers): segments A and B.
        label_field: the label column.
        fmt: the format (None: from the extension).
        labels: for classification, the class names in id order (None: the sorted distinct labels of this
            file, which is how the training file defines them).
        regression: labels are numbers.

    Returns:
        `(texts, y, labels)`: `texts` a list with one list of strings per text field, `y` a list of int
        class ids (float targets for regression), `labels` the class names (None for regression).

    Raises:
        ValueError: as `read_table`, for a label not among `labels`, or a regression label that is not a
            number (each naming the file and line).
    """
    if not 1 <= len(text_fields) <= 2:
        raise ValueError(f"--text_fields takes one or two columns (sentence, or sentence pair). "
                         f"Received: {text_fields}")
    rows, lines = read_table(path, list(text_fields) + [label_field], fmt)
    texts = [[r[j] for r in rows] for j in range(len(text_fields))]
    raw = [r[-1].strip() for r in rows]
    if regression:
        y = []
        for i, value in enumerate(raw):
            try:
                y.append(float(value))
            except ValueError:
                raise ValueError(f"{path}, line {lines[i]}: the label {value!r} is not a number "
                                 "(a regression task).") from None
        return texts, y, None
    if labels is None:
        labels = sorted(set(raw))
        if len(labels) < 2:
            raise ValueError(f"{path}: every row has the label {labels[0]!r}; classification needs two classes.")
    ids = {name: i for i, name in enumerate(labels)}
    unknown = [(i, v) for i, v in enumerate(raw) if v not in ids]
    if unknown:
        i, v = unknown[0]
        raise ValueError(f"{path}, line {lines[i]}: the label {v!r} is not one of the classes {labels} "
                         f"({len(unknown)} such rows).")
    return texts, [ids[v] for v in raw], list(labels)
