"""SpecAugment (Park et al., 2019) for padded, variable-length log-mel batches: frequency and time masks.

Masks only touch each utterance's valid frames, so padding stays zero and the model's length masking is unchanged.
Masked cells get the utterance's mean log-mel value: these features are not zero-mean (silence sits near -0.5 after
Whisper's (x + 4) / 4 scaling), so a zero fill would be a loud, unnatural band. Time masks scale with length: a
1-s command and a 30-s paragraph lose about the same fraction.
"""
from dataclasses import dataclass

import torch


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15          # widest frequency mask, in mel bins (of 80)
    time_masks_per_second: float = 0.5
    max_time_masks: int = 10
    time_width: int = 40          # widest time mask, in frames (10 ms)
    max_time_fraction: float = 0.1  # and at most this fraction of the utterance per mask


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
