"""fill_mask's sample of held-out positions: uniform over sentences and over their words, not picked by hand."""

import collections

from official.nlp import fill_mask


def test_every_word_of_a_sentence_is_masked_equally_often():
    sentence = "The module is imported once, and then it is cached."
    words = ["the", "module", "is", "imported", "once", "and", "then", "it", "is", "cached"]
    counts = collections.Counter()
    for seed in range(4000):
        [(masked, answer)] = fill_mask.masked_examples([sentence], 1, seed)
        assert masked.count("[MASK]") == 1 and masked.replace("[MASK]", answer, 1).lower() == sentence.lower()
        counts[answer] += 1
    # Each of the 10 word positions has probability 1/10 ("is" occurs twice): 4000 draws, 4-sigma bounds.
    sigma = (4000 * 0.1 * 0.9) ** 0.5
    for word in set(words):
        expected = 400 * words.count(word)
        assert abs(counts[word] - expected) < 4 * sigma * words.count(word) ** 0.5, (word, counts[word])


def test_the_sample_is_fixed_by_the_seed_and_keeps_punctuation():
    lines = ["One two three four five six.", "Short.", "Alpha beta gamma delta epsilon zeta eta."]
    a = fill_mask.masked_examples(lines, 2, seed=3)
    assert a == fill_mask.masked_examples(lines, 2, seed=3) and len(a) == 2
    assert all(text.endswith(".") for text, _ in a)  # "Short." has < 6 words: never drawn


def test_a_prediction_is_right_only_if_it_is_the_first_word_piece(tmp_path):
    from official.nlp.data.vocab import RESERVED_TOKENS, Vocab

    (tmp_path / "vocab.txt").write_text("\n".join(RESERVED_TOKENS + ["a", "an", "and", "tool", "##s", "t"]) + "\n")
    vocab = Vocab(str(tmp_path / "vocab.txt"))
    # "a" is a prefix of "and", not its piece; "tools" is "tool" "##s"; an unknown word is [UNK].
    assert fill_mask.first_word_pieces(["and", "tools", "xyz"], vocab) == ["and", "tool", "[UNK]"]
