"""The WordPiece vocabulary: reserved tokens, loading, cleaning and checking."""

import hashlib

import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
# [PAD] first so that id 0 pads, as in BERT's vocabulary.
RESERVED_TOKENS = [PAD, UNK, CLS, SEP, MASK]
REQUIRED_TOKENS = (PAD, CLS, SEP, MASK, UNK)

_BOM = "\ufeff"


def read_tokens(path):
    """The cleaned tokens of a vocabulary file, one per line; the id of a token is its index.

    Each line is stripped of surrounding whitespace (as BERT's own loader
    does: editors and Windows leave trailing spaces and '\\r', and a token
    `"word "` would never match, turning every word into [UNK]); a UTF-8
    byte-order mark before the first token is dropped; blank lines at the end
    of the file are ignored.

    Args:
        path: the vocabulary file (local or gs://).

    Returns:
        The list of tokens.

    Raises:
        ValueError: the file does not exist, has a blank line between tokens
            (dropping it would shift every later id), or lists a token twice
            (the message names the token and both line numbers).
    """
    if not tf.io.gfile.exists(path):
        raise ValueError(f"Vocabulary file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"Vocabulary {path} is not UTF-8 text (byte {e.start}).") from None
    if text.startswith(_BOM):
        text = text[len(_BOM):]
    # split("\n") rather than splitlines(): a token may contain characters such as U+2028 that
    # splitlines() would treat as line breaks, which would shift the ids against BERT's line-based loader.
    tokens = [line.strip() for line in text.split("\n")]
    while tokens and not tokens[-1]:
        tokens.pop()
    first_line = {}
    for i, token in enumerate(tokens):
        if not token:
            raise ValueError(f"Vocabulary {path}: line {i + 1} is blank (a token per line; removing it would "
                             "change the ids of all later tokens).")
        if token in first_line:
            raise ValueError(f"Vocabulary {path} lists the token {token!r} twice: lines {first_line[token] + 1} "
                             f"and {i + 1}.")
        first_line[token] = i
    return tokens


def tokens_sha256(tokens):
    """SHA-256 of the vocabulary in its canonical form: one token per line, '\\n' after each, UTF-8, no BOM.

    For a vocabulary file that is already clean this is the file's own
    `sha256sum`; two files that differ only in whitespace or a BOM (the same
    vocabulary) get the same hash.
    """
    return hashlib.sha256(canonical_text(tokens).encode("utf-8")).hexdigest()


def canonical_text(tokens):
    return "".join(t + "\n" for t in tokens)


class Vocab:
    """A WordPiece vocabulary file: one token per line, the id is the line number.

    Args:
        path: the vocabulary file (local or gs://), cleaned as `read_tokens`
            describes.

    Raises:
        ValueError: from `read_tokens`, or if a special token is missing or
            [PAD] does not have id 0.
    """

    def __init__(self, path):
        self.tokens = read_tokens(path)
        self.path = path
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        missing = [t for t in REQUIRED_TOKENS if t not in self.ids]
        if missing:
            raise ValueError(f"Vocabulary {path} lacks the special tokens {missing} "
                             f"(it needs {list(REQUIRED_TOKENS)}).")
        if self.ids[PAD] != 0:
            raise ValueError(f"Vocabulary {path}: [PAD] must have id 0 (it has {self.ids[PAD]}).")
        self.pad_id, self.unk_id = self.ids[PAD], self.ids[UNK]
        self.cls_id, self.sep_id, self.mask_id = self.ids[CLS], self.ids[SEP], self.ids[MASK]

    def __len__(self):
        return len(self.tokens)

    @property
    def sha256(self):
        """The content hash of the cleaned vocabulary (see `tokens_sha256`)."""
        return tokens_sha256(self.tokens)

    def tokenizer(self):
        """A lower-casing tensorflow-text `BertTokenizer` on this vocabulary.

        Built from the cleaned token list (never from the file, which may hold
        the whitespace or BOM that `read_tokens` removed).
        """
        import tensorflow_text as tf_text

        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(
                self.tokens, tf.range(len(self.tokens), dtype=tf.int64)
            ),
            num_oov_buckets=1,
        )
        return tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True,
                                     unknown_token=UNK)
