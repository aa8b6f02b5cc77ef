"""Training data: the shard index and the length-bucketed, share-keeping batch sampler.

Shards follow the data contract (features.py, models/train/README.md): only shards with .done are read, so a
shard being written is never seen half-done. The data set grows while training runs: `ShardIndex.scan`
is called again and again and adds the shards that completed since.

Batches: every optimiser step draws from several pools (synthetic speech, real speech, noise) so that each pool
gets a fixed share of the step's padded frames. Real speech is scarce; a fixed share keeps it from being drowned
by synthetic speech. Within a pool, utterances of similar length go together (a window of the shuffled epoch order
is sorted by length and cut into micro-batches), so little compute goes into padding. Each pool's micro-batches are
padded separately: a step is a list of micro-batches whose gradients are accumulated.

Everything a sampler decides is a function of (seed, pool, epoch, window) and its saved state, so a run that is
stopped and resumed draws exactly the batches it would have drawn.
"""
from dataclasses import dataclass
import json
import logging
import os
from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .features import FRAMES_PER_SECOND, MAX_FRAMES, N_MELS, done_shards, load_shard, shard_paths

log = logging.getLogger("earshot_train")

TRAIN_GROUPS = ("synth", "real", "noise")
EVAL_GROUPS = ("heldout_synth", "real_holdout")


@dataclass
class Utterance:
    key: str          # "<group>/<shard>:<line>": stable across scans, used in sampler state
    group: str
    feats_path: str
    offset: int
    n_frames: int
    tokens: np.ndarray  # text tokens without SOT/EOT (int32)
    text: str
    source: str


class ShardIndex:
    """All complete shards under a data root, with their utterances tokenized and checked.

    `encode` maps a transcript to token ids (the SentencePiece model in training, anything in tests). Utterances
    that break the contract (frames out of the shard, too long for the model, text too long) are skipped and
    counted, not fatal: one bad line must not stop a run that has been going for hours.
    """

    def __init__(self, root: str, encode: Callable[[str], List[int]], max_frames: int = MAX_FRAMES,
                 max_text_tokens: int = 222, groups: Sequence[str] = TRAIN_GROUPS + EVAL_GROUPS,
                 keep: Optional[Callable[[str, dict], bool]] = None):
        """`keep(group, record)`, when given, decides which shard lines are used (a curriculum's filter)."""
        self.root = root
        self.keep = keep
        self.encode = encode
        self.max_frames = max_frames
        self.max_text_tokens = max_text_tokens
        self.groups = tuple(groups)
        self.utterances: Dict[str, Utterance] = {}
        self.by_group: Dict[str, List[str]] = {g: [] for g in self.groups}
        self.frames_by_group: Dict[str, int] = {g: 0 for g in self.groups}
        self.skipped: Dict[str, int] = {}
        self._known_shards = set()
        self._feats_cache: Dict[str, np.ndarray] = {}

    def scan(self, only: Optional[Collection[str]] = None) -> List[str]:
        """Adds shards completed since the last scan (of those named in `only`, when given: workers of one run must
        see the same shards); returns their names ("group/shard")."""
        added = []
        for group in self.groups:
            group_dir = os.path.join(self.root, "shards", group)
            for shard in done_shards(group_dir):
                name = f"{group}/{shard}"
                if name in self._known_shards or (only is not None and name not in only):
                    continue
                self._known_shards.add(name)
                try:
                    self._add_shard(group, name, group_dir, shard)
                    added.append(name)
                except (OSError, ValueError, KeyError, TypeError) as e:
                    self._skip("unreadable shard")
                    log.warning("skipping shard %s: %s", name, e)
        return added

    def shard_names(self) -> List[str]:
        """Every shard a scan has looked at ("group/shard"), readable or not."""
        return sorted(self._known_shards)

    def _skip(self, why: str):
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def _add_shard(self, group: str, name: str, group_dir: str, shard: str):
        feats, records = load_shard(group_dir, shard)
        if feats.ndim != 2 or feats.shape[1] != N_MELS:
            raise ValueError(f"features have shape {feats.shape}, expected [frames, {N_MELS}]")
        feats_path = shard_paths(group_dir, shard)["feats"]
        rows = feats.shape[0]
        new = []
        for i, rec in enumerate(records):
            if self.keep is not None and not self.keep(group, rec):
                self._skip("left out by the curriculum")
                continue
            offset, n_frames, text = int(rec["offset"]), int(rec["n_frames"]), str(rec["text"])
            if n_frames < 1 or offset < 0 or offset + n_frames > rows:
                self._skip("frames outside the shard")
                continue
            if n_frames > self.max_frames:
                self._skip("audio too long")
                continue
            tokens = np.asarray(self.encode(text) if text else [], dtype=np.int32)
            if len(tokens) > self.max_text_tokens:
                self._skip("text too long")
                continue
            new.append(Utterance(f"{name}:{i}", group, feats_path, offset, n_frames, tokens, text,
                                 str(rec.get("source", ""))))
        self._feats_cache[feats_path] = feats
        for u in new:
            self.utterances[u.key] = u
            self.by_group[group].append(u.key)
            self.frames_by_group[group] += u.n_frames

    def mean_frames(self, groups: Sequence[str]) -> float:
        n = sum(len(self.by_group.get(g, [])) for g in groups)
        return sum(self.frames_by_group.get(g, 0) for g in groups) / n if n else 0.0

    def hours(self, group: str) -> float:
        return self.frames_by_group.get(group, 0) / FRAMES_PER_SECOND / 3600.0

    def features(self, utt: Utterance) -> np.ndarray:
        """[n_frames, 80] float32 copy of one utterance's log-mel frames."""
        feats = self._feats_cache.get(utt.feats_path)
        if feats is None:
            feats = self._feats_cache[utt.feats_path] = np.load(utt.feats_path, mmap_mode="r")
        return np.asarray(feats[utt.offset: utt.offset + utt.n_frames], dtype=np.float32)


@dataclass
class Pool:
    name: str
    groups: Tuple[str, ...]
    share: float      # share of each step's padded frames


def pools_with_shares(real_share: float, noise_share: float) -> Tuple[Pool, ...]:
    """Synthetic speech, real speech and noise pools. The first pool is the filler: it takes the shares of pools
    that have no data yet."""
    if not (0 <= real_share < 1 and 0 <= noise_share < 1 and real_share + noise_share < 1):
        raise ValueError("real and noise shares must be in [0, 1) and sum to less than 1")
    return (Pool("synth", ("synth",), 1.0 - real_share - noise_share),
            Pool("real", ("real",), real_share), Pool("noise", ("noise",), noise_share))


DEFAULT_POOLS = pools_with_shares(real_share=0.30, noise_share=0.05)


def padded_frames(batch: Sequence[Utterance]) -> int:
    return len(batch) * max(u.n_frames for u in batch)


def length_buckets(index: "ShardIndex", keys: Sequence[str], budget: float, max_utts: int) -> List[List[str]]:
    """Sorts utterances by length and cuts them into batches of at most `budget` padded frames and `max_utts`
    utterances (a batch holds at least one utterance, however long)."""
    utts = sorted((index.utterances[k] for k in keys), key=lambda u: (u.n_frames, u.key))
    batches, current = [], []
    for u in utts:  # sorted ascending, so u is the longest of current + [u]
        if current and ((len(current) + 1) * u.n_frames > budget or len(current) >= max_utts):
            batches.append([x.key for x in current])
            current = []
        current.append(u)
    if current:
        batches.append([x.key for x in current])
    return batches


class BatchSampler:
    """Draws optimiser steps: lists of (pool name, [utterance keys]) micro-batches.

    Per pool: an epoch order (a seeded permutation of the pool's utterances known at the epoch's start: shards that
    land mid-epoch join at the next), consumed in windows; each window is sorted by length, cut into micro-batches
    of at most the pool's frame budget (at least one utterance), and the micro-batches are shuffled.
    """

    def __init__(self, index: ShardIndex, pools: Sequence[Pool] = DEFAULT_POOLS, batch_frames: int = 8000,
                 max_utts: int = 192, window_batches: int = 32, seed: int = 0):
        self.index = index
        self.pools = tuple(pools)
        self.batch_frames = batch_frames
        self.max_utts = max_utts
        self.window_batches = window_batches
        self.seed = seed
        self.state = {p.name: {"epoch": -1, "order": [], "window": 0, "pending": [], "credit": 0.0}
                      for p in self.pools}

    def _keys(self, pool: Pool) -> List[str]:
        return [k for g in pool.groups for k in self.index.by_group.get(g, [])]

    def effective_shares(self) -> Dict[str, float]:
        """Shares of the pools that have data, a missing pool's share going to the filler; {} (wait) while the
        filler has no data: training on the small pools alone would only learn them by heart."""
        present = {p.name: p.share for p in self.pools if self._keys(p)}
        filler = self.pools[0].name
        if filler not in present:
            return {}
        present[filler] += sum(p.share for p in self.pools if p.name not in present)
        return present

    def _rng(self, pool_idx: int, epoch: int, window: Optional[int]) -> np.random.Generator:
        """window None: the epoch's permutation; else that window's micro-batch order."""
        stream = [0] if window is None else [1, window]
        return np.random.default_rng([self.seed, pool_idx, epoch] + stream)

    def _refill(self, pool_idx: int, pool: Pool, budget: float):
        st = self.state[pool.name]
        if not st["order"]:
            keys = sorted(self._keys(pool))
            st["epoch"] += 1
            st["window"] = 0
            rng = self._rng(pool_idx, st["epoch"], None)
            st["order"] = [keys[i] for i in rng.permutation(len(keys))]
        # A window holds about window_batches micro-batches' worth of utterances.
        mean_frames = max(1.0, self.index.mean_frames(pool.groups))
        per_batch = max(1, min(self.max_utts, int(budget // mean_frames)))
        n = max(1, per_batch * self.window_batches)
        window_keys, st["order"] = st["order"][:n], st["order"][n:]
        batches = length_buckets(self.index, [k for k in window_keys if k in self.index.utterances], budget,
                                 self.max_utts)
        if len(batches) > 1 and st["order"]:
            # The window's last batch is whatever was left over, often far below the budget: its utterances
            # go back to the front of the order to start the next window instead.
            st["order"] = batches.pop() + st["order"]
        rng = self._rng(pool_idx, st["epoch"], st["window"])
        st["window"] += 1
        st["pending"] = [batches[i] for i in rng.permutation(len(batches))]

    def _peek(self, pool_idx: int, pool: Pool, budget: float) -> Optional[List[str]]:
        """The pool's next micro-batch (left in place), refilling as needed; None if the pool has no data."""
        st = self.state[pool.name]
        for _ in range(3):  # a refill comes up empty only if all its keys vanished from the index
            while st["pending"]:
                keys = [k for k in st["pending"][0] if k in self.index.utterances]
                if keys:
                    st["pending"][0] = keys
                    return keys
                st["pending"].pop(0)
            self._refill(pool_idx, pool, budget)
        return None

    def next_step(self) -> List[Tuple[str, List[str]]]:
        """The next optimiser step's micro-batches; [] while the filler pool has no data.

        The filler pool (synthetic speech) contributes exactly one micro-batch; the other pools' frames are set
        relative to what it actually drew, so each step keeps the shares even when the filler's micro-batch
        falls short of its budget.
        """
        shares = self.effective_shares()
        if not shares:
            return []
        filler = self.pools[0]
        keys = self._peek(0, filler, shares[filler.name] * self.batch_frames)
        if keys is None:
            return []
        self.state[filler.name]["pending"].pop(0)
        step = [(filler.name, keys)]
        scale = padded_frames([self.index.utterances[k] for k in keys]) / shares[filler.name]
        for pool_idx, pool in enumerate(self.pools[1:], 1):
            if pool.name not in shares:
                continue
            st = self.state[pool.name]
            budget = shares[pool.name] * self.batch_frames
            st["credit"] += shares[pool.name] * scale
            # One micro-batch while the credit is positive, more while it covers half of the next one; a pool
            # whose single clips exceed its budget (long noise clips) contributes every few steps. The credit
            # carries the difference over, so the long-run share is exact.
            taken = 0
            while True:
                keys = self._peek(pool_idx, pool, budget)
                if keys is None:
                    st["credit"] = 0.0
                    break
                cost = padded_frames([self.index.utterances[k] for k in keys])
                if st["credit"] <= 0 or (taken and st["credit"] < cost / 2):
                    break
                taken += 1
                st["pending"].pop(0)
                st["credit"] -= cost
                step.append((pool.name, keys))
        return step

    def state_dict(self) -> dict:
        return {"seed": self.seed, "pools": json.loads(json.dumps(self.state))}

    def load_state_dict(self, state: dict):
        if state.get("seed") != self.seed:
            raise ValueError("sampler state was saved with another seed")
        for name, st in state["pools"].items():
            if name in self.state:
                self.state[name] = st


@dataclass
class Batch:
    mel: torch.Tensor        # [B, 80, T] float32, zero past each utterance's end
    n_frames: torch.Tensor   # [B] int64
    tokens_in: torch.Tensor  # [B, L] int64: SOT + text (padded with EOT)
    targets: torch.Tensor    # [B, L] int64: text + EOT (padded with -100, ignored by the loss)
    n_targets: int
    audio_seconds: float


IGNORE_INDEX = -100


def collate(index: ShardIndex, keys: Sequence[str], sot: int, eot: int) -> Batch:
    utts = [index.utterances[k] for k in keys]
    t_max = max(u.n_frames for u in utts)
    l_max = max(len(u.tokens) for u in utts) + 1
    mel = np.zeros((len(utts), N_MELS, t_max), dtype=np.float32)
    tokens_in = np.full((len(utts), l_max), eot, dtype=np.int64)
    targets = np.full((len(utts), l_max), IGNORE_INDEX, dtype=np.int64)
    for i, u in enumerate(utts):
        mel[i, :, : u.n_frames] = index.features(u).T
        n = len(u.tokens)
        tokens_in[i, 0] = sot
        tokens_in[i, 1: n + 1] = u.tokens
        targets[i, :n] = u.tokens
        targets[i, n] = eot
    n_frames = np.array([u.n_frames for u in utts], dtype=np.int64)
    return Batch(torch.from_numpy(mel), torch.from_numpy(n_frames), torch.from_numpy(tokens_in),
                 torch.from_numpy(targets), int(sum(len(u.tokens) + 1 for u in utts)),
                 float(n_frames.sum()) / FRAMES_PER_SECOND)


def pick_eval_keys(index: ShardIndex, group: str, count: int, seed: int) -> List[str]:
    keys = sorted(index.by_group.get(group, []))
    if len(keys) <= count:
        return keys
    rng = np.random.default_rng([seed, 7919])  # a stream apart from the sampler's
    return sorted(keys[i] for i in rng.choice(len(keys), size=count, replace=False))


def describe(index: ShardIndex) -> str:
    parts = [f"{g} {len(index.by_group[g])} utts {index.hours(g):.2f} h" for g in index.groups if index.by_group[g]]
    text = ", ".join(parts) if parts else "no data"
    if index.skipped:
        text += "; skipped " + ", ".join(f"{n} {why}" for why, n in sorted(index.skipped.items()))
    return text
