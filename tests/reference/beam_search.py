"""Beam search exactly as the project specifies it (DESIGN/shared formats: "Beam search, exactly"), on top of the
PyTorch reference model.

Deliberately without a self-attention cache: every step runs the decoder over each hypothesis's full prefix with the
causal mask, so agreement with the engine (which decodes incrementally and reorders its KV cache) checks the cache.
The search also records how close each decision was (score gaps around the cut and in the ordering), so a test can
tell a real disagreement from a near tie that float rounding may legitimately flip.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from reference_model import last_position_logits, shared_cross_attention


@dataclass
class SearchConfig:
    beam_size: int
    max_new_tokens: int
    eot: int
    suppress_tokens: Sequence[int] = ()
    begin_suppress_tokens: Sequence[int] = ()
    timestamp_begin: int = -1       # < 0: the model has no timestamp tokens
    no_timestamps: int = -1

    def suppressed(self, n_vocab: int, first_step: bool) -> np.ndarray:
        """Boolean mask of the ids that may not be generated at this position (timestamps are off)."""
        mask = np.zeros(n_vocab, dtype=bool)
        mask[[t for t in self.suppress_tokens if 0 <= t < n_vocab]] = True
        if first_step:
            mask[[t for t in self.begin_suppress_tokens if 0 <= t < n_vocab]] = True
        if self.timestamp_begin >= 0:
            mask[self.timestamp_begin:] = True
        if 0 <= self.no_timestamps < n_vocab:
            mask[self.no_timestamps] = True
        return mask


@dataclass
class Hypothesis:
    tokens: Tuple[int, ...]          # generated tokens, no prompt, no EOT
    sum_logprob: float
    token_logprobs: Tuple[float, ...]
    ended_with_eot: bool = False
    eot_logprob: Optional[float] = None

    @property
    def score(self) -> float:
        return self.sum_logprob / max(1, len(self.tokens))


@dataclass
class SearchResult:
    prompt: List[int]
    best: Hypothesis
    finished: List[Hypothesis]
    steps: int
    min_margin: float = float("inf")     # smallest score gap among the decisions that shaped the result
    min_margin_where: str = ""
    # The spec stops when B hypotheses have finished, or when M tokens are generated (then live hypotheses join
    # `finished`). When both happen at the same step the order is not pinned down; then this holds the other reading.
    alternative: Optional["SearchResult"] = None
    max_abs_logit: float = 0.0

    def note_margin(self, gap: float, where: str):
        if gap < self.min_margin:
            self.min_margin, self.min_margin_where = gap, where


def top_tokens(logprobs: np.ndarray, k: int) -> List[int]:
    """The k best ids by log-prob, ties broken by the lower id."""
    k = min(k, logprobs.size)
    threshold = np.partition(logprobs, logprobs.size - k)[logprobs.size - k]
    ids = np.nonzero(logprobs >= threshold)[0]
    order = np.lexsort((ids, -logprobs[ids]))
    return [int(i) for i in ids[order[:k]]]


def best_of(finished: List[Hypothesis]) -> Tuple[Hypothesis, float]:
    """Highest length-normalised score (earliest on ties) and its gap to the runner-up."""
    best = None
    for h in finished:
        if best is None or h.score > best.score:
            best = h
    others = sorted((h.score for h in finished if h is not best), reverse=True)
    return best, (best.score - others[0]) if others else float("inf")


@torch.no_grad()
def _step_logprobs(model, audio, rows: List[Tuple[int, ...]], config: SearchConfig, first_step: bool):
    # One row at a time: batching rows against an expanded encoder output makes torch copy it per row.
    logits = torch.cat([model.decoder(torch.tensor([row], dtype=torch.long), audio)[:, -1, :] for row in rows])
    logits = logits.float()
    mask = torch.from_numpy(config.suppressed(logits.shape[-1], first_step))
    finite_max = float(logits.abs().max())
    logits = logits.masked_fill(mask, float("-inf"))
    return torch.log_softmax(logits, dim=-1).numpy(), finite_max


def beam_search(model, audio: torch.Tensor, prompt: Sequence[int], config: SearchConfig) -> SearchResult:
    """audio: encoder output [1, positions, d]."""
    b = config.beam_size
    prompt = tuple(int(t) for t in prompt)
    live: List[Hypothesis] = [Hypothesis((), 0.0, ())]
    finished: List[Hypothesis] = []
    result = SearchResult(prompt=list(prompt), best=None, finished=finished, steps=0)
    reached_limit = False
    with shared_cross_attention(model), last_position_logits(model):
        for step in range(config.max_new_tokens):
            logprobs, max_logit = _step_logprobs(model, audio, [prompt + h.tokens for h in live], config, step == 0)
            result.max_abs_logit = max(result.max_abs_logit, max_logit)
            candidates = []
            for row, h in enumerate(live):
                for token in top_tokens(logprobs[row], b + 1):
                    lp = float(logprobs[row, token])
                    candidates.append((h.sum_logprob + lp, row, token, lp))
            candidates.sort(key=lambda c: -c[0])  # stable: hypothesis order, then rank, on equal scores
            next_live: List[Hypothesis] = []
            last = len(candidates) - 1
            for i, (score, row, token, lp) in enumerate(candidates):
                h = live[row]
                if token == config.eot:
                    if len(finished) < b:
                        finished.append(Hypothesis(h.tokens, score, h.token_logprobs, True, lp))
                else:
                    next_live.append(Hypothesis(h.tokens + (token,), score, h.token_logprobs + (lp,)))
                    if len(next_live) == b:
                        last = i
                        break
            # Decisions that depend on score order: everything walked, plus the first candidate left out.
            scores = [c[0] for c in candidates[: last + 2]]
            for i in range(len(scores) - 1):
                result.note_margin(scores[i] - scores[i + 1], f"step {step}, candidates {i} and {i + 1}")
            live = next_live
            result.steps = step + 1
            if len(finished) >= b or not live:
                if result.steps == config.max_new_tokens and live:
                    alt_finished = finished + [Hypothesis(h.tokens, h.sum_logprob, h.token_logprobs) for h in live]
                    alt_best, _ = best_of(alt_finished)
                    result.alternative = SearchResult(list(prompt), alt_best, alt_finished, result.steps)
                break
        else:
            reached_limit = True
    if reached_limit:
        finished.extend(Hypothesis(h.tokens, h.sum_logprob, h.token_logprobs) for h in live)
    result.best, gap = best_of(finished)
    result.note_margin(gap, "final choice between finished hypotheses")
    return result


@torch.no_grad()
def sequence_logprobs(model, audio: torch.Tensor, prompt: Sequence[int], tokens: Sequence[int], with_eot: bool,
                      config: SearchConfig) -> np.ndarray:
    """Log-probs (under the search's suppression rules) of each generated token of one hypothesis, EOT included
    when with_eot; one teacher-forced pass. -inf where the hypothesis holds a suppressed token."""
    seq = list(prompt) + list(tokens) + ([config.eot] if with_eot else [])
    n = len(seq) - len(prompt)
    if n == 0:
        return np.zeros(0)
    with shared_cross_attention(model):
        logits = model.decoder(torch.tensor([seq[:-1]], dtype=torch.long), audio)[0, len(prompt) - 1:].float()
    out = np.empty(n)
    for i in range(n):
        mask = torch.from_numpy(config.suppressed(logits.shape[-1], i == 0))
        lp = torch.log_softmax(logits[i].masked_fill(mask, float("-inf")), dim=-1)
        out[i] = float(lp[seq[len(prompt) + i]])
    return out
