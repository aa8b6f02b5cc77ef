"""SpecAugment (Park et al., 2019) for padded, variable-length log-mel batches: frequency and time masks, after a
random vocal-tract-length warp of each utterance's frequency axis.

Masks only touch each utterance's valid frames, so padding stays zero and the model's length masking is unchanged.
Masked cells get the utterance's mean log-mel value: these features are not zero-mean (silence sits near -0.5 after
Whisper's (x + 4) / 4 scaling), so a zero fill would be a loud, unnatural band. Time masks scale with length: a
1-s command and a 30-s paragraph lose about the same fraction.

The warp (VTLP, Jaitly and Hinton 2013) is there because the model hears few speakers: held-out voices score far worse
than the training voices, and scaling the frequency axis by 0.9-1.1 imitates shorter and longer vocal tracts.
"""
from dataclasses import dataclass

import numpy as np
import torch

from .mel import SAMPLE_RATE, hz_to_mel, mel_band_points


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15          # widest frequency mask, in mel bins (of 80)
    time_masks_per_second: float = 0.5
    max_time_masks: int = 10
    time_width: int = 40          # widest time mask, in frames (10 ms)
    max_time_fraction: float = 0.1  # and at most this fraction of the utterance per mask
    freq_warp: float = 0.1        # warp factor drawn from [1 - freq_warp, 1 + freq_warp]; 0 turns the warp off


WARP_BOUNDARY = 0.8  # of the Nyquist frequency: above it the warp bends back so the band edge maps onto itself


def warp_source_bins(n_mels: int, alpha: float) -> np.ndarray:
    """For each output mel bin, the fractional input bin it reads from when frequencies are scaled by `alpha`.

    Piecewise linear in Hz (as Kaldi's VTLN): output frequency g comes from g / alpha up to the boundary, then from a
    straight line that reaches the Nyquist frequency, so nothing is read from outside the band.
    """
    nyquist = SAMPLE_RATE / 2
    centres = mel_band_points(n_mels)[1:-1]
    boundary = WARP_BOUNDARY * nyquist
    source_hz = np.where(centres <= boundary, centres / alpha,
                         boundary / alpha + (centres - boundary) * (nyquist - boundary / alpha) / (nyquist - boundary))
    return np.interp(hz_to_mel(source_hz), hz_to_mel(centres), np.arange(n_mels, dtype=np.float64))


def warp_frequencies(mel: torch.Tensor, alpha: float) -> torch.Tensor:
    """mel [n_mels, T] -> the same frames with the frequency axis scaled by `alpha` (linear interpolation)."""
    position = torch.from_numpy(warp_source_bins(mel.shape[0], alpha)).to(mel.dtype)
    low = position.floor().long().clamp(0, mel.shape[0] - 1)
    high = (low + 1).clamp(max=mel.shape[0] - 1)
    frac = (position - low.to(mel.dtype)).unsqueeze(1)
    return mel[low] * (1 - frac) + mel[high] * frac


def spec_augment(mel: torch.Tensor, n_frames: torch.Tensor, cfg: SpecAugmentConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """mel [B, n_mels, T] (not modified) -> masked copy. Deterministic for a given generator state."""
    out = mel.clone()
    b, n_mels, _ = mel.shape
    for i in range(b):
        length = int(n_frames[i])
        if length <= 0:
            continue
        valid = out[i, :, :length]
        if cfg.freq_warp > 0:
            alpha = 1.0 + cfg.freq_warp * (2.0 * float(torch.rand((1,), generator=generator)) - 1.0)
            valid.copy_(warp_frequencies(valid, alpha))
        fill = float(valid.mean())
        for _ in range(cfg.freq_masks):
            width = int(torch.randint(0, cfg.freq_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, n_mels - width + 1, (1,), generator=generator))
            valid[start: start + width, :] = fill
        n_time = min(cfg.max_time_masks, int(round(cfg.time_masks_per_second * length / 100.0)))
        max_width = min(cfg.time_width, int(cfg.max_time_fraction * length))
        for _ in range(n_time):
            width = int(torch.randint(0, max_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, length - width + 1, (1,), generator=generator))
            valid[:, start: start + width] = fill
    return out
