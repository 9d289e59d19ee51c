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
   vocabulary id.
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


def mask_tokens(tokens, config, rng):
    """BERT's masked LM: returns (masked tokens, positions, original ids)."""
    candidates = [i for i, t in enumerate(tokens) if t not in (config.cls_id, config.sep_id)]
    rng.shuffle(candidates)
    n = min(config.max_predictions_per_seq, max(1, int(round(len(tokens) * config.masked_lm_prob))))
    chosen = sorted(candidates[:n])
    output = list(tokens)
    for p in chosen:
        r = rng.random()
        if r < 0.8:
            output[p] = config.mask_id
        elif r >= 0.9:
            output[p] = rng.randint(0, config.vocab_size - 1)
    return output, chosen, [tokens[p] for p in chosen]


def to_features(instance, masked, positions, labels, max_seq_length, max_predictions):
    """The BERT record layout, as numpy int64/float32 arrays of fixed length."""
    n = len(masked)
    ids = np.zeros(max_seq_length, np.int64)
    ids[:n] = masked
    mask = np.zeros(max_seq_length, np.int64)
    mask[:n] = 1
    types = np.zeros(max_seq_length, np.int64)
    types[:n] = instance.segment_ids
    pos = np.zeros(max_predictions, np.int64)
    pos[: len(positions)] = positions
    lm_ids = np.zeros(max_predictions, np.int64)
    lm_ids[: len(labels)] = labels
    weights = np.zeros(max_predictions, np.float32)
    weights[: len(labels)] = 1.0
    return {
        "input_word_ids": ids,
        "input_mask": mask,
        "input_type_ids": types,
        "masked_lm_positions": pos,
        "masked_lm_ids": lm_ids,
        "masked_lm_weights": weights,
        "next_sentence_labels": np.array([int(instance.is_random_next)], np.int64),
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
