"""The PyTorch reference the engine is checked against: the training recipe's model.py, with seeded random weights
shaped so that the checks mean something, and small helpers to run it.

The weights are random but not trivial: LayerNorm gains/biases and all linear/conv biases are non-zero, and linear
weights have std 1/sqrt(fan_in), so activations stay O(1) and attention is far from uniform. In the decoder, token
embeddings are as large as the positions (the history matters), and a final LayerNorm gain of random sign and
suitable size makes next-token distributions peaked without each token predicting itself. An "end of text"
direction that grows with position is planted so that EOT becomes likely after some steps and beam hypotheses
finish at different lengths.
"""
import contextlib
import copy
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.backends.mkldnn.enabled = False

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "models", "train"))
from earshot_train.model import Dims, Whisper  # noqa: E402
from earshot_train import mel as mel_frontend  # noqa: E402,F401


@dataclass
class WeightSpec:
    seed: int
    eot: int
    token_std: float = 1.0         # decoder token embedding std, comparable to the positions: tokens matter
    position_std: float = 1.0      # decoder position table std
    logit_std: float = 2.5         # std of the output logits (peaked next-token distributions)
    eot_gain: float = 3.0          # EOT logit per unit of the planted direction after the final LayerNorm
    eot_noise: float = 1.0         # share of a random embedding kept in EOT (makes its logit depend on context)
    eot_slope: float = 0.25        # growth per position of the planted direction in the decoder positions
    eot_offset: float = 4.0        # position (in tokens) where that growth crosses zero
    encoder_position_noise: float = 0.0  # > 0: encoder positions are sinusoids + noise (a learned table)


def make_model(dims: Dims, spec: WeightSpec) -> Whisper:
    torch.set_num_threads(1)
    model = Whisper(dims).init_weights(spec.seed)
    g = torch.Generator().manual_seed(spec.seed * 7919 + 17)

    def randn(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float32)

    layer_norms = {name for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    d = dims.n_text_state
    # The logits are LN(x) . E with the token embedding E tied to the decoder's input. A final LayerNorm gain of
    # one sign would make each token's own embedding (still in the residual stream) predict that token again, and
    # random decoding would lock onto one repeated token. Random signs remove that bias; the gain's size sets
    # how peaked the distributions are.
    output_gain = spec.logit_std / (spec.token_std * math.sqrt(d))
    with torch.no_grad():
        for name, p in model.named_parameters():
            owner, _, kind = name.rpartition(".")
            if name == "decoder.ln.weight":
                p.copy_(output_gain * randn(*p.shape))
            elif name == "decoder.ln.bias":
                p.copy_(0.1 * output_gain * randn(*p.shape))
            elif owner in layer_norms:
                p.copy_(1.0 + 0.2 * randn(*p.shape) if kind == "weight" else 0.1 * randn(*p.shape))
            elif name == "decoder.token_embedding.weight":
                p.copy_(randn(*p.shape) * spec.token_std)
            elif name == "decoder.positional_embedding":
                p.copy_(randn(*p.shape) * spec.position_std)
            elif p.dim() == 1:
                p.copy_(0.1 * randn(*p.shape))
            else:
                p.copy_(randn(*p.shape) / math.sqrt(p[0].numel()))   # std 1/sqrt(fan_in)
        # End of text: a direction that grows with position in the decoder's position table comes out of the
        # final LayerNorm as `out_direction`; EOT's embedding points there and every other token is made
        # orthogonal to it, so the growing component raises EOT alone.
        direction = randn(d)
        direction /= direction.norm()
        out_direction = direction * model.decoder.ln.weight
        out_scale = out_direction.norm()
        out_direction /= out_scale
        emb = model.decoder.token_embedding.weight
        emb -= (emb @ out_direction)[:, None] * out_direction[None, :]
        emb[spec.eot] = spec.eot_noise * emb[spec.eot] + (spec.eot_gain / out_scale) * out_direction
        steps = torch.arange(dims.n_text_ctx, dtype=torch.float32) - spec.eot_offset
        model.decoder.positional_embedding += spec.eot_slope * steps[:, None] * direction[None, :]
        if spec.encoder_position_noise > 0:
            pos = model.encoder.positional_embedding
            pos += spec.encoder_position_noise * randn(*pos.shape)
    return model.eval()


def canonical_tensors(model: Whisper, include_encoder_positions: bool) -> dict:
    """Canonical name -> float32 numpy array (the .earshot / OpenAI Whisper names)."""
    out = {name: t.detach().numpy().astype(np.float32) for name, t in model.state_dict().items()}
    if include_encoder_positions:
        out["encoder.positional_embedding"] = model.encoder.positional_embedding.numpy().astype(np.float32)
    return out


def with_rounded_tensors(model: Whisper, names) -> Whisper:
    """A copy of the model whose named tensors (canonical names) are rounded to float16 and back."""
    rounded = copy.deepcopy(model)
    tensors = dict(rounded.named_parameters())
    tensors["encoder.positional_embedding"] = rounded.encoder.positional_embedding
    with torch.no_grad():
        for name in names:
            t = tensors[name]
            t.copy_(t.half().float())
    return rounded


class _SharedSourceProjection(nn.Module):
    """Cross-attention K or V projection computed once per encoder output and shared by every beam row.

    Beam search in the reference recomputes the whole decoder every step (that is what checks the engine's
    self-attention cache); recomputing the cross-attention projections of 1500 encoder positions for every row and
    step would only cost time. Rows of a batch whose source is an expand()ed single utterance share one result."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear
        self._key = None
        self._value = None

    def forward(self, x):
        single = x[:1] if x.shape[0] == 1 or x.stride(0) == 0 else None
        if single is None:
            return self.linear(x)
        key = (single.data_ptr(), tuple(single.shape), single.stride())
        if self._key != key:
            self._key, self._value = key, self.linear(single)
        return self._value.expand(x.shape[0], -1, -1)


@contextlib.contextmanager
def shared_cross_attention(model: Whisper):
    saved = []
    for block in model.decoder.blocks:
        attn = block.cross_attn
        saved.append((attn, attn.key, attn.value))
        attn.key, attn.value = _SharedSourceProjection(attn.key), _SharedSourceProjection(attn.value)
    try:
        yield model
    finally:
        for attn, key, value in saved:
            attn.key, attn.value = key, value


@contextlib.contextmanager
def last_position_logits(model: Whisper):
    """The decoder returns logits for its last position only (the final LayerNorm's output is cut to that row), so
    a search step does not pay for a [rows, prefix, n_vocab] projection it would throw away."""
    handle = model.decoder.ln.register_forward_hook(lambda module, inputs, output: output[:, -1:, :])
    try:
        yield model
    finally:
        handle.remove()


@torch.no_grad()
def encode(model: Whisper, mel: np.ndarray) -> torch.Tensor:
    """mel [n_mels, n_frames] -> encoder output [1, positions, d] (after ln_post)."""
    audio, _ = model.encoder(torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))[None])
    return audio


@torch.no_grad()
def teacher_forced_logits(model: Whisper, tokens, audio: torch.Tensor) -> np.ndarray:
    """Logits [len(tokens), n_vocab] after each token, from one causal pass over the whole sequence."""
    t = torch.tensor([list(tokens)], dtype=torch.long)
    with shared_cross_attention(model):
        return model.decoder(t, audio)[0].numpy()


def log_mel(audio: np.ndarray, n_mels: int, pad_to_samples: int = 0) -> np.ndarray:
    return mel_frontend.log_mel_spectrogram(audio, n_mels=n_mels, pad_to_samples=pad_to_samples)
