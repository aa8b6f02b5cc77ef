"""Shard index and batch sampler: complete shards only, shares per step, length buckets, exact resume."""
import collections
import json
import os
import shutil
import tempfile
import unittest

import numpy as np

from train_fixtures import fake_utts, make_dataset, write_shard

from earshot_train.dataset import (BatchSampler, ShardIndex, collate, padded_frames, pick_eval_keys,  # noqa: E402
                                   pools_with_shares)


def char_encode(text):
    return [3 + (ord(c) % 29) for c in text]


class SamplerTestBase(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.root)

    def sampler(self, index, batch_frames=2000, seed=0):
        return BatchSampler(index, pools_with_shares(0.3, 0.05), batch_frames=batch_frames, max_utts=64,
                            window_batches=8, seed=seed)


class ShardIndexTest(SamplerTestBase):
    def test_curriculum_keeps_mild_training_utterances_and_every_heldout_one(self):
        from earshot_train.augment import is_mild
        from earshot_train.train import curriculum_filter
        self.assertTrue(is_mild("", 15))
        self.assertTrue(is_mild("tempo0.98,eq100-5500,reverb81/53,pink@15dB", 15))
        self.assertFalse(is_mild("pink@14dB", 15))
        self.assertFalse(is_mild("babble@24dB", 15))  # babble is speech: 10 dB more
        self.assertTrue(is_mild("babble@25dB", 15))
        self.assertFalse(is_mild("tempo1.02,telephone", 0))
        self.assertFalse(is_mild("clip", 0))
        self.assertFalse(is_mild("hum@xdB", 0))
        augs = ["", "white@5dB", "telephone,pink@20dB", "brown@20dB"]
        for group in ("synth", "heldout_synth"):
            write_shard(self.root, group, "a", [(50, "w%d" % i) for i in range(4)])
            path = os.path.join(self.root, "shards", group, "a.jsonl")
            with open(path) as f:
                lines = [json.loads(line) for line in f]
            with open(path, "w") as f:
                for line, aug in zip(lines, augs):
                    f.write(json.dumps(dict(line, aug=aug)) + "\n")
        self.assertIsNone(curriculum_filter(-1))
        index = ShardIndex(self.root, char_encode, keep=curriculum_filter(15))
        index.scan()
        self.assertEqual([index.utterances[k].text for k in index.by_group["synth"]], ["w0", "w3"])
        self.assertEqual(len(index.by_group["heldout_synth"]), 4)
        self.assertEqual(index.skipped, {"left out by the curriculum": 2})
        short = ShardIndex(self.root, char_encode, keep=curriculum_filter(-1, 40))
        write_shard(self.root, "synth", "b", [(40, "short"), (41, "long")])
        short.scan()
        self.assertEqual(sorted(short.utterances[k].text for k in short.by_group["synth"]), ["short"])
        self.assertEqual(len(short.by_group["heldout_synth"]), 4)

    def test_reads_only_done_shards_and_skips_bad_utterances(self):
        write_shard(self.root, "synth", "a", [(50, "Hello."), (60, "World.")])
        write_shard(self.root, "synth", "b", [(40, "Not finished.")], done=False)
        d = os.path.join(self.root, "shards", "synth")
        with open(os.path.join(d, "a.jsonl"), "a") as f:  # a line whose frames run past the features
            f.write(json.dumps({"id": "x", "text": "x", "offset": 100, "n_frames": 50, "source": "s"}) + "\n")
        write_shard(self.root, "real", "c", [(50, "a" * 40), (3001, "too long audio"), (30, "ok")])
        index = ShardIndex(self.root, char_encode, max_text_tokens=30)
        self.assertEqual(sorted(index.scan()), ["real/c", "synth/a"])
        self.assertEqual(len(index.by_group["synth"]), 2)
        self.assertEqual(len(index.by_group["real"]), 1)
        self.assertEqual(index.skipped, {"frames outside the shard": 1, "text too long": 1, "audio too long": 1})
        open(os.path.join(d, "b.done"), "w").close()
        self.assertEqual(index.scan(), ["synth/b"])
        self.assertEqual(index.scan(), [])
        u = index.utterances["synth/a:1"]
        self.assertEqual(index.features(u).shape, (60, 80))

    def test_collate_pads_and_shifts_targets(self):
        write_shard(self.root, "synth", "a", [(50, "ab"), (70, "")])
        index = ShardIndex(self.root, char_encode)
        index.scan()
        b = collate(index, ["synth/a:0", "synth/a:1"], sot=1, eot=2)
        self.assertEqual(tuple(b.mel.shape), (2, 80, 70))
        self.assertEqual(b.n_frames.tolist(), [50, 70])
        self.assertTrue(bool((b.mel[0, :, 50:] == 0).all()))
        ab = char_encode("ab")
        self.assertEqual(b.tokens_in.tolist(), [[1] + ab, [1, 2, 2]])
        self.assertEqual(b.targets.tolist(), [ab + [2], [2, -100, -100]])  # noise: SOT -> EOT
        self.assertEqual(b.n_targets, 4)
        self.assertAlmostEqual(b.audio_seconds, 1.2)


class BatchSamplerTest(SamplerTestBase):
    def test_waits_for_synthetic_data(self):
        write_shard(self.root, "real", "r", fake_utts(20, seed=1))
        index = ShardIndex(self.root, char_encode)
        index.scan()
        sampler = self.sampler(index)
        self.assertEqual(sampler.next_step(), [])
        write_shard(self.root, "synth", "s", fake_utts(20, seed=2))
        index.scan()
        pools = {p for p, _ in sampler.next_step()}
        self.assertEqual(pools, {"synth", "real"})

    def test_shares_budget_and_padding(self):
        make_dataset(self.root, synth_shards=3, per_shard=200)
        index = ShardIndex(self.root, char_encode)
        index.scan()
        sampler = self.sampler(index)
        totals, real_shares, used, padded = collections.Counter(), [], 0, 0
        for _ in range(150):
            frames = collections.Counter()
            for pool, keys in sampler.next_step():
                utts = [index.utterances[k] for k in keys]
                self.assertTrue(len(utts) == 1 or padded_frames(utts) <= 2000)
                frames[pool] += padded_frames(utts)
                used += sum(u.n_frames for u in utts)
            totals.update(frames)
            padded += sum(frames.values())
            real_shares.append(frames["real"] / sum(frames.values()))
        total = sum(totals.values())
        self.assertAlmostEqual(totals["real"] / total, 0.30, delta=0.02)
        self.assertAlmostEqual(totals["noise"] / total, 0.05, delta=0.02)
        self.assertGreater(np.mean([0.15 <= s <= 0.5 for s in real_shares]), 0.9)
        self.assertGreater(used / padded, 0.8)  # length buckets keep padding small

    def test_epoch_covers_each_utterance_once_and_new_shards_join_next_epoch(self):
        write_shard(self.root, "synth", "s0", fake_utts(50, seed=3))
        index = ShardIndex(self.root, char_encode)
        index.scan()
        sampler = self.sampler(index)

        def draw(count):
            seen = []
            while len(seen) < count:
                seen += [k for p, keys in sampler.next_step() if p == "synth" for k in keys]
            return seen

        self.assertEqual(sorted(draw(50)), sorted(index.by_group["synth"]))
        write_shard(self.root, "synth", "s1", fake_utts(50, seed=4))
        index.scan()
        self.assertEqual(sorted(draw(100)), sorted(index.by_group["synth"]))

    def test_resume_draws_the_same_batches(self):
        make_dataset(self.root)
        index = ShardIndex(self.root, char_encode)
        index.scan()
        a = self.sampler(index, seed=5)
        for _ in range(17):
            a.next_step()
        saved = json.loads(json.dumps(a.state_dict()))
        expected = [a.next_step() for _ in range(40)]
        b = self.sampler(index, seed=5)
        b.load_state_dict(saved)
        self.assertEqual([b.next_step() for _ in range(40)], expected)
        with self.assertRaises(ValueError):
            self.sampler(index, seed=6).load_state_dict(saved)

    def test_eval_keys_are_a_fixed_subset(self):
        make_dataset(self.root)
        index = ShardIndex(self.root, char_encode)
        index.scan()
        keys = pick_eval_keys(index, "heldout_synth", 5, seed=0)
        self.assertEqual(len(keys), 5)
        self.assertEqual(keys, pick_eval_keys(index, "heldout_synth", 5, seed=0))
        self.assertEqual(len(pick_eval_keys(index, "heldout_synth", 100, seed=0)), 12)


if __name__ == "__main__":
    unittest.main()
