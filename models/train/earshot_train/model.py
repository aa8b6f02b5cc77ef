"""The Whisper-family encoder-decoder in PyTorch, written from the published architecture.

It is both the training model of earshot's own checkpoints and the independent reference that the C++ engine is
checked against (tests/parity). Parameter names are the canonical .earshot tensor names (OpenAI Whisper's).

Facts it follows: two conv1d (k=3, pad 1; the second stride 2, the first stride 1 as in Whisper or 2 or 4 in
earshot's compact models, `Dims.conv1_stride`) each followed by exact GELU; sinusoidal encoder
positions laid out [sin | cos] with log(10000)/(channels/2 - 1) timescale steps; pre-LayerNorm blocks (eps 1e-5);
attention with q and k each scaled by d_head^-0.25; key projections without bias; MLP width 4*d; learned decoder
positions; output projection tied to the token embedding.

Variable-length batches: `audio_lengths` (valid mel frames per item) masks padded encoder positions in
self-attention and cross-attention, and zeroes conv outputs past the end, so that a padded batch computes exactly
what the engine computes on each utterance alone.
"""
from dataclasses import dataclass, asdict
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


CONV1_STRIDES = (1, 2, 4)  # of the first convolution; the second always has stride 2


@dataclass
class Dims:
    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_audio_state: int = 256
    n_audio_head: int = 4
    n_audio_layer: int = 4
    n_text_ctx: int = 256
    n_text_state: int = 256
    n_text_head: int = 4
    n_text_layer: int = 4
    n_vocab: int = 1024
    # 1: Whisper's front end, 2 mel frames (20 ms) per encoder position. 2: 4 frames (40 ms) per position, which
    # halves the encoder's sequence (a training step is ~2x faster, and so is encoding in the engine). 4: 8 frames
    # (80 ms), half again; the kernel-3 convolution then skips one frame in four, whose 25-ms window its neighbours'
    # windows cover.
    conv1_stride: int = 1

    def __post_init__(self):
        if self.conv1_stride not in CONV1_STRIDES:
            raise ValueError(f"conv1_stride must be one of {CONV1_STRIDES}, not {self.conv1_stride}")

    @property
    def frames_per_position(self) -> int:
        return 2 * self.conv1_stride

    def to_dict(self):
        return asdict(self)

    def same_weights_as(self, other: dict) -> bool:
        """Whether a checkpoint with dims `other` has this model's parameter shapes (the stride and context length
        shape no parameter: the encoder's positions are computed)."""
        free = ("conv1_stride", "n_audio_ctx")
        return ({k: v for k, v in self.to_dict().items() if k not in free}
                == {k: v for k, v in other.items() if k not in free})


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's encoder positions, in float32 steps as Whisper computes them (the engine does the same)."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


def conv_output_length(n_in, stride: int):
    """Output length of a kernel-3, padding-1 convolution with this stride (int or tensor)."""
    return (n_in - 1) // stride + 1


def encoder_positions(n_frames: torch.Tensor, conv1_stride: int = 1) -> torch.Tensor:
    """Encoder positions for a number of mel frames: conv1 (stride 1, 2 or 4), then conv2 with stride 2."""
    return conv_output_length(conv_output_length(n_frames, conv1_stride), 2)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x, source=None, mask=None):
        """x [B, T, d]; source [B, S, d] (cross-attention) or None; mask broadcastable to [B, H, T, S], True = blocked.

        Heads are folded into the batch once ([B*H, T, d/h], contiguous) and the mask enters as the bias of one
        baddbmm: the same arithmetic as matmuls over [B, H, ...] views, without the copies those make each way."""
        source = x if source is None else source
        b, t, d = x.shape
        s, h = source.shape[1], self.n_head
        scale = (d // h) ** -0.25  # on both queries and keys, as Whisper does
        q = self._fold_heads(self.query(x) * scale)
        k = self._fold_heads(self.key(source) * scale).transpose(1, 2)
        v = self._fold_heads(self.value(source))
        if mask is None:
            scores = torch.bmm(q, k)
        else:
            scores = torch.baddbmm(self._mask_bias(mask, b, q.dtype), q, k)
        # bf16 scores (autocast) stay bf16: the weights go to a bf16 matmul next anyway, the kernel sums in float
        # (within one bf16 rounding of the fp32 softmax) and a bf16 step is ~8% faster for it.
        weights = torch.softmax(scores if scores.dtype == torch.bfloat16 else scores.float(), dim=-1).to(q.dtype)
        return self.out(torch.bmm(weights, v).view(b, h, t, -1).transpose(1, 2).reshape(b, t, d))

    def _fold_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, d] -> [B*H, N, d/h]."""
        b, n, d = x.shape
        return x.view(b, n, self.n_head, d // self.n_head).transpose(1, 2).reshape(b * self.n_head, n, -1)

    def _mask_bias(self, mask: torch.Tensor, b: int, dtype: torch.dtype) -> torch.Tensor:
        """Boolean mask broadcastable to [B, H, T, S] -> additive bias (0 / -inf) broadcastable to [B*H, T, S]."""
        bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask, float("-inf"))
        bias = bias.reshape((1,) * (4 - bias.dim()) + tuple(bias.shape))
        mb, mh, mt, ms = bias.shape
        if mb == 1 and mh == 1:
            return bias.view(1, mt, ms)
        return bias.expand(b, self.n_head, mt, ms).reshape(b * self.n_head, mt, ms)


class ResidualBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(n_state) if cross_attention else None
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)
        self.dropout = 0.0  # on each residual branch, in training mode only (Whisper.set_dropout)

    def forward(self, x, self_mask=None, source=None, source_mask=None):
        x = x + self._drop(self.attn(self.attn_ln(x), mask=self_mask))
        if self.cross_attn is not None:
            x = x + self._drop(self.cross_attn(self.cross_attn_ln(x), source, mask=source_mask))
        return x + self._drop(self.mlp(self.mlp_ln(x)))

    def _drop(self, branch: torch.Tensor) -> torch.Tensor:
        return F.dropout(branch, self.dropout, self.training) if self.dropout > 0 else branch


class MatmulConv1d(nn.Conv1d):
    """nn.Conv1d (same parameters, same function) computed as one matmul over the unfolded input windows.

    Why: under bf16 autocast the GEMM runs as a bf16 oneDNN matmul (twice the fp32 speed on CPUs with AVX512-BF16),
    while nn.Conv1d would go to oneDNN's convolution, whose weight gradients are wrong on this machine's torch build
    (TOOLCHAIN.md). Zero padding and stride only, which is all the Whisper front end uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        windows = F.pad(x, (pad, pad)).unfold(2, k, stride)  # [B, C_in, T_out, k]
        windows = windows.permute(0, 2, 1, 3).reshape(x.shape[0], windows.shape[2], -1)  # [B, T_out, C_in * k]
        return F.linear(windows, self.weight.reshape(self.out_channels, -1), self.bias).transpose(1, 2)


class AudioEncoder(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.n_audio_state
        self.conv1_stride = dims.conv1_stride
        self.conv1 = MatmulConv1d(dims.n_mels, d, kernel_size=3, stride=dims.conv1_stride, padding=1)
        self.conv2 = MatmulConv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(dims.n_audio_ctx, d), persistent=False)
        self.blocks = nn.ModuleList(ResidualBlock(d, dims.n_audio_head, False) for _ in range(dims.n_audio_layer))
        self.ln_post = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor, n_frames: Optional[torch.Tensor] = None):
        """mel [B, n_mels, T] -> (encoder output [B, S, d], key padding mask [B, 1, 1, S] or None), where
        S = encoder_positions(T, conv1_stride)."""
        b, _, t = mel.shape
        pos_mask = None
        if n_frames is not None:
            mel = mel * (torch.arange(t, device=mel.device)[None, :] < n_frames[:, None])[:, None, :]
        x = F.gelu(self.conv1(mel))
        if n_frames is not None:
            valid = conv_output_length(n_frames, self.conv1_stride)
            x = x * (torch.arange(x.shape[-1], device=mel.device)[None, :] < valid[:, None])[:, None, :]
        x = F.gelu(self.conv2(x))
        s = x.shape[-1]
        if s > self.positional_embedding.shape[0]:
            raise ValueError(f"audio too long: {s} encoder positions > n_audio_ctx {self.positional_embedding.shape[0]}")
        if n_frames is not None:
            positions = encoder_positions(n_frames, self.conv1_stride)
            pos_mask = torch.arange(s, device=mel.device)[None, :] < positions[:, None]
            x = x * pos_mask[:, None, :]
        x = x.transpose(1, 2) + self.positional_embedding[:s]
        key_mask = None if pos_mask is None else ~pos_mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, self_mask=key_mask)
        return self.ln_post(x), key_mask


class TextDecoder(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        d = dims.n_text_state
        self.token_embedding = nn.Embedding(dims.n_vocab, d)
        self.positional_embedding = nn.Parameter(torch.empty(dims.n_text_ctx, d))
        self.blocks = nn.ModuleList(ResidualBlock(d, dims.n_text_head, True) for _ in range(dims.n_text_layer))
        self.ln = nn.LayerNorm(d)
        causal = torch.full((dims.n_text_ctx, dims.n_text_ctx), True).triu_(1)
        self.register_buffer("causal_mask", causal, persistent=False)

    def forward(self, tokens: torch.Tensor, audio: torch.Tensor, audio_mask=None):
        """tokens [B, L], audio [B, S, d] -> logits [B, L, n_vocab] (float32)."""
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        mask = self.causal_mask[:n, :n]
        for block in self.blocks:
            x = block(x, self_mask=mask, source=audio, source_mask=audio_mask)
        x = self.ln(x)
        return (x @ self.token_embedding.weight.t()).float()


class Whisper(nn.Module):
    def __init__(self, dims: Dims):
        super().__init__()
        if dims.n_audio_state != dims.n_text_state:
            raise ValueError("the encoder and decoder widths must match")
        self.dims = dims
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)

    def forward(self, mel, tokens, n_frames=None):
        audio, audio_mask = self.encoder(mel, n_frames)
        return self.decoder(tokens, audio, audio_mask)

    def set_dropout(self, p: float):
        """Residual dropout for training (no parameters: checkpoints and the engine are unaffected)."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {p}")
        for module in self.modules():
            if isinstance(module, ResidualBlock):
                module.dropout = p
        return self

    def init_weights(self, seed: int = 0, std: float = 0.02):
        """Small normal init (the tied embedding must not be N(0, 1)); LayerNorms start as identity."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            layer_norm_params = {id(p) for m in self.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
            for p in self.parameters():
                if id(p) in layer_norm_params:
                    continue
                if p.dim() == 1:
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * std)
        return self
