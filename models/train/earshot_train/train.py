"""Training loop for earshot's own English model; one command starts a run and the same command resumes it.

    /usr/bin/python3 -m earshot_train.train --resume           (from models/train; or models/train/train.sh)

Runs live in $EARSHOT_DATA/runs/<name>/: train.log, eval.jsonl, last.pt and best.pt (by held-out loss). Sessions on
this machine end hard, so the loop checkpoints every few minutes (write to a temporary file, then rename) with
everything needed to continue exactly: model, optimiser, step, sampler position, counters, evaluation set and the
tokenizer itself (a run keeps tokenizing with the model it started with, even if $DATA/tokenizer is rebuilt).

Numerics on this machine (TOOLCHAIN.md): oneDNN off (its Conv1d weight gradients are wrong here) except for the bf16
matmuls of a training step (`precision`; the model computes its convolutions as matmuls, so none reach oneDNN);
OMP_WAIT_POLICY=PASSIVE (spinning OpenMP threads starve everyone on a shared 2-core box); one thread by default.
"""
import os


def cpu_flags() -> set:
    """The CPU's feature flags (/proc/cpuinfo); empty where that cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return set(f.read().split())
    except OSError:
        return set()


def _prefer_avx512_kernels():
    """PyTorch 1.13 keeps its AVX-512 kernels opt-in (ATEN_CPU_CAPABILITY); on this machine's EPYC a training step is
    ~20% faster with them, gradients as close to float64 as with AVX2 (2e-6). The variable is not checked against
    the CPU (a CPU without AVX-512 would die of an illegal instruction), so it is set only where the CPU has them."""
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= cpu_flags():
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx512")


# Both must precede torch's start: OpenMP reads its policy then, ATen its kernel choice at the first operation.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_prefer_avx512_kernels()

import argparse
import contextlib
import copy
from dataclasses import asdict, dataclass, field, fields
import json
import logging
import math
import random
import signal
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .augment import is_mild
from .dataset import (EVAL_GROUPS, IGNORE_INDEX, TRAIN_GROUPS, BatchSampler, ShardIndex, collate, describe,
                      pick_eval_keys, pools_with_shares)
from .evaluate import greedy_decode, heldout_loss, word_errors
from .features import FRAMES_PER_SECOND, data_root
from .model import Dims, Whisper, encoder_positions
from . import export, parallel
from .parallel import Peers
from .specaugment import SpecAugmentConfig, spec_augment
from .tokens import Tokenizer

torch.backends.mkldnn.enabled = False

log = logging.getLogger("earshot_train")

CHECKPOINT_FORMAT = "earshot-train-state"


@dataclass
class TrainConfig:
    # model (fixed for the life of a run, as is data_seed)
    d_model: int = 256
    n_head: int = 4
    n_audio_layer: int = 6
    n_text_layer: int = 3
    n_audio_ctx: int = 1500
    n_text_ctx: int = 224
    conv1_stride: int = 1             # 2 or 4: 4 or 8 mel frames per encoder position (model.Dims)
    init_seed: int = 0
    # optimisation
    lr: float = 1e-3
    warmup_steps: int = 600
    schedule: str = "inverse_sqrt"   # or "cosine" (needs total_steps)
    total_steps: int = 0
    min_lr_ratio: float = 0.05        # cosine floor
    weight_decay: float = 0.05
    adam_betas: tuple = (0.9, 0.98)
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    precision: str = "auto"           # "fp32", "bf16" (autocast steps) or "auto" (see resolve_precision)
    label_smoothing: float = 0.1
    # Residual dropout on every block's attention and MLP branches. A run repeats its data many times (the real
    # recordings dozens of times): without it the model learns their transcripts by heart.
    dropout: float = 0.0
    ctc_weight: float = 0.3           # auxiliary CTC loss on the encoder output (training only, not exported)
    # Exponential moving average of the weights, updated after every optimiser step (0: none). Evaluation, best.pt
    # and export use the average: it smooths the step-to-step noise of small batches at no cost in training.
    ema_decay: float = 0.999
    # data
    batch_frames: int = 8000          # padded mel frames per optimiser step (100 frames = 1 s)
    max_utts: int = 192
    real_share: float = 0.30
    noise_share: float = 0.05
    data_seed: int = 0
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    spec_augment_from_step: int = 800  # let the model find the alignment on clean features first
    # Curriculum: >= 0 keeps only training utterances with mild augmentation (augment.is_mild at this SNR); a
    # first stage on them, then a run --init-from it on everything (-1).
    min_snr_db: float = -1.0
    max_train_frames: int = 0         # curriculum: > 0 keeps only training utterances this short (mel frames)
    # evaluation
    eval_utts: int = 300              # per held-out group, for the held-out loss
    decode_utts: int = 24             # per held-out group, greedy-decoded for the quick WER
    print_utts: int = 4               # per held-out group, printed as reference / hypothesis

    def dims(self, n_vocab: int) -> Dims:
        return Dims(n_mels=80, n_audio_ctx=self.n_audio_ctx, n_audio_state=self.d_model, n_audio_head=self.n_head,
                    n_audio_layer=self.n_audio_layer, n_text_ctx=self.n_text_ctx, n_text_state=self.d_model,
                    n_text_head=self.n_head, n_text_layer=self.n_text_layer, n_vocab=n_vocab,
                    conv1_stride=self.conv1_stride)

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        d = dict(d)
        d["spec_augment"] = SpecAugmentConfig(**d.get("spec_augment", {}))
        d["adam_betas"] = tuple(d.get("adam_betas", (0.9, 0.98)))
        known = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in d.items() if k in known})


MODEL_SHAPE_FIELDS = ("d_model", "n_head", "n_audio_layer", "n_text_layer", "n_audio_ctx", "n_text_ctx", "conv1_stride")
# Fixed for the life of a run: the model's shape, and the seed and curriculum the saved sampler state belongs to.
FIXED_FIELDS = MODEL_SHAPE_FIELDS + ("init_seed", "data_seed", "min_snr_db", "max_train_frames")


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Learning rate of optimiser update number `step` (1-based): linear warm-up, then the decay."""
    step = max(1, step)
    if step <= cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    if cfg.schedule == "inverse_sqrt":
        return cfg.lr * math.sqrt(cfg.warmup_steps / step)
    if cfg.schedule == "cosine":
        if cfg.total_steps <= cfg.warmup_steps:
            raise ValueError("the cosine schedule needs total_steps > warmup_steps")
        progress = min(1.0, (step - cfg.warmup_steps) / (cfg.total_steps - cfg.warmup_steps))
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX), so that oneDNN's bf16 GEMM beats fp32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags()) and torch.backends.mkldnn.is_available()


def resolve_precision(precision: str, device: str) -> str:
    """"fp32" or "bf16" for a run's `precision` setting. "auto" takes bf16 where it is native: on this machine's EPYC a
    step is twice as fast, and its gradients stay within ~2% of float64 (a bf16 test checks them), which the optimiser
    absorbs as mixed-precision training does elsewhere; the weights, optimiser state and evaluation stay float32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision: 'auto', 'fp32' or 'bf16', not {precision!r}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device == "cpu" and cpu_has_bf16_matmul() else "fp32"


@contextlib.contextmanager
def forward_precision(precision: str, device: str):
    """The context of a training step's forward and backward passes. On the CPU, bf16 matmuls need oneDNN, which is
    switched on for the step only: the model has no convolution for it to get wrong (model.MatmulConv1d)."""
    if precision != "bf16":
        yield
        return
    if device.startswith("cuda"):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        with torch.backends.mkldnn.flags(enabled=True), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; matrices (and the tied embedding) decay, biases and LayerNorm parameters do not."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps)


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Summed token cross-entropy (padding ignored); the caller divides by the step's token count."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX,
                           label_smoothing=label_smoothing, reduction="sum")


# The auxiliary CTC loss predicts characters, not the decoder's BPE pieces: 28 frequent classes let the encoder escape
# CTC's all-blank phase far sooner than 1024 rare ones, and the signal it needs (what was said, where) is the same.
CTC_ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"
_CTC_INDEX = {c: i for i, c in enumerate(CTC_ALPHABET)}


def ctc_labels(text: str) -> List[int]:
    """Character labels of a transcript: lowercase letters, apostrophes and single spaces; anything else (punctuation,
    hyphens) separates words."""
    words = "".join(c if c in _CTC_INDEX else " " for c in text.lower()).split()
    return [_CTC_INDEX[c] for c in " ".join(words)]


def ctc_slots_per_position(frames_per_position: int) -> int:
    """CTC label slots each encoder position emits: the character CTC needs ~25 slots per second (English reads at
    up to ~20 characters per second, and CTC needs a blank between repeated letters), so an 80-ms position (8 mel
    frames, conv1 stride 4) emits two 40-ms slots."""
    return max(1, frames_per_position // 4)


def ctc_head(d_model: int, seed: int, slots_per_position: int = 1) -> torch.nn.Linear:
    """Projection of encoder states onto the CTC characters plus a blank (the last index), once per slot. CTC's
    monotonic alignment gives the encoder a direct signal from the first steps, so the attention decoder finds its
    alignment much sooner than with cross-entropy alone; the head is training-only and dropped at export."""
    head = torch.nn.Linear(d_model, slots_per_position * (len(CTC_ALPHABET) + 1))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.02)
        head.bias.zero_()
    return head


def ctc_loss(head: torch.nn.Linear, audio: torch.Tensor, n_frames: torch.Tensor, texts: Sequence[str],
             conv1_stride: int = 1) -> Tuple[torch.Tensor, int]:
    """(summed CTC loss, number of labels) of the encoder output `audio` [B, S, d] against the transcripts' characters.
    Impossible alignments (more labels than slots) count zero."""
    labels = [ctc_labels(t) for t in texts]
    n_classes = len(CTC_ALPHABET) + 1
    slots = head.out_features // n_classes
    b, s, _ = audio.shape
    logits = head(audio).float().reshape(b, s * slots, n_classes)  # a position's slots in time order
    log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # [S * slots, B, C + 1]
    flat = torch.tensor([c for seq in labels for c in seq], dtype=torch.long, device=audio.device)
    lengths = torch.tensor([len(seq) for seq in labels], dtype=torch.long, device=audio.device)
    loss = F.ctc_loss(log_probs, flat, slots * encoder_positions(n_frames, conv1_stride), lengths, blank=n_classes - 1,
                      reduction="sum", zero_infinity=True)
    return loss, int(lengths.sum())


def curriculum_filter(min_snr_db: float, max_frames: int = 0):
    """ShardIndex's `keep` for a curriculum stage: training groups keep only mildly augmented utterances (min_snr_db
    >= 0) of at most max_frames mel frames (> 0); the held-out groups stay whole, so losses remain comparable
    across stages. None when both are off."""
    if min_snr_db < 0 and max_frames <= 0:
        return None

    def keep(group, rec):
        if group not in TRAIN_GROUPS:
            return True
        if max_frames > 0 and int(rec.get("n_frames", 0)) > max_frames:
            return False
        return min_snr_db < 0 or is_mild(str(rec.get("aug", "")), min_snr_db)
    return keep


def atomic_save(obj, path: str):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class WeightAverage:
    """Exponential moving average of a model's weights (float32, on the model's device)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.reset(model)
        self._model: Optional[torch.nn.Module] = None

    def reset(self, model: torch.nn.Module):
        self.weights = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        current = model.state_dict()
        names = list(self.weights)
        averages = [self.weights[k] for k in names]
        torch._foreach_mul_(averages, self.decay)
        torch._foreach_add_(averages, [current[k].detach().float() for k in names], alpha=1.0 - self.decay)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return dict(self.weights)

    def load_state_dict(self, weights: Dict[str, torch.Tensor]):
        if set(weights) != set(self.weights):
            raise ValueError("the checkpoint's weight average does not match this model")
        self.weights = {k: v.float().clone().to(self.weights[k].device) for k, v in weights.items()}

    def as_model(self, like: torch.nn.Module) -> torch.nn.Module:
        """A model holding the average (one copy of `like`, reused), in eval mode."""
        if self._model is None:
            self._model = copy.deepcopy(like)
        self._model.load_state_dict(self.weights)
        return self._model.eval()


class Trainer:
    def __init__(self, cfg: TrainConfig, run_dir: str, data_dir: str, tokenizer: Tokenizer, device: str = "cpu",
                 peers: Optional[Peers] = None):
        self.cfg, self.run_dir, self.data_dir, self.tok, self.device = cfg, run_dir, data_dir, tokenizer, device
        self.peers = peers or Peers()
        self.dims = cfg.dims(tokenizer.n_vocab)
        self.precision = resolve_precision(cfg.precision, device)
        self.model = Whisper(self.dims).init_weights(cfg.init_seed).set_dropout(cfg.dropout).to(device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.ctc_head = ctc_head(self.dims.n_audio_state, cfg.init_seed,
                                 ctc_slots_per_position(self.dims.frames_per_position)).to(device)
        self.ctc_optimizer = build_optimizer(self.ctc_head, cfg)
        # rank 0 alone keeps the average: it alone evaluates and writes checkpoints
        self.ema = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay > 0 and self.peers.leader else None
        self.index = ShardIndex(data_dir, tokenizer.encode, max_frames=self.dims.frames_per_position * cfg.n_audio_ctx,
                                max_text_tokens=cfg.n_text_ctx - 1, keep=curriculum_filter(cfg.min_snr_db, cfg.max_train_frames))
        self.sampler = BatchSampler(self.index, pools_with_shares(cfg.real_share, cfg.noise_share),
                                    batch_frames=cfg.batch_frames, max_utts=cfg.max_utts, seed=cfg.data_seed)
        self.step = 0
        self.stats = {"audio_seconds": 0.0, "tokens": 0, "utterances": 0, "train_seconds": 0.0,
                      "skipped_steps": 0, "pool_frames": {}}
        self.eval_state = {"keys": {}, "best_loss": None, "best_step": None, "last": None}

    # --- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"format": CHECKPOINT_FORMAT, "version": 1, "config": asdict(self.cfg), "dims": self.dims.to_dict(),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "ctc_head": self.ctc_head.state_dict(), "ctc_optimizer": self.ctc_optimizer.state_dict(), "step": self.step,
                "sampler": self.sampler.state_dict(), "stats": self.stats, "eval": self.eval_state,
                "tokenizer_model": self.tok.sp.serialized_model_proto(),
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
                **({"ema": self.ema.state_dict()} if self.ema else {})}

    def load_state_dict(self, state: dict):
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])
            else:
                log.info("weight average (decay %g): starting from the checkpoint's weights", self.ema.decay)
                self.ema.reset(self.model)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.load_ctc_head(state):
            self.ctc_optimizer.load_state_dict(state["ctc_optimizer"])
        self.step = state["step"]
        self.sampler.load_state_dict(state["sampler"])
        self.stats.update(state["stats"])
        self.eval_state.update(state["eval"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    def load_ctc_head(self, state: dict) -> bool:
        """Takes the CTC head of a checkpoint: as it is when it has this shape, repeated per slot when this front end
        emits more slots per position (a stride change); runs saved before the CTC loss (or with other CTC units)
        start a fresh head. True when taken as it is, so that its optimiser state fits too."""
        head = state.get("ctc_head")
        ours = self.ctc_head.weight.shape
        if head is not None and head["weight"].shape[1:] == ours[1:] and ours[0] % head["weight"].shape[0] == 0:
            repeat = ours[0] // head["weight"].shape[0]
            self.ctc_head.load_state_dict({k: v.repeat(repeat, *[1] * (v.dim() - 1)) for k, v in head.items()})
            if repeat > 1:
                log.info("CTC head: the checkpoint's, once per slot (%d slots per position)", repeat)
            return repeat == 1
        log.info("CTC head: starting fresh (%d outputs)", self.ctc_head.out_features)
        return False

    def save(self, name: str = "last.pt"):
        atomic_save(self.state_dict(), os.path.join(self.run_dir, name))

    # --- one optimiser step ------------------------------------------------------------------------------------
    def train_step(self, micro_batches) -> Dict[str, float]:
        cfg = self.cfg
        lr = learning_rate(cfg, self.step + 1)
        for group in self.optimizer.param_groups + self.ctc_optimizer.param_groups:
            group["lr"] = lr
        # Normalisers and counters cover the whole step; this worker computes the loss of its share only.
        utts = [[self.index.utterances[k] for k in keys] for _, keys in micro_batches]
        n_targets = sum(len(u.tokens) + 1 for group in utts for u in group)
        n_ctc_labels = max(1, sum(len(ctc_labels(u.text)) for group in utts for u in group))
        mine = self.peers.share(micro_batches)
        batches = [(pool, collate(self.index, keys, self.tok.sot, self.tok.eot)) for pool, keys in mine]
        texts = [[self.index.utterances[k].text for k in keys] for _, keys in mine]
        w = cfg.ctc_weight
        augment = self.step >= cfg.spec_augment_from_step
        gen = torch.Generator().manual_seed(cfg.data_seed * 1_000_003 + self.step + self.peers.rank * 1_000_000_007)
        self.model.train()
        optimizers = (self.optimizer, self.ctc_optimizer)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss_sum, ctc_sum, finite = 0.0, 0.0, True
        for (_, b), batch_texts in zip(batches, texts):
            mel = spec_augment(b.mel, b.n_frames, cfg.spec_augment, gen) if augment else b.mel
            n_frames, targets = b.n_frames.to(self.device), b.targets.to(self.device)
            with forward_precision(self.precision, self.device):
                audio, audio_mask = self.model.encoder(mel.to(self.device), n_frames)
                logits = self.model.decoder(b.tokens_in.to(self.device), audio, audio_mask)
                loss = sequence_loss(logits, targets, cfg.label_smoothing)
                total = (1.0 - w) * loss / n_targets
                if w > 0:
                    ctc, _ = ctc_loss(self.ctc_head, audio, n_frames, batch_texts, self.dims.conv1_stride)
                    total = total + w * ctc / n_ctc_labels
                    ctc_sum += float(ctc)
                if not torch.isfinite(total):
                    finite = False
                    break
                total.backward()
            loss_sum += float(loss)
        params = list(self.model.parameters()) + list(self.ctc_head.parameters())
        loss_sum, ctc_sum, bad = self.peers.sum_gradients(params, [loss_sum, ctc_sum, 0.0 if finite else 1.0])
        finite = bad == 0
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)) if finite else float("nan")
        if finite and math.isfinite(grad_norm):
            for opt in optimizers:
                opt.step()
            if self.ema is not None:
                self.ema.update(self.model)
        else:
            self.stats["skipped_steps"] += 1
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        self.step += 1
        frames = [(pool, sum(u.n_frames for u in group)) for (pool, _), group in zip(micro_batches, utts)]
        seconds = sum(n / FRAMES_PER_SECOND for _, n in frames)
        self.stats["audio_seconds"] += seconds
        self.stats["tokens"] += n_targets
        self.stats["utterances"] += sum(len(group) for group in utts)
        for pool, n in frames:
            self.stats["pool_frames"][pool] = self.stats["pool_frames"].get(pool, 0) + n
        return {"loss": loss_sum / n_targets if finite else float("nan"),
                "ctc_loss": ctc_sum / n_ctc_labels if finite else float("nan"), "lr": lr, "grad_norm": grad_norm,
                "audio_seconds": seconds, "finite": finite and math.isfinite(grad_norm)}

    # --- evaluation ----------------------------------------------------------------------------------------------
    def refresh_eval_keys(self) -> bool:
        """Fixes each held-out group's evaluation subset; a group still growing is re-picked until it is full.
        Returns True when the set changed (held-out losses before and after are then not comparable)."""
        changed = False
        for group in EVAL_GROUPS:
            have = self.eval_state["keys"].get(group, [])
            available = len(self.index.by_group.get(group, []))
            if len(have) < self.cfg.eval_utts and available > len(have):
                self.eval_state["keys"][group] = pick_eval_keys(self.index, group, self.cfg.eval_utts,
                                                                self.cfg.data_seed)
                changed = True
        if changed:
            self.eval_state["best_loss"] = self.eval_state["best_step"] = None
        return changed

    def evaluate(self) -> Optional[dict]:
        if self.refresh_eval_keys():
            log.info("evaluation set: %s (best-checkpoint tracking restarts)",
                     ", ".join(f"{g} {len(k)} utts" for g, k in self.eval_state["keys"].items()))
        result = {"step": self.step, "audio_hours": self.stats["audio_seconds"] / 3600, "groups": {}}
        model = self.model
        if self.ema is not None:
            model = self.ema.as_model(self.model)
            result["weights"] = f"ema {self.ema.decay:g}"
        for group, keys in self.eval_state["keys"].items():
            keys = [k for k in keys if k in self.index.utterances]
            if not keys:
                continue
            loss, n_tokens = heldout_loss(model, self.index, keys, self.tok.sot, self.tok.eot,
                                          self.cfg.batch_frames, self.device)
            decode_keys = keys[: self.cfg.decode_utts]
            errors = words = 0
            samples = []
            for start in range(0, len(decode_keys), 8):
                b = collate(self.index, decode_keys[start: start + 8], self.tok.sot, self.tok.eot)
                hyps = greedy_decode(model, b.mel.to(self.device), b.n_frames.to(self.device), self.tok.sot,
                                     self.tok.eot, self.tok.suppress_ids)
                for key, hyp in zip(decode_keys[start: start + 8], hyps):
                    ref = self.index.utterances[key].text
                    text = self.tok.decode(hyp)
                    e, n = word_errors(ref, text)
                    errors, words = errors + e, words + n
                    samples.append((ref, text))
            wer = 100.0 * errors / max(1, words)
            result["groups"][group] = {"loss": loss, "tokens": n_tokens, "wer": wer, "words": words}
            log.info("eval %s: held-out loss %.4f (%d utts, %d tokens), greedy WER %.1f%% (%d utts, %d words)",
                     group, loss, len(keys), n_tokens, wer, len(decode_keys), words)
            for ref, hyp in samples[: self.cfg.print_utts]:
                log.info("   REF: %s", ref)
                log.info("   HYP: %s", hyp)
        if not result["groups"]:
            return None
        result["loss"] = float(np.mean([g["loss"] for g in result["groups"].values()]))
        best = self.eval_state["best_loss"]
        result["best"] = best is None or result["loss"] < best
        self.eval_state["last"] = result
        if result["best"]:
            self.eval_state["best_loss"], self.eval_state["best_step"] = result["loss"], self.step
        with open(os.path.join(self.run_dir, "eval.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        log.info("eval step %d: mean held-out loss %.4f%s (best %.4f at step %d)", self.step, result["loss"],
                 " NEW BEST" if result["best"] else "", self.eval_state["best_loss"], self.eval_state["best_step"])
        return result


@dataclass
class Schedule:
    """Wall-clock intervals of the loop's chores (runtime options: not part of a run's identity)."""
    checkpoint_minutes: float = 5.0
    eval_minutes: float = 25.0
    rescan_minutes: float = 10.0
    log_seconds: float = 60.0
    max_steps: int = 0        # stop after this optimiser step (0: never)
    max_hours: float = 0.0    # stop after this many wall hours in this process (0: never)


class Stop:
    requested = False

    @classmethod
    def install(cls):
        def handler(signum, _frame):
            log.info("signal %d: saving and stopping", signum)
            cls.requested = True
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


WEIGHT_CHECK_STEPS = 100  # how often workers confirm they still hold the same weights


def weights_checksum(trainer: Trainer) -> float:
    return sum(float(p.detach().double().sum()) for p in list(trainer.model.parameters()) +
               list(trainer.ctc_head.parameters()))


def run(trainer: Trainer, sched: Schedule):
    """The training loop. With several workers every decision that changes what a step sees (stop, rescan) is rank
    0's and reaches the others before the step; evaluation, logging and checkpoints are rank 0's alone."""
    peers = trainer.peers
    start = last_ckpt = last_log = last_rescan = time.monotonic()
    last_eval = start
    window = {"loss": 0.0, "ctc": 0.0, "steps": 0, "seconds": 0.0, "audio": 0.0, "grad": 0.0}
    consecutive_bad = 0
    while True:
        now = time.monotonic()
        stop = Stop.requested
        if sched.max_steps and trainer.step >= sched.max_steps:
            log.info("reached step %d", trainer.step)
            stop = True
        if sched.max_hours and now - start >= sched.max_hours * 3600:
            log.info("reached %.2f hours", sched.max_hours)
            stop = True
        rescan = now - last_rescan >= sched.rescan_minutes * 60
        stop_votes, rescan_votes = peers.sum_flags([float(stop and peers.leader), float(rescan and peers.leader)])
        if stop_votes:
            break
        if rescan_votes:
            if peers.leader:
                added = trainer.index.scan()
                if added:
                    log.info("data: %d new shards; %s", len(added), describe(trainer.index))
            names = peers.from_leader(trainer.index.shard_names())
            if not peers.leader:
                trainer.index.scan(only=set(names))
            last_rescan = now
        if peers.active and trainer.step % WEIGHT_CHECK_STEPS == 0 and not peers.agree(weights_checksum(trainer)):
            raise RuntimeError(f"step {trainer.step}: the workers' weights differ; resume from last.pt")
        micro_batches = trainer.sampler.next_step()
        if not micro_batches:
            log.info("waiting for synthetic shards under %s (%s)", trainer.data_dir, describe(trainer.index))
            time.sleep(60)
            last_rescan = 0.0
            continue
        t0 = time.monotonic()
        out = trainer.train_step(micro_batches)
        dt = time.monotonic() - t0
        trainer.stats["train_seconds"] += dt
        if out["finite"]:
            consecutive_bad = 0
            window["loss"] += out["loss"]
            window["ctc"] += out["ctc_loss"]
            window["grad"] += out["grad_norm"]
            window["steps"] += 1
        else:
            consecutive_bad += 1
            log.warning("step %d: non-finite loss or gradient, update skipped", trainer.step)
            if consecutive_bad >= 50:
                raise RuntimeError("50 non-finite steps in a row: stopping (resume from last.pt with a lower --lr)")
        window["seconds"] += dt
        window["audio"] += out["audio_seconds"]
        now = time.monotonic()
        if now - last_log >= sched.log_seconds or trainer.step == 1:
            n = max(1, window["steps"])
            pools = trainer.stats["pool_frames"]
            total = max(1, sum(pools.values()))
            log.info("step %d loss %.4f ctc %.4f lr %.2e gnorm %.2f | audio seen %.2f h | %.1f audio-s/s %.2f s/step | %s",
                     trainer.step, window["loss"] / n, window["ctc"] / n, out["lr"], window["grad"] / n,
                     trainer.stats["audio_seconds"] / 3600, window["audio"] / max(1e-9, window["seconds"]),
                     window["seconds"] / max(1, window["steps"]),
                     "frames so far " + " ".join(f"{p} {100.0 * f / total:.0f}%" for p, f in sorted(pools.items())))
            window = {k: 0.0 for k in window}
            window["steps"] = 0
            last_log = now
        if not peers.leader:
            continue
        if now - last_eval >= sched.eval_minutes * 60:
            threads = torch.get_num_threads()
            torch.set_num_threads(threads * peers.world)  # the other workers wait meanwhile: use their cores
            try:
                result = trainer.evaluate()
            finally:
                torch.set_num_threads(threads)
            if result and result["best"]:
                trainer.save("best.pt")
            trainer.save()
            last_eval = last_ckpt = time.monotonic()
        elif now - last_ckpt >= sched.checkpoint_minutes * 60:
            trainer.save()
            last_ckpt = time.monotonic()
    if peers.leader:
        trainer.save()
        log.info("saved %s at step %d", os.path.join(trainer.run_dir, "last.pt"), trainer.step)


def setup_logging(run_dir: str):
    os.makedirs(run_dir, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handler = logging.FileHandler(os.path.join(run_dir, "train.log"), encoding="utf-8")
    handler.setFormatter(fmt)
    for old in log.handlers:
        old.close()
    log.handlers = [handler]
    if sys.stdout.isatty():
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(fmt)
        log.addHandler(console)
    log.setLevel(logging.INFO)
    log.propagate = False


def load_init(path: str, template_tokenizer: str) -> dict:
    """What a new stage starts from: a training checkpoint, or a model folder (`earshot export` of a shipped
    .earshot file, or the recipe's export), whose SentencePiece model is rebuilt from its pieces with the settings of
    `template_tokenizer`."""
    if os.path.isdir(path):
        with open(template_tokenizer, "rb") as f:
            return export.read_export(path, f.read())
    init = torch.load(path, map_location="cpu")
    if init.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint")
    return init


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m earshot_train.train", description=__doc__.split("\n")[0])
    p.add_argument("--run", default="en-8m", help="run name: $DATA/runs/<name>")
    p.add_argument("--data", default=None, help="data root (default $EARSHOT_DATA or ~/.cache/earshot/train)")
    p.add_argument("--tokenizer", default=None, help="SentencePiece model (default $DATA/tokenizer/sp.model)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from its last.pt (starts the run if it has no checkpoint yet)")
    p.add_argument("--init-from", default=None,
                   help="start a new run from another run's checkpoint or from a model folder (`earshot export` of an "
                        ".earshot file): weights and tokenizer; fresh optimiser, step 0: a fine-tuning stage with "
                        "its own data mix and learning rate")
    p.add_argument("--threads", type=int, default=1, help="PyTorch threads per worker")
    p.add_argument("--workers", type=int, default=1,
                   help="data-parallel worker processes (on CPU, 2 workers x 1 thread beat 1 worker x 2 threads)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    for f in fields(Schedule):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    # Training options: explicit values override a resumed run's saved ones (model shape fields excepted).
    for f in fields(TrainConfig):
        if f.name in ("spec_augment", "adam_betas"):
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workers < 1 or (args.workers > 1 and args.device != "cpu"):
        raise ValueError("--workers: at least 1, and more than 1 only on the CPU")
    data_dir = args.data or data_root()
    run_dir = os.path.join(data_dir, "runs", args.run)
    setup_logging(run_dir)
    torch.set_num_threads(args.threads)
    Stop.install()
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name not in ("spec_augment", "adam_betas") and getattr(args, f.name) is not None}
    last = os.path.join(run_dir, "last.pt")
    state = None
    if os.path.exists(last):
        if not args.resume:
            log.error("%s exists: pass --resume to continue that run, or choose another --run", last)
            print(f"{last} exists: pass --resume to continue that run, or choose another --run", file=sys.stderr)
            return 2
        state = torch.load(last, map_location="cpu")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{last} is not a training checkpoint")
        cfg = TrainConfig.from_dict(state["config"])
        fixed = {k: v for k, v in overrides.items() if k in FIXED_FIELDS and v != getattr(cfg, k)}
        if fixed:
            raise ValueError(f"cannot change the model shape or data seed of a run on resume: {fixed}")
        for k, v in overrides.items():
            setattr(cfg, k, v)
        tokenizer = Tokenizer(model_proto=state["tokenizer_model"])
        log.info("resuming %s at step %d%s", run_dir, state["step"], f" with {overrides}" if overrides else "")
    elif args.init_from:
        init = load_init(args.init_from, args.tokenizer or os.path.join(data_dir, "tokenizer", "sp.model"))
        # A new stage: the source's model shape, but the defaults for everything else (not the source's curriculum
        # or shares), so a stage's options are the ones written on its own command line.
        source_cfg = TrainConfig.from_dict(init["config"])
        cfg = TrainConfig(**{k: getattr(source_cfg, k) for k in MODEL_SHAPE_FIELDS})
        for k, v in overrides.items():
            setattr(cfg, k, v)
        tokenizer = Tokenizer(model_proto=init["tokenizer_model"])
        log.info("new run %s from the weights of %s (step %d)", run_dir, args.init_from, init["step"])
    else:
        cfg = TrainConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        tok_path = args.tokenizer or os.path.join(data_dir, "tokenizer", "sp.model")
        tokenizer = Tokenizer(tok_path)
        log.info("new run %s, tokenizer %s", run_dir, tok_path)
    trainer = Trainer(cfg, run_dir, data_dir, tokenizer, args.device)
    if state is not None:
        trainer.load_state_dict(state)
        del state
    elif args.init_from:
        if not trainer.dims.same_weights_as(init["dims"]):
            raise ValueError(f"{args.init_from} has model shape {init['dims']}, this run {trainer.dims.to_dict()}")
        if init["dims"].get("conv1_stride", 1) != trainer.dims.conv1_stride:
            log.info("conv1 stride %d -> %d: the weights are a starting point for the new front end",
                     init["dims"].get("conv1_stride", 1), trainer.dims.conv1_stride)
        trainer.model.load_state_dict(init["model"])
        if trainer.ema is not None:
            trainer.ema.reset(trainer.model)
        trainer.load_ctc_head(init)
        del init
    n_params = sum(p.numel() for p in trainer.model.parameters())
    log.info("model %s, %.3fM parameters; device %s, %d threads, ATen CPU kernels %s, %s training steps",
             json.dumps(trainer.dims.to_dict()), n_params / 1e6, args.device, torch.get_num_threads(),
             os.environ.get("ATEN_CPU_CAPABILITY", "default"), trainer.precision)
    log.info("config %s", json.dumps(asdict(cfg)))
    with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"config": asdict(cfg), "dims": trainer.dims.to_dict(), "parameters": n_params}, f, indent=1)
    trainer.index.scan()
    log.info("data: %s", describe(trainer.index))
    sched = Schedule(**{f.name: getattr(args, f.name) for f in fields(Schedule)})
    if args.workers == 1:
        run(trainer, sched)
        return 0
    trainer.save()  # the other workers start from this checkpoint
    workers = parallel.Workers(args.workers, worker_main,
                               (run_dir, data_dir, args.device, args.threads, sched, trainer.index.shard_names()))
    log.info("%d workers of %d threads each", args.workers, args.threads)

    def worker_failed(code: int):
        log.error("a worker process ended with exit code %d: stopping (resume from last.pt)", code)
        logging.shutdown()
        os._exit(1)  # the main thread may be blocked in a collective that would wait out its timeout

    try:
        trainer.peers = workers.connect()
    except RuntimeError as e:
        log.error("%s", e)
        raise
    watching = workers.watch(worker_failed)
    try:
        run(trainer, sched)
    finally:
        watching.set()
        parallel.close(trainer.peers)
        workers.join(timeout=60)
    return 0


def worker_main(peers: Peers, run_dir: str, data_dir: str, device: str, threads: int, sched: Schedule,
                shard_names: Sequence[str]):
    """Rank 1..world-1: the run's state from the last.pt rank 0 has just written, the shards rank 0 scanned."""
    torch.set_num_threads(threads)
    state = torch.load(os.path.join(run_dir, "last.pt"), map_location="cpu")
    trainer = Trainer(TrainConfig.from_dict(state["config"]), run_dir, data_dir,
                      Tokenizer(model_proto=state["tokenizer_model"]), device, peers)
    trainer.load_state_dict(state)
    del state
    trainer.index.scan(only=set(shard_names))
    run(trainer, sched)


if __name__ == "__main__":
    sys.exit(main())
