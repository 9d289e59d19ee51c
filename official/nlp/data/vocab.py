"""The WordPiece vocabulary: reserved tokens, loading and checking."""

import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
# [PAD] first so that id 0 pads, as in BERT's vocabulary.
RESERVED_TOKENS = [PAD, UNK, CLS, SEP, MASK]
REQUIRED_TOKENS = (PAD, CLS, SEP, MASK, UNK)


class Vocab:
    """A WordPiece vocabulary file: one token per line, the id is the line number."""

    def __init__(self, path):
        if not tf.io.gfile.exists(path):
            raise ValueError(f"Vocabulary file not found: {path}")
        with tf.io.gfile.GFile(path, "r") as f:
            self.tokens = [line.rstrip("\n") for line in f]
        self.path = path
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        missing = [t for t in REQUIRED_TOKENS if t not in self.ids]
        if missing:
            raise ValueError(f"Vocabulary {path} lacks the special tokens {missing} (it needs {list(REQUIRED_TOKENS)}).")
        if self.ids[PAD] != 0:
            raise ValueError(f"Vocabulary {path}: [PAD] must have id 0 (it has {self.ids[PAD]}).")
        self.pad_id, self.unk_id = self.ids[PAD], self.ids[UNK]
        self.cls_id, self.sep_id, self.mask_id = self.ids[CLS], self.ids[SEP], self.ids[MASK]

    def __len__(self):
        return len(self.tokens)

    def tokenizer(self):
        """A lower-casing tensorflow-text `BertTokenizer` on this vocabulary."""
        import tensorflow_text as tf_text

        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(
                self.tokens, tf.range(len(self.tokens), dtype=tf.int64)
            ),
            num_oov_buckets=1,
        )
        return tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True,
                                     unknown_token=UNK)
