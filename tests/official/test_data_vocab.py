"""Vocabulary files: whitespace, byte-order marks, blank lines and duplicates (issue 13, item 4)."""

import hashlib
import os

import pytest
import tensorflow as tf

from official.nlp.data.vocab import RESERVED_TOKENS, Vocab, read_tokens

WORDS = ["the", "cat", "sat", "##s", "on", "mat"]
CLEAN = RESERVED_TOKENS + WORDS


def write(tmp_path, name, text, encoding="utf-8"):
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        f.write(text.encode(encoding))
    return path


def token_ids(vocab, text):
    return vocab.tokenizer().tokenize(tf.constant([text])).merge_dims(-2, -1).to_list()[0]


def test_clean_file_ids_and_hash(tmp_path):
    path = write(tmp_path, "vocab.txt", "".join(t + "\n" for t in CLEAN))
    vocab = Vocab(path)
    assert vocab.tokens == CLEAN and len(vocab) == len(CLEAN)
    ids = {t: i for i, t in enumerate(CLEAN)}
    # "cats" is split into the pieces "cat" + "##s"; a word not in the vocabulary is [UNK].
    assert token_ids(vocab, "The cats sat on the dog") == [
        ids["the"], ids["cat"], ids["##s"], ids["sat"], ids["on"], ids["the"], ids["[UNK]"]]
    # For a clean file the content hash is the file's own sha256.
    assert vocab.sha256 == hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("text", [
    "".join(t + " \n" for t in CLEAN),          # trailing spaces
    "".join(t + "\r\n" for t in CLEAN),         # Windows line ends
    "\ufeff" + "".join(t + "\n" for t in CLEAN),  # byte-order mark
    "".join("\t" + t + "  \n" for t in CLEAN) + "\n\n",  # tabs, trailing blank lines
    "\n".join(CLEAN),                           # no final newline
])
def test_whitespace_and_bom_are_cleaned_and_the_tokenizer_uses_the_clean_list(tmp_path, text):
    clean = Vocab(write(tmp_path, "clean.txt", "".join(t + "\n" for t in CLEAN)))
    vocab = Vocab(write(tmp_path, "messy.txt", text))
    assert vocab.tokens == CLEAN and vocab.pad_id == 0 and vocab.mask_id == CLEAN.index("[MASK]")
    # Not one [UNK]: the tokenizer's table holds the stripped tokens, not the file's lines.
    sentence = "the cats sat on the mat"
    assert token_ids(vocab, sentence) == token_ids(clean, sentence)
    assert vocab.unk_id not in token_ids(vocab, sentence)
    assert vocab.sha256 == clean.sha256  # the same vocabulary, whatever the whitespace


def test_duplicate_token_names_the_file_token_and_both_lines(tmp_path):
    path = write(tmp_path, "dup.txt", "".join(t + "\n" for t in CLEAN + ["sat "]))
    # "sat" is on line 8 (5 reserved tokens, then the, cat, sat) and again, with a trailing space, on line 12.
    with pytest.raises(ValueError, match=r"dup\.txt lists the token 'sat' twice: lines 8 and 12\.$"):
        Vocab(path)


def test_blank_line_between_tokens_is_an_error(tmp_path):
    path = write(tmp_path, "blank.txt", "".join(t + "\n" for t in RESERVED_TOKENS) + "\nthe\n")
    with pytest.raises(ValueError, match=r"blank\.txt: line 6 is blank"):
        read_tokens(path)


def test_other_bad_files(tmp_path):
    with pytest.raises(ValueError, match="Vocabulary file not found: .*missing.txt"):
        Vocab(os.path.join(tmp_path, "missing.txt"))
    with pytest.raises(ValueError, match=r"latin1\.txt is not UTF-8 text"):
        Vocab(write(tmp_path, "latin1.txt", "".join(t + "\n" for t in CLEAN + ["café"]), encoding="latin-1"))
    path = write(tmp_path, "pad.txt", "".join(t + "\n" for t in ["dog"] + CLEAN))
    with pytest.raises(ValueError, match=r"\[PAD\] must have id 0 \(it has 1\)"):
        Vocab(path)
