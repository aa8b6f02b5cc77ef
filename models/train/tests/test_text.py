"""Sentence cleaning, dev-transcript exclusion and the dictation templates."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from earshot_train import templates  # noqa: E402
from earshot_train.text import DevFilter, clean_sentence, comparison_key, speech_text, split_sentences  # noqa: E402


class CleanSentenceTest(unittest.TestCase):
    def test_keeps_case_and_punctuation_and_speaks_numbers(self):
        self.assertEqual(clean_sentence("He paid $20 for 3 books, didn't he?"),
                         "He paid twenty dollars for three books, didn't he?")

    def test_drops_quotes_and_brackets(self):
        self.assertEqual(clean_sentence('\u201cWe are here,\u201d she said (quietly).'), "We are here, she said.")

    def test_rejects_unusable_text(self):
        self.assertEqual(clean_sentence("Too short."), "")
        self.assertEqual(clean_sentence("See http://example.com for the full list of items."), "")
        self.assertEqual(clean_sentence("THIS IS ALL SHOUTING IN CAPITAL LETTERS HERE."), "")
        self.assertEqual(clean_sentence(" ".join(["word"] * 31) + "."), "")
        self.assertEqual(clean_sentence("Write to me at name@example.org soon please."), "")

    def test_adds_final_punctuation(self):
        self.assertEqual(clean_sentence("the cat sat on the mat"), "The cat sat on the mat.")

    def test_speech_text(self):
        self.assertEqual(speech_text("Say 'yes' or 'no', she said."), "Say yes or no, she said.")
        self.assertEqual(speech_text("The boys' dog isn't here."), "The boys' dog isn't here.")
        self.assertEqual(speech_text("It is important.Everything else can wait."),
                         "It is important. Everything else can wait.")
        self.assertEqual(speech_text("Post it to alt.folklore.computers today."), "")
        self.assertEqual(speech_text("The U.S. train left at six p.m. today."), "The U.S. train left at six p.m. today.")

    def test_split_respects_abbreviations(self):
        self.assertEqual(split_sentences("Mr. Smith went home. He slept! Did he? Yes."),
                         ["Mr. Smith went home.", "He slept!", "Did he?", "Yes."])


class DevFilterTest(unittest.TestCase):
    def setUp(self):
        self.dev = DevFilter(["The woman in you is only incidental, accidental, and irrelevant.",
                              "seven", "He has 3 dogs and 20 cats at the farm near the river bend."])

    def test_exact_match_after_normalisation(self):
        self.assertTrue(self.dev.is_dev_like("the WOMAN in you is only incidental accidental and irrelevant"))
        self.assertTrue(self.dev.is_dev_like("Seven."))

    def test_numbers_compared_in_spoken_form(self):
        self.assertTrue(self.dev.is_dev_like("He has three dogs and twenty cats at the farm near the river bend."))

    def test_shared_long_ngram_is_excluded(self):
        self.assertTrue(self.dev.is_dev_like("Yesterday I read that the woman in you is only incidental."))

    def test_unrelated_text_passes(self):
        self.assertFalse(self.dev.is_dev_like("The woman in the red coat walked home."))
        self.assertFalse(self.dev.is_dev_like("Seven swans are swimming."))

    def test_comparison_key(self):
        self.assertEqual(comparison_key("It's 5 o'clock, Bob!"), "its five oclock bob")


class TemplatesTest(unittest.TestCase):
    def test_seeded_and_normalisable(self):
        first = list(templates.dictation_phrases(300, seed=7))
        self.assertEqual(first, list(templates.dictation_phrases(300, seed=7)))
        self.assertNotEqual(first, list(templates.dictation_phrases(300, seed=8)))
        cleaned = [clean_sentence(p, min_words=1) for p in first]
        usable = [c for c in cleaned if c]
        self.assertGreater(len(usable), 280)
        for sentence in usable:
            self.assertNotRegex(sentence, r"\d")

    def test_short_phrases_are_short_and_never_a_lone_digit(self):
        first = list(templates.short_phrases(2000, seed=3))
        self.assertEqual(first, list(templates.short_phrases(2000, seed=3)))
        cleaned = [clean_sentence(p, min_words=1) for p in first]
        self.assertTrue(all(cleaned))
        lengths = [len(c.split()) for c in cleaned]
        self.assertEqual((min(lengths), max(lengths)), (1, 3))
        self.assertGreater(lengths.count(1), 500)  # single words are a large share, not an accident
        digits = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
        for sentence in cleaned:
            self.assertNotRegex(sentence, r"\d")
            self.assertNotIn(comparison_key(sentence), digits, sentence)

    def test_phone_numbers_read_digit_by_digit(self):
        phrase = clean_sentence("My number is 2 0 1, 5 5 5, 0 1 2 3.", min_words=1)
        self.assertEqual(phrase, "My number is two zero one, five five five, zero one two three.")


if __name__ == "__main__":
    unittest.main()
