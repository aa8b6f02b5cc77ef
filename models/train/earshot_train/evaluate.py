"""Progress checks during training: held-out loss, greedy decoding in PyTorch and a quick word error rate.

The WER here is for watching a run, not for the model card: its normaliser only lowercases and strips
punctuation. Card numbers come from the engine's CLI on the evaluation WAVs.
"""
import re
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from .dataset import IGNORE_INDEX, ShardIndex, collate, length_buckets


@torch.no_grad()
def heldout_loss(model, index: ShardIndex, keys: Sequence[str], sot: int, eot: int, batch_frames: int,
                 device: str = "cpu") -> Tuple[float, int]:
    """Mean per-token cross-entropy (no label smoothing) over `keys`, and the number of target tokens."""
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    for keys_batch in length_buckets(index, keys, batch_frames, max_utts=64):
        b = collate(index, keys_batch, sot, eot)
        logits = model(b.mel.to(device), b.tokens_in.to(device), b.n_frames.to(device))
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.targets.to(device).reshape(-1),
                                       ignore_index=IGNORE_INDEX, reduction="sum"))
        count += b.n_targets
    model.train(was_training)
    return (total / count if count else float("nan")), count


def max_new_tokens(n_frames: torch.Tensor, n_text_ctx: int) -> torch.Tensor:
    """A generous per-utterance cap (spelled letters and digits run to ~8 tokens a second): it stops a model that
    has not learnt to end from repeating itself across the whole text context."""
    return torch.clamp(10 + (n_frames.float() / 100.0 * 8.0).long(), max=n_text_ctx - 1)


@torch.no_grad()
def greedy_decode(model, mel: torch.Tensor, n_frames: torch.Tensor, sot: int, eot: int,
                  suppress: Sequence[int]) -> List[List[int]]:
    """Greedy decoding from the prompt [SOT]; returns the generated tokens without EOT.

    The decoder is re-run over the whole prefix at each step (no KV cache): slow, but it is exactly the training
    model's forward pass, and it only decodes a handful of utterances.
    """
    was_training = model.training
    model.eval()
    audio, audio_mask = model.encoder(mel, n_frames)
    b = mel.shape[0]
    limits = max_new_tokens(n_frames, model.dims.n_text_ctx).to(mel.device)
    tokens = torch.full((b, 1), sot, dtype=torch.long, device=mel.device)
    done = torch.zeros(b, dtype=torch.bool, device=mel.device)
    suppress = torch.tensor(sorted(set(suppress)), dtype=torch.long, device=mel.device)
    for step in range(int(limits.max())):
        logits = model.decoder(tokens, audio, audio_mask)[:, -1]
        logits[:, suppress] = float("-inf")
        next_token = logits.argmax(-1)
        next_token = torch.where(done | (step >= limits), torch.full_like(next_token, eot), next_token)
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        done |= next_token == eot
        if bool(done.all()):
            break
    model.train(was_training)
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[: row.index(eot)] if eot in row else row)
    return out


def normalize_words(text: str) -> List[str]:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_errors(reference: str, hypothesis: str) -> Tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after normalize_words."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)
