"""SpecAugment on padded batches: masks stay inside each utterance, are seeded, and are bounded."""
import unittest

import torch

import train_fixtures  # noqa: F401
from earshot_train.specaugment import SpecAugmentConfig, spec_augment  # noqa: E402


def batch():
    g = torch.Generator().manual_seed(0)
    mel = torch.randn(3, 80, 400, generator=g)
    n_frames = torch.tensor([400, 250, 60])
    for i, n in enumerate(n_frames.tolist()):
        mel[i, :, n:] = 0
    return mel, n_frames


class SpecAugmentTest(unittest.TestCase):
    def test_padding_untouched_and_input_not_modified(self):
        mel, n_frames = batch()
        before = mel.clone()
        out = spec_augment(mel, n_frames, SpecAugmentConfig(), torch.Generator().manual_seed(1))
        self.assertTrue(torch.equal(mel, before))
        for i, n in enumerate(n_frames.tolist()):
            self.assertTrue(bool((out[i, :, n:] == 0).all()))

    def test_masks_are_seeded_and_bounded(self):
        mel, n_frames = batch()
        cfg = SpecAugmentConfig()
        a = spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(1))
        b = spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(1))
        c = spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(2))
        self.assertTrue(torch.equal(a, b))
        self.assertFalse(torch.equal(a, c))
        for i, n in enumerate(n_frames.tolist()):
            changed = (a[i, :, :n] != mel[i, :, :n])
            # whole frequency rows or time columns change, never more than the masks' maximum extent
            freq_rows = int(changed.all(dim=1).sum())
            time_cols = int(changed.all(dim=0).sum())
            self.assertLessEqual(freq_rows, cfg.freq_masks * cfg.freq_width)
            n_time = min(cfg.max_time_masks, round(cfg.time_masks_per_second * n / 100))
            self.assertLessEqual(time_cols, n_time * min(cfg.time_width, int(cfg.max_time_fraction * n)))
            fill = mel[i, :, :n].mean()
            self.assertTrue(torch.allclose(a[i, :, :n][changed], fill.expand(int(changed.sum()))))

    def test_no_masks_is_identity(self):
        mel, n_frames = batch()
        cfg = SpecAugmentConfig(freq_masks=0, max_time_masks=0)
        self.assertTrue(torch.equal(spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(0)), mel))


if __name__ == "__main__":
    unittest.main()
