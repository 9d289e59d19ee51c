"""BERT's pretraining instances: sentence packing, next-sentence pairs, masked LM.

One implementation serves both `create_pretraining_data` (static masking,
written to TFRecords) and the dynamic-masking loader (fresh masks each pass).
The algorithm is BERT's (Devlin et al., 2019; google-research/bert), in our
own code:

1. Pack whole sentences of a document into a chunk of up to
   `max_seq_length - 3` tokens (with probability `short_seq_prob` a shorter
   random target, to teach short inputs).
2. Split the chunk at a random sentence boundary into A and B. With
   probability 1/2 (always if the chunk has one sentence) B is replaced by
   sentences from a random *other* document: label 1 ("B is random"); the
   unused sentences of the chunk go back to the document. Else label 0.
3. Truncate the longer of A and B, one token at a time from a random end.
4. `[CLS] A [SEP] B [SEP]`; mask `min(max_predictions, max(1, round(n * p)))`
   tokens other than [CLS]/[SEP]: 80% [MASK], 10% unchanged, 10% a random
   vocabulary id (`mask_batch`, a batch of instances at a time).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Instance:
    tokens: list  # token ids, [CLS] A [SEP] B [SEP]
    segment_ids: list
    is_random_next: bool


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    vocab_size: int
    cls_id: int
    sep_id: int
    mask_id: int
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20


def _truncate_pair(a, b, max_tokens, rng):
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def instances_from_document(documents, index, max_seq_length, short_seq_prob, rng, cls_id, sep_id):
    """Yields the `Instance`s of `documents[index]` (each document a list of sentences of ids)."""
    document = documents[index]
    if isinstance(document, PackedDocument):
        # Every sentence of this document is read, some twice: one bulk copy beats one slice each.
        document = document.tolist()
    max_tokens = max_seq_length - 3
    target = max_tokens
    if rng.random() < short_seq_prob:
        target = rng.randint(2, max_tokens)
    chunk, length, i = [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            if chunk:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                a = [t for s in chunk[:a_end] for t in s]
                b = []
                is_random = len(chunk) == 1 or rng.random() < 0.5
                if is_random and len(documents) > 1:
                    b_target = target - len(a)
                    other = index
                    for _ in range(10):
                        other = rng.randint(0, len(documents) - 1)
                        if other != index:
                            break
                    if other == index:
                        is_random = False
                    else:
                        doc_b = documents[other]
                        for s in doc_b[rng.randint(0, len(doc_b) - 1):]:
                            b.extend(s)
                            if len(b) >= b_target:
                                break
                        i -= len(chunk) - a_end  # put the unused sentences back
                if not is_random or len(documents) <= 1:
                    is_random = False
                    b = [t for s in chunk[a_end:] for t in s]
                if a and b:
                    _truncate_pair(a, b, max_tokens, rng)
                    tokens = [cls_id] + a + [sep_id] + b + [sep_id]
                    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                    yield Instance(tokens, segments, is_random)
            chunk, length = [], 0
        i += 1


def mask_batch(instances, config, max_seq_length, rng):
    """BERT's masked LM on a list of instances at once, in the record layout.

    For an instance of n tokens, `min(max_predictions, max(1, round(n * p)))`
    positions are drawn uniformly without replacement among its tokens other
    than [CLS]/[SEP] (the candidates with the smallest of i.i.d. uniform keys:
    a uniform random subset), listed in increasing order; each becomes [MASK]
    with probability 0.8, a random vocabulary id with probability 0.1, and
    stays otherwise. Vectorised over the batch with NumPy: a Python loop per
    token made dynamic masking the input bottleneck (docs/benchmarks.md).

    Args:
        instances: `Instance`s, each at most `max_seq_length` tokens.
        config: a `MaskingConfig`.
        rng: a `numpy.random.Generator`.

    Returns:
        A dict of arrays `[len(instances), ...]` named as the records'
        features (int64; `masked_lm_weights` float32).
    """
    b, s, p = len(instances), max_seq_length, config.max_predictions_per_seq
    original = np.zeros((b, s), np.int64)
    types = np.zeros((b, s), np.int64)
    lengths = np.array([len(i.tokens) for i in instances], np.int64)
    for row, instance in enumerate(instances):
        original[row, : lengths[row]] = instance.tokens
        types[row, : lengths[row]] = instance.segment_ids
    real = np.arange(s) < lengths[:, None]
    candidate = real & (original != config.cls_id) & (original != config.sep_id)
    # np.rint rounds halves to even, as Python's round does.
    n = np.clip(np.rint(lengths * config.masked_lm_prob).astype(np.int64), 1, p)
    n = np.minimum(n, candidate.sum(axis=1))

    keys = np.where(candidate, rng.random((b, s)), np.inf)
    chosen = np.arange(p) < n[:, None]  # [b, p]: which prediction slots are used
    positions = np.sort(np.where(chosen, np.argsort(keys, axis=1)[:, :p], s), axis=1)
    positions = np.where(chosen, positions, 0)
    labels = np.where(chosen, np.take_along_axis(original, positions, axis=1), 0)

    r = rng.random((b, p))
    replacement = np.where(r < 0.8, config.mask_id,
                           np.where(r >= 0.9, rng.integers(0, config.vocab_size, (b, p)), labels))
    masked = original.copy()
    rows, slots = np.nonzero(chosen)
    masked[rows, positions[rows, slots]] = replacement[rows, slots]
    return {
        "input_word_ids": masked,
        "input_mask": real.astype(np.int64),
        "input_type_ids": types,
        "masked_lm_positions": positions,
        "masked_lm_ids": labels,
        "masked_lm_weights": chosen.astype(np.float32),
        "next_sentence_labels": np.array([[int(i.is_random_next)] for i in instances], np.int64).reshape(b, 1),
    }


def check_lengths(max_seq_length, max_predictions_per_seq, masked_lm_prob):
    """Clear errors for out-of-range or inconsistent sizes (flag names in the messages)."""
    if max_seq_length < 8:
        raise ValueError(f"--max_seq_length must be >= 8. Received: {max_seq_length}")
    if not 0.0 < masked_lm_prob < 1.0:
        raise ValueError(f"--masked_lm_prob must be in (0, 1). Received: {masked_lm_prob}")
    if not 1 <= max_predictions_per_seq <= max_seq_length - 3:
        raise ValueError(
            f"--max_predictions_per_seq={max_predictions_per_seq} must be in [1, max_seq_length - 3 = "
            f"{max_seq_length - 3}]: a sequence has at most {max_seq_length - 3} maskable tokens."
        )


def read_documents(paths):
    """Yields documents (lists of non-empty sentence strings) from text files.

    Format: one sentence per line, a blank line between documents. Streams
    line by line; a document is held only until its blank line.
    """
    import tensorflow as tf

    for path in paths:
        doc = []
        with tf.io.gfile.GFile(path, "r") as f:
            for line in f:
                line = line.strip()
                if line:
                    doc.append(line)
                elif doc:
                    yield doc
                    doc = []
        if doc:
            yield doc


def tokenize_documents(documents, tokenizer, vocab_size):
    """Token ids of each sentence of each document, batched through the TF tokenizer."""
    import tensorflow as tf

    flat = [s for d in documents for s in d]
    if not flat:
        return []
    ids = []
    for start in range(0, len(flat), 4096):
        ragged = tokenizer.tokenize(tf.constant(flat[start:start + 4096])).merge_dims(-2, -1)
        ids.extend(ragged.to_list())
    out, k = [], 0
    for d in documents:
        sentences = [s for s in ids[k:k + len(d)] if s]
        k += len(d)
        for s in sentences:
            bad = [t for t in s if not 0 <= t < vocab_size]
            if bad:
                raise ValueError(f"Token id {bad[0]} outside the vocabulary of size {vocab_size}.")
        if sentences:
            out.append(sentences)
    return out


def save_packed(documents, prefix):
    """Writes tokenized documents as three flat NumPy arrays `<prefix>.{tokens,sentences,documents}.npy`.

    `tokens` holds every id (int32), `sentences` the offsets of the
    sentences in it, `documents` the offsets of the documents in the
    sentences: `PackedDocuments` memory-maps them, so worker processes share
    one copy of a corpus instead of each holding its own lists.
    """
    lengths = [len(s) for d in documents for s in d]
    tokens = np.fromiter((t for d in documents for s in d for t in s), np.int32, sum(lengths))
    np.save(prefix + ".tokens.npy", tokens)
    np.save(prefix + ".sentences.npy", np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))
    np.save(prefix + ".documents.npy", np.concatenate([[0], np.cumsum([len(d) for d in documents], dtype=np.int64)]))


class PackedDocument:
    """One document of `PackedDocuments`: its sentences (lists of ids), read from the mapped arrays on demand.

    Lazy because a random next sentence takes a few sentences of another
    document, which may be a whole book: copying it all out each time would
    cost its length per instance.
    """

    def __init__(self, tokens, bounds):
        self._tokens = tokens
        self._bounds = bounds  # sentence i is tokens[bounds[i]:bounds[i + 1]]

    def __len__(self):
        return len(self._bounds) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return (self[j] for j in range(*i.indices(len(self))))
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self._tokens[self._bounds[i]: self._bounds[i + 1]].tolist()

    def __iter__(self):
        return iter(self[:])

    def tolist(self):
        """All the sentences as lists, in one read of the mapped array (for the document being packed)."""
        flat = self._tokens[self._bounds[0]: self._bounds[-1]].tolist()
        offsets = (self._bounds - self._bounds[0]).tolist()
        return [flat[offsets[i]: offsets[i + 1]] for i in range(len(offsets) - 1)]


class PackedDocuments:
    """A read-only list of documents over the files of several `save_packed` calls, memory-mapped.

    `documents[i]` is a `PackedDocument` (a sequence of sentences, each a
    list of ids: what `instances_from_document` expects); the documents of
    the files follow one another in the order given.
    """

    def __init__(self, prefixes):
        self._parts = [tuple(np.load(f"{p}.{name}.npy", mmap_mode="r") for name in ("tokens", "sentences",
                                                                                 "documents"))
                       for p in prefixes]
        self.starts = np.concatenate([[0], np.cumsum([len(d) - 1 for _, _, d in self._parts])]).astype(np.int64)

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        tokens, sentences, documents = self._parts[part]
        local = index - self.starts[part]
        return PackedDocument(tokens, sentences[documents[local]: documents[local + 1] + 1])
