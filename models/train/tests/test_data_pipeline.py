"""Shard format (the data contract), seeded augmentation and noise generators."""
import json
import os
import random
import shutil
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from earshot_train import augment, features  # noqa: E402
from earshot_train.mel import log_mel_spectrogram  # noqa: E402
from earshot_train.text import transcript_target  # noqa: E402


class ShardWriterTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="earshot_shard_test_")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_round_trip_follows_contract(self):
        rng = np.random.default_rng(0)
        clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 8000, 24160)]
        writer = features.ShardWriter(self.dir, "synth-00000")
        for i, clip in enumerate(clips):
            writer.add(f"u{i}", f"Text {i}.", clip, "espeak", "en-us", "clean")
        self.assertFalse(features.shard_is_done(self.dir, "synth-00000"))
        writer.finish()
        self.assertEqual(features.done_shards(self.dir), ["synth-00000"])
        feats, records = features.load_shard(self.dir, "synth-00000")
        self.assertEqual(feats.dtype, np.float16)
        self.assertEqual(feats.shape, (100 + 50 + 151, 80))
        self.assertEqual([r["offset"] for r in records], [0, 100, 150])
        for record, clip in zip(records, clips):
            expected = log_mel_spectrogram(clip, 80).T
            got = feats[record["offset"]:record["offset"] + record["n_frames"]].astype(np.float32)
            np.testing.assert_allclose(got, expected, atol=2e-3)
            self.assertEqual(set(record), {"id", "text", "offset", "n_frames", "source", "voice", "aug"})
        with open(os.path.join(self.dir, "synth-00000.jsonl")) as f:
            self.assertEqual(json.loads(f.readline())["text"], "Text 0.")

    def test_rejects_over_thirty_seconds(self):
        writer = features.ShardWriter(self.dir, "x")
        self.assertIsNone(writer.add("long", "t", np.zeros(16000 * 31, np.float32), "noise", "none", "silence"))
        self.assertEqual(len(writer), 0)


class AugmentTest(unittest.TestCase):
    def test_same_seed_same_audio(self):
        speech = np.sin(np.arange(32000) * 0.07).astype(np.float32) * 0.3
        outs = []
        for _ in range(2):
            out, desc = augment.augment(speech, 22050, random.Random(5), np.random.default_rng(5),
                                        augment.TRAIN_CONFIG, [speech[:8000]])
            outs.append((out, desc))
        np.testing.assert_array_equal(outs[0][0], outs[1][0])
        self.assertEqual(outs[0][1], outs[1][1])
        self.assertTrue(np.all(np.abs(outs[0][0]) <= 1.0))

    def test_mix_at_snr(self):
        rng = np.random.default_rng(1)
        speech = rng.standard_normal(16000).astype(np.float32)
        noise = augment.coloured_noise(16000, rng, 1.0)
        mixed = augment.mix_at_snr(speech, noise, 10.0)
        achieved = 20 * np.log10(augment.rms(speech) / augment.rms(mixed - speech))
        self.assertAlmostEqual(achieved, 10.0, delta=0.5)

    def test_noise_generators_are_finite_and_normalised(self):
        rng = np.random.default_rng(2)
        for kind in ("white", "pink", "brown", "hum", "babble"):
            noise = augment.make_noise(kind, 8000, rng, [np.sin(np.arange(900) * 0.3).astype(np.float32)])
            self.assertEqual(noise.shape, (8000,))
            self.assertTrue(np.all(np.isfinite(noise)))
            self.assertAlmostEqual(float(np.std(noise)), 1.0, delta=0.1)


class TranscriptTargetTest(unittest.TestCase):
    def test_recorded_transcripts_follow_target_style(self):
        self.assertEqual(transcript_target("1469, 1470;"), "Fourteen sixty nine, fourteen seventy.")
        self.assertEqual(transcript_target("d"), "D")
        self.assertEqual(transcript_target("one"), "One.")
        self.assertEqual(transcript_target('in the ""eighties,"" or so'), "In the eighties, or so.")



class VoiceSplitTest(unittest.TestCase):
    def test_training_never_picks_held_out_speakers(self):
        from earshot_train import synth
        rng = random.Random(3)
        picked = {(c.engine, c.voice.split("+")[0]) for c in (synth.pick_training_voice(rng) for _ in range(3000))}
        for engine, voice in synth.HELDOUT_VOICES:
            self.assertNotIn((engine, voice), picked)
        self.assertNotIn(("flite", "awb_time"), picked)
        engines = {engine for engine, _ in picked}
        self.assertEqual(engines, {"espeak", "flite", "festival"})


if __name__ == "__main__":
    unittest.main()


class SeenVoicesSetTest(unittest.TestCase):
    """eval/seen_synth mirrors eval/heldout_synth: same sentences and augmentation, training voices instead."""

    def setUp(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
        import prepare
        from earshot_train import synth
        self.prepare, self.synth = prepare, synth
        self.root = tempfile.mkdtemp(prefix="earshot_seen_test_")
        os.makedirs(os.path.join(self.root, "text"))
        with open(os.path.join(self.root, "text", "heldout.txt"), "w") as f:
            f.write("The first held-out sentence.\nA second one, longer than the first.\nThird.\n")
        self.saved = (prepare.HELDOUT_SYNTH_CLIPS, synth.synthesize_many)
        prepare.HELDOUT_SYNTH_CLIPS = 7

        def fake_synthesize_many(texts, choices):  # a voice-independent tone per text: only the voice may differ
            return [(0.2 * np.sin(np.arange(4000 + 400 * len(t)) * 0.05).astype(np.float32), 16000) for t in texts]
        synth.synthesize_many = fake_synthesize_many

    def tearDown(self):
        self.prepare.HELDOUT_SYNTH_CLIPS, self.synth.synthesize_many = self.saved
        shutil.rmtree(self.root)

    def test_same_sentences_and_augmentation_other_voices(self):
        held = list(self.prepare.eval_voice_clips(self.root, 1, self.synth.HELDOUT_VOICES))
        seen = list(self.prepare.eval_voice_clips(self.root, 1, self.synth.SEEN_EVAL_VOICES))
        self.assertEqual([(i, t, d) for i, t, _, _, d in held], [(i, t, d) for i, t, _, _, d in seen])
        for (_, _, _, a, _), (_, _, _, b, _) in zip(held, seen):
            np.testing.assert_array_equal(a, b)
        held_voices = {(c.engine, c.voice) for _, _, c, _, _ in held}
        seen_voices = {(c.engine, c.voice) for _, _, c, _, _ in seen}
        self.assertEqual(held_voices, set(self.synth.HELDOUT_VOICES))
        self.assertEqual(seen_voices, set(self.synth.SEEN_EVAL_VOICES))
        trained = {("flite", v) for v in self.synth.FLITE_TRAIN_VOICES} | {
            ("festival", v) for v in self.synth.FESTIVAL_TRAIN_VOICES}
        self.assertLessEqual(seen_voices, trained)

    def test_job_writes_the_set_once(self):
        result = self.prepare.seen_job(self.root, 1)
        self.assertEqual(result["utterances"], 7)
        manifest = os.path.join(self.root, "eval", "seen_synth", "manifest.tsv")
        with open(manifest) as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        self.assertEqual(len(rows), 7)
        self.assertTrue(all(os.path.exists(os.path.join(self.root, "eval", "seen_synth", r[0])) for r in rows))
        self.assertEqual(rows[0][1], "The first held-out sentence.")
        self.assertIsNone(self.prepare.seen_job(self.root, 1))
