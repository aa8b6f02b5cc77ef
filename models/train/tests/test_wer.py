"""The scoring normaliser, word error rate and the evaluation pipeline (with a stand-in for the earshot CLI)."""
import io
import json
import math
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from earshot_train import score  # noqa: E402
from earshot_train.wer import EditCounts, corpus_wer, edit_counts, normalize  # noqa: E402


class NormalizeTest(unittest.TestCase):
    def check(self, cases):
        for text, expected in cases:
            with self.subTest(text=text):
                self.assertEqual(normalize(text), expected)

    def test_case_punctuation_whitespace(self):
        self.check([
            ("Hello, World!", "hello world"),
            ("There is , according to legend, a pot.", "there is according to legend a pot"),
            ("  \"Quoted\"   text\t here...  ", "quoted text here"),
            ("super-imposition", "super imposition"),
            ("Café naïve façade", "cafe naive facade"),
            ("rock & roll", "rock and roll"),
            ("", ""),
            ("?!.,", ""),
        ])

    def test_asides_and_hesitations_removed(self):
        self.check([
            ("[laughs] well (inaudible) then <noise>", "well then"),
            ("Um, I think, uh, hmm, yes", "i think yes"),
        ])

    def test_contractions(self):
        self.check([
            ("I won't, you can't, we cannot", "i will not you can not we can not"),
            ("don't isn't wouldn't", "do not is not would not"),
            ("It's here; what's that? There's more.", "it is here what is that there is more"),
            ("She's been told; he's got it", "she has been told he has got it"),
            ("They're sure we'll see you've I'm", "they are sure we will see you have i am"),
            ("I'd go, I'd rather not, you'd better", "i would go i would rather not you had better"),
            ("Let's go, y'all", "let us go you all"),
            ("John's book and the boys' toys", "johns book and the boys toys"),
            ("gonna wanna gotta", "going to want to got to"),
            ("at five o'clock", "at 5 oclock"),
            ("It\u2019s curly", "it is curly"),
        ])

    def test_titles(self):
        self.check([
            ("Mr. Hale and Mrs Hale met Dr. Smith", "mister hale and missus hale met doctor smith"),
            ("mister hale", "mister hale"),
            ("St. Paul, Prof. X, Gen. Lee", "saint paul professor x general lee"),
            ("the gen z col", "the gen z col"),  # without a dot these are words
            ("apples, pears etc.", "apples pears etcetera"),
        ])

    def test_british_spellings(self):
        self.check([
            ("The colour of the centre", "the color of the center"),
            ("my favourite neighbours' behaviour", "my favorite neighbors behavior"),
            ("realise, organisation, recognised, apologising", "realize organization recognized apologizing"),
            ("travelled, cancelling, jewellery", "traveled canceling jewelry"),
            ("grey theatre defence programme", "gray theater defense program"),
            ("analysed the analyses", "analyzed the analyses"),
            ("advise, surprise, exercise, emphasis", "advise surprise exercise emphasis"),
            ("in the neighbourhood", "in the neighborhood"),
        ])

    def test_cardinals(self):
        self.check([
            ("twenty five", "25"), ("twenty-five", "25"), ("25", "25"),
            ("one hundred twenty five", "125"), ("one hundred and twenty five", "125"),
            ("a hundred and one dalmatians", "101 dalmatians"),
            ("two thousand and seven", "2007"), ("two thousand twenty", "2020"),
            ("twenty five hundred", "2500"), ("25 hundred", "2500"),
            ("three million four hundred thousand", "3400000"), ("3 million", "3000000"),
            ("1,000,000", "1000000"), ("one thousand", "1000"), ("a million", "1000000"),
            ("the half million", "the half million"),
            ("zero", "0"), ("ten", "10"), ("nineteen", "19"),
        ])

    def test_digit_strings_years_and_times(self):
        self.check([
            ("nineteen ninety", "1990"), ("nineteen eighty four", "1984"), ("nineteen oh five", "1905"),
            ("twenty twenty four", "2024"), ("nineteen hundred", "1900"),
            ("four oh seven", "407"), ("five five", "55"), ("one two three", "123"),
            ("four twelve Maple Avenue", "412 maple avenue"),
            ("seven thirty", "730"), ("7:30", "730"), ("at 3 p.m.", "at 3 pm"), ("3pm", "3 pm"),
            ("oh my", "oh my"), ("oh five", "oh 5"),
            ("five hundred and six hundred", "500 and 600"),  # two numbers, not 506 then 100
            ("nineteen eighty four ten", "1984 10"), ("one two three four five", "1234 5"),
        ])

    def test_ordinals_plurals_decimals(self):
        self.check([
            ("twenty first", "21st"), ("the 21st century", "the 21st century"), ("first", "1st"),
            ("the second of March", "the 2nd of march"), ("one hundredth", "100th"), ("third", "3rd"),
            ("eleventh twelfth thirteenth", "11th 12th 13th"),
            ("one second", "1 2nd"),  # a unit of time, read alike on both sides
            ("the eighties", "the 80s"), ("the nineteen eighties", "the 1980s"), ("the 1980's", "the 1980s"),
            ("three point one four", "3.14"), ("3.14", "3.14"), ("two point five million", "2500000"),
        ])

    def test_money_and_percent(self):
        self.check([
            ("ten percent", "10%"), ("10%", "10%"), ("10 per cent", "10%"), ("percent", "percent"),
            ("five dollars", "$5"), ("$5", "$5"), ("one dollar", "$1"),
            ("five dollars and fifty cents", "$5.50"), ("$5.50", "$5.50"),
            ("$5 million", "$5000000"), ("five million dollars", "$5000000"),
            ("fifty cents", "50\u00a2"), ("ten pounds", "\u00a310"), ("a $ sign", "a sign"),
        ])

    def test_written_and_spoken_forms_agree(self):
        pairs = [
            ("It's 7:30 p.m. on the 21st.", "it is seven thirty PM on the twenty first"),
            ("Mr. Smith won't pay $5.50!", "mister smith will not pay five dollars and fifty cents"),
            ("The colour of 1,000 theatres", "the color of one thousand theaters"),
            ("In 1984, 10% of 2,500 people", "in nineteen eighty four ten percent of twenty five hundred people"),
            ("Call 407 now", "call four oh seven now"),
            ("He's been to 3 centres", "he has been to three centers"),
        ]
        for a, b in pairs:
            with self.subTest(a=a):
                self.assertEqual(normalize(a), normalize(b))

    def test_idempotent(self):
        samples = ["It's 7:30 p.m. on the 21st.", "five dollars and fifty cents", "the nineteen eighties",
                   "one second", "ten percent", "Mr. Smith's colour", "three point one four", "fifty cents",
                   "the 2nd of March", "four oh seven", "no one"]
        for s in samples:
            with self.subTest(s=s):
                once = normalize(s)
                self.assertEqual(normalize(once), once)


class WerTest(unittest.TestCase):
    def test_edit_counts(self):
        self.assertEqual(edit_counts("a b c".split(), "a b c".split()), EditCounts(0, 0, 0, 3))
        self.assertEqual(edit_counts("a b c".split(), "a x c".split()), EditCounts(1, 0, 0, 3))
        self.assertEqual(edit_counts("a b c".split(), "a c".split()), EditCounts(0, 1, 0, 3))
        self.assertEqual(edit_counts("a b c".split(), "a b c d".split()), EditCounts(0, 0, 1, 3))
        self.assertEqual(edit_counts("a b c".split(), []), EditCounts(0, 3, 0, 3))
        self.assertEqual(edit_counts([], "a b".split()), EditCounts(0, 0, 2, 0))
        self.assertEqual(edit_counts("the cat sat".split(), "a cat sat down".split()), EditCounts(1, 0, 1, 3))
        # a substitution is preferred to a deletion plus an insertion
        self.assertEqual(edit_counts(["x"], ["y"]), EditCounts(1, 0, 0, 1))

    def test_minimal_distance(self):
        rng = np.random.default_rng(7)
        for _ in range(200):
            ref = list(rng.choice(list("abc"), size=rng.integers(0, 7)))
            hyp = list(rng.choice(list("abc"), size=rng.integers(0, 7)))
            c = edit_counts(ref, hyp)
            self.assertEqual(c.errors, _levenshtein(ref, hyp))
            self.assertEqual(len(ref) - c.deletions + c.insertions, len(hyp))

    def test_corpus_wer_is_word_weighted(self):
        # one wrong word of a one-word clip, none of a nine-word clip: 1/10, not the mean of 100% and 0%
        total = corpus_wer([("seven", "eight"), ("a b c d e f g h i", "a b c d e f g h i")])
        self.assertEqual((total.errors, total.reference_words), (1, 10))
        self.assertAlmostEqual(total.wer, 0.1)
        self.assertTrue(math.isnan(EditCounts().wer))

    def test_normalised_before_counting(self):
        total = corpus_wer([("Mr. Hale's colour, twenty-five!", "mister hales color 25")])
        self.assertEqual(total.errors, 0)
        self.assertEqual(total.reference_words, 4)


def _levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


FAKE_CLI = r'''#!/usr/bin/python3
# Stands in for `earshot transcribe --json`: answers from answers.json, by clip name and beam size.
import json, os, sys
args = sys.argv[1:]
beam = args[args.index("--beam") + 1]
audio = args[-1]
answers = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "answers.json")))
name = os.path.splitext(os.path.basename(audio))[0]
if name not in answers:
    sys.stderr.write("earshot transcribe: %s: cannot read this file\n" % audio)
    sys.exit(1)
print(json.dumps({"text": answers[name][beam], "audio_seconds": 1.0,
                  "timings": {"load_ms": 5, "mel_ms": 1, "encode_ms": 10, "decode_ms": 9, "total_ms": 25}}))
'''


class ScorePipelineTest(unittest.TestCase):
    """Loading a dev-style set (FLAC under audio/<source>/), transcribing through a CLI, scoring, reports."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.dev = os.path.join(root, "dev")
        rows = [("audio/librispeech_test_other/a1.flac", "mister hale said twenty five words"),
                ("audio/fsdd/7_x_0.flac", "seven"),
                ("audio/fsdd/8_x_0.flac", "eight"),
                ("audio/cmu_arctic_fragmentvc/c1.flac", "Bassett was a fastidious man."),
                ("audio/vctk_subsets/p1_001.flac", "Please call Stella.")]
        tone = (0.1 * np.sin(np.arange(16000) * 0.05)).astype(np.float32)
        os.makedirs(self.dev)
        with open(os.path.join(self.dev, "manifest.tsv"), "w") as f:
            f.write("path\ttranscript\tspeaker_id\n")
            for path, text in rows:
                os.makedirs(os.path.dirname(os.path.join(self.dev, path)), exist_ok=True)
                sf.write(os.path.join(self.dev, path), tone, 16000, format="FLAC", subtype="PCM_16")
                f.write(f"{path}\t{text}\tspk\n")
        answers = {
            "a1": {"1": "Mr. Hale said 25 words.", "5": "Mr. Hale said twenty five birds"},
            "7_x_0": {"1": "Seven.", "5": "seven"},
            "8_x_0": {"1": "Eight", "5": "eight ate"},
            "c1": {"1": "Bassett was a fastidious man", "5": "Bassett was a fastidious man"},
            # p1_001 is missing: the CLI fails on it, and the clip counts as all deletions
        }
        self.cli = os.path.join(root, "fake_earshot")
        with open(self.cli, "w") as f:
            f.write(FAKE_CLI)
        os.chmod(self.cli, 0o755)
        with open(os.path.join(root, "answers.json"), "w") as f:
            json.dump(answers, f)
        self.model = os.path.join(root, "m.earshot")
        with open(self.model, "wb") as f:
            f.write(b"not a real model")

    def tearDown(self):
        self.tmp.cleanup()

    def test_pipeline(self):
        cache = os.path.join(self.tmp.name, "cache")
        s = score.load_set("dev", dev_dir=self.dev, cache_dir=cache)
        self.assertEqual([c.source for c in s.clips],
                         ["librispeech", "fsdd_digits", "fsdd_digits", "cmu_arctic", "vctk"])
        self.assertTrue(all(c.audio.endswith(".wav") and c.audio.startswith(cache) for c in s.clips))
        self.assertAlmostEqual(s.clips[0].seconds, 1.0)
        hyps = score.transcribe_all(self.cli, self.model, s.clips, [1, 5], jobs=2)
        self.assertIn("cannot read", hyps[("audio/vctk_subsets/p1_001.flac", 1)].error)
        result = score.score_set(s, hyps, [1, 5])
        rows = {r.label: r for r in result.rows}
        self.assertEqual([r.label for r in result.rows],
                         ["cmu_arctic", "fsdd_digits", "librispeech", "vctk", "all", "all without ARCTIC",
                          "all without ARCTIC and FSDD"])
        self.assertEqual(rows["librispeech"].counts[1].errors, 0)
        self.assertEqual(rows["librispeech"].counts[5].errors, 1)           # birds
        self.assertEqual(rows["fsdd_digits"].counts[5].insertions, 1)      # eight ate
        self.assertEqual(rows["vctk"].counts[1].deletions, 3)              # CLI failure
        self.assertEqual(rows["vctk"].failures[1], 1)
        # word-weighted over normalised words: 5 ("25" is one) + 1 + 1 + 5 + 3
        self.assertEqual(rows["all"].words, 15)
        self.assertAlmostEqual(rows["all"].wer_percent(5), 100 * 5 / 15)
        self.assertAlmostEqual(rows["all without ARCTIC"].wer_percent(5), 100 * 5 / 10)
        self.assertAlmostEqual(rows["all without ARCTIC and FSDD"].wer_percent(1), 100 * 3 / 8)
        self.assertAlmostEqual(rows["cmu_arctic"].rtf(1), 0.02)
        self.assertIn("all without ARCTIC", score.format_table(result))
        self.assertIn("| **all** | 5 | 15 |", score.format_markdown(result))

        report = score.report_json([result], self.model, self.cli, 2, 1.0)
        path = os.path.join(self.tmp.name, "report.json")
        with open(path, "w") as f:
            json.dump(report, f)
        again, _ = score.rescore_json(path)
        self.assertEqual([(r.label, r.counts[5].errors) for r in again[0].rows],
                         [(r.label, r.counts[5].errors) for r in result.rows])
        self.assertEqual(report["sets"]["dev"]["fingerprint"], result.fingerprint)
        self.assertEqual(again[0].fingerprint, result.fingerprint)
        self.assertIn(f"clips {result.fingerprint})", score.format_markdown(result))
        report["sets"]["dev"]["clips"][0]["reference"] += " again"  # another text build: another set
        with open(path, "w") as f:
            json.dump(report, f)
        self.assertNotEqual(score.rescore_json(path)[0][0].fingerprint, result.fingerprint)

    def test_subsets(self):
        self.assertEqual(score.spread(list(range(10)), 3), [0, 3, 6])
        self.assertEqual(score.spread(list(range(3)), 5), [0, 1, 2])
        only = ["audio/vctk_subsets/p1_001.flac", "audio/fsdd/7_x_0.flac"]
        s = score.load_set("dev", dev_dir=self.dev, cache_dir=os.path.join(self.tmp.name, "c"), only=only)
        self.assertEqual([c.clip_id for c in s.clips], only)
        with self.assertRaises(score.EvalError):
            score.load_set("dev", dev_dir=self.dev, cache_dir=self.tmp.name, only=["audio/nope.flac"])
        with self.assertRaises(score.EvalError):
            score.load_set("heldout_synth", data_dir=os.path.join(self.tmp.name, "missing"))

    def test_command_line(self):
        out = os.path.join(self.tmp.name, "r.json")
        md = os.path.join(self.tmp.name, "r.md")
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            rc = score.main(["--model", self.model, "--earshot", self.cli, "--sets", "dev", "--dev-dir", self.dev,
                             "--cache-dir", os.path.join(self.tmp.name, "c"), "--out", out, "--markdown", md])
        self.assertEqual(rc, 1, "a CLI failure makes the exit status 1")
        self.assertIn("target dev / all without ARCTIC <= 35%", stdout.getvalue())
        with open(out) as f:
            report = json.load(f)
        self.assertEqual(len(report["sets"]["dev"]["clips"]), 5)
        self.assertEqual(report["sets"]["dev"]["rows"][-3]["label"], "all")
        with open(md) as f:
            self.assertIn("WER greedy", f.read())
        with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
            self.assertEqual(score.main(["--model", self.model, "--earshot", "/nonexistent/earshot"]), 2)
        self.assertIn("no earshot CLI", stderr.getvalue())


if __name__ == "__main__":
    unittest.main()
