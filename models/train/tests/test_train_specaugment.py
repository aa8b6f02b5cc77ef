"""SpecAugment on padded batches: masks stay inside each utterance, are seeded, and are bounded."""
import unittest

import numpy as np
import torch

import train_fixtures  # noqa: F401
from earshot_train.specaugment import (SpecAugmentConfig, spec_augment, warp_frequencies,  # noqa: E402
                                       warp_source_bins)


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
        cfg = SpecAugmentConfig(freq_warp=0.0)  # the warp would change every cell; masks alone are checked here
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
        cfg = SpecAugmentConfig(freq_masks=0, max_time_masks=0, freq_warp=0.0)
        self.assertTrue(torch.equal(spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(0)), mel))


class FrequencyWarpTest(unittest.TestCase):
    def test_unit_factor_is_identity(self):
        np.testing.assert_allclose(warp_source_bins(80, 1.0), np.arange(80), atol=1e-9)
        mel, _ = batch()
        self.assertTrue(torch.allclose(warp_frequencies(mel[0], 1.0), mel[0], atol=1e-6))

    def test_source_bins_stay_in_band_and_in_order(self):
        for alpha in (0.9, 0.95, 1.05, 1.1):
            src = warp_source_bins(80, alpha)
            self.assertTrue(np.all(np.diff(src) >= 0), alpha)
            self.assertGreaterEqual(src.min(), 0.0)
            self.assertLessEqual(src.max(), 79.0)
            # the warp fades out towards the band edge (nothing is read from beyond it) but moves the middle
            self.assertLess(abs(float(src[-1]) - 79.0), 0.5)
            self.assertGreater(abs(float(src[40]) - 40.0), 1.0)

    def test_formant_moves_with_the_factor(self):
        # a longer vocal tract (alpha < 1) lowers a spectral peak, a shorter one (alpha > 1) raises it
        mel = torch.zeros(80, 4)
        mel[40] = 1.0
        self.assertGreater(int(warp_frequencies(mel, 1.1)[:, 0].argmax()), 40)
        self.assertLess(int(warp_frequencies(mel, 0.9)[:, 0].argmax()), 40)

    def test_warp_is_seeded_and_leaves_padding_alone(self):
        mel, n_frames = batch()
        cfg = SpecAugmentConfig(freq_masks=0, max_time_masks=0, freq_warp=0.1)
        a = spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(3))
        b = spec_augment(mel, n_frames, cfg, torch.Generator().manual_seed(3))
        self.assertTrue(torch.equal(a, b))
        for i, n in enumerate(n_frames.tolist()):
            self.assertTrue(bool((a[i, :, n:] == 0).all()))
            self.assertFalse(torch.allclose(a[i, :, :n], mel[i, :, :n]))


if __name__ == "__main__":
    unittest.main()
