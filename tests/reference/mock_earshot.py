#!/usr/bin/python3
"""A stand-in for the `earshot` CLI (import + dump only) used to test the parity harness itself.

It is a second, independent implementation of the same contract: its own HF-name mapping and tokenizer reading,
an incremental decoder with a KV cache and beam-row reordering, in float64 torch ops written here (not model.py).
Its model file is an .npz archive, not a FlatBuffer, so the harness's file checks skip and its numerics checks run.

EARSHOT_MOCK_FAULT=<name> injects one bug, so a self-test can prove the harness catches it:
  mel        features off by 1e-3
  position   decoder positions off by one after the first token
  no_reorder beam search loses the permutation when it reorders the self-attention cache
"""
import io
import json
import math
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "train"))
from earshot_train.mel import log_mel_spectrogram  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402
from signals import read_wav_pcm16  # noqa: E402
from vocab import byte_level_decode, sentencepiece_bytes  # noqa: E402

FAULT = os.environ.get("EARSHOT_MOCK_FAULT", "")
torch.set_num_threads(1)

_HF_RULES = [
    (r"^model\.", ""),
    (r"^encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^decoder\.layer_norm\.", "decoder.ln."),
    (r"\.layers\.", ".blocks."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."), (r"\.k_proj\.", ".key."), (r"\.v_proj\.", ".value."), (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."), (r"\.fc2\.", ".mlp.2."),
]


def _canonical(hf: str) -> str:
    for pattern, repl in _HF_RULES:
        hf = re.sub(pattern, repl, hf)
    return hf


def _sinusoids(length, channels):
    inc = math.log(10000) / (channels // 2 - 1)
    t = np.arange(length)[:, None] * np.exp(-inc * np.arange(channels // 2))[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1)


def _import_whisper(src):
    raw, _ = read_safetensors(os.path.join(src, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    gen = json.load(open(os.path.join(src, "generation_config.json")))
    tensors = {_canonical(k): v for k, v in raw.items() if k != "proj_out.weight"}
    d = cfg["d_model"]
    dims = dict(n_mels=cfg["num_mel_bins"], n_audio_ctx=cfg["max_source_positions"], n_audio_state=d,
                n_audio_head=cfg["encoder_attention_heads"], n_audio_layer=cfg["encoder_layers"],
                n_text_ctx=cfg["max_target_positions"], n_text_state=d, n_text_head=cfg["decoder_attention_heads"],
                n_text_layer=cfg["decoder_layers"], n_vocab=cfg["vocab_size"])
    vocab = json.load(open(os.path.join(src, "vocab.json"), encoding="utf-8"))
    added = json.load(open(os.path.join(src, "added_tokens.json"), encoding="utf-8"))
    by_id = {i: byte_level_decode(t) for t, i in vocab.items() if t != "<|endoftext|>"}
    by_text = dict(added)
    by_text["<|endoftext|>"] = vocab["<|endoftext|>"]
    for text, i in by_text.items():
        by_id[i] = text.encode()
    nots = by_text["<|notimestamps|>"]
    ts = by_text.get("<|0.00|>", nots + 1)
    for i in range(dims["n_vocab"]):
        if i not in by_id:
            by_id[i] = f"<|{(i - ts) * 0.02:.2f}|>".encode()
    special = {"sot": by_text["<|startoftranscript|>"], "eot": by_text["<|endoftext|>"], "no_timestamps": nots,
               "timestamp_begin": ts}
    pos = tensors["encoder.positional_embedding"]
    if np.max(np.abs(pos - _sinusoids(*pos.shape))) < 1e-5:
        del tensors["encoder.positional_embedding"]
    meta = dict(dims=dims, variable_length=False, special=special, suppress=gen["suppress_tokens"],
                begin_suppress=gen["begin_suppress_tokens"], prompt=[special["sot"]],
                token_bytes=[by_id[i].hex() for i in range(dims["n_vocab"])], special_ids=[], kind="bytelevel")
    return tensors, meta


def _import_checkpoint(src):
    tensors, _ = read_safetensors(os.path.join(src, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    tok = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    st = cfg["special_tokens"]
    special = {"sot": st["sot"], "eot": st["eot"], "no_timestamps": st.get("no_timestamps", -1),
               "timestamp_begin": st.get("timestamp_begin", -1)}
    meta = dict(dims=cfg["dims"], variable_length=cfg["variable_length_audio"], special=special,
                edge_samples=int(cfg.get("edge_silence_ms", 0)) * 16,
                suppress=cfg["suppress_tokens"], begin_suppress=cfg["begin_suppress_tokens"],
                prompt=cfg["default_prompt"], token_bytes=[sentencepiece_bytes(p).hex() for p in tok["pieces"]],
                special_ids=tok["special_ids"], kind=tok["kind"])
    return tensors, meta


def cmd_import(argv):
    if "--help" in argv:
        print("usage: mock_earshot import {whisper|checkpoint} DIR -o OUT [--dtype f16|f32]")
        return 0
    kind, src = argv[0], argv[1]
    out = argv[argv.index("-o") + 1]
    dtype = argv[argv.index("--dtype") + 1] if "--dtype" in argv else "f16"
    tensors, meta = (_import_whisper if kind == "whisper" else _import_checkpoint)(src)
    if dtype == "f16":
        tensors = {k: (v.astype(np.float16).astype(np.float32) if v.ndim >= 2 else v) for k, v in tensors.items()}
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **tensors)
    with open(out, "wb") as f:
        f.write(b"MOCK" + buf.getvalue())
    return 0


class Model:
    def __init__(self, path):
        with open(path, "rb") as f:
            blob = f.read()
        archive = np.load(io.BytesIO(blob[4:]))
        self.meta = json.loads(bytes(archive["__meta__"]).decode())
        self.w = {k: torch.from_numpy(archive[k]).double() for k in archive.files if k != "__meta__"}
        self.dims = self.meta["dims"]

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        bias = self.w.get(name + ".bias")
        return y if bias is None else y + bias

    def ln(self, x, name):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.w[name + ".weight"] + self.w[name + ".bias"]

    @staticmethod
    def gelu(x):
        return 0.5 * x * (1 + torch.special.erf(x / math.sqrt(2)))

    def conv(self, x, name, stride):
        w, b = self.w[name + ".weight"], self.w[name + ".bias"]
        xp = torch.nn.functional.pad(x, (1, 1))
        n_out = (xp.shape[1] - 3) // stride + 1
        cols = torch.stack([xp[:, k:k + stride * (n_out - 1) + 1:stride] for k in range(3)], dim=-1)  # [C, T, 3]
        return torch.einsum("ctk,ock->ot", cols, w) + b[:, None]

    @staticmethod
    def attend(q, k, v, n_head, causal_len=None):
        """q [R, T, d], k/v [R, S, d] -> [R, T, d]."""
        r, t, d = q.shape
        dh = d // n_head
        qh = q.view(r, t, n_head, dh).transpose(1, 2)
        kh = k.reshape(k.shape[0], k.shape[1], n_head, dh).transpose(1, 2)
        vh = v.reshape(v.shape[0], v.shape[1], n_head, dh).transpose(1, 2)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(dh)
        w = torch.softmax(scores, dim=-1)
        return (w @ vh).transpose(1, 2).reshape(r, t, d)

    def encode(self, mel):
        x = self.gelu(self.conv(torch.from_numpy(mel).double(), "encoder.conv1", self.dims.get("conv1_stride", 1)))
        x = self.gelu(self.conv(x, "encoder.conv2", 2)).T
        pos = self.w.get("encoder.positional_embedding")
        pos = pos[:x.shape[0]] if pos is not None else torch.from_numpy(_sinusoids(x.shape[0], x.shape[1]))
        x = (x + pos)[None]
        for i in range(self.dims["n_audio_layer"]):
            p = f"encoder.blocks.{i}"
            h = self.ln(x, p + ".attn_ln")
            x = x + self.linear(self.attend(self.linear(h, p + ".attn.query"), self.linear(h, p + ".attn.key"),
                                            self.linear(h, p + ".attn.value"), self.dims["n_audio_head"]),
                                p + ".attn.out")
            x = x + self.linear(self.gelu(self.linear(self.ln(x, p + ".mlp_ln"), p + ".mlp.0")), p + ".mlp.2")
        return self.ln(x, "encoder.ln_post")[0]


class Decoder:
    """Incremental decoder: one new token per row per call, self-attention K/V cached per layer."""

    def __init__(self, model, audio):
        self.m = model
        self.n_layer = model.dims["n_text_layer"]
        self.cross = [(model.linear(audio, f"decoder.blocks.{i}.cross_attn.key")[None],
                       model.linear(audio, f"decoder.blocks.{i}.cross_attn.value")[None]) for i in range(self.n_layer)]
        self.keys = [None] * self.n_layer
        self.values = [None] * self.n_layer
        self.length = 0

    def step(self, tokens):
        m = self.m
        pos = self.length + (1 if FAULT == "position" and self.length > 0 else 0)
        x = (m.w["decoder.token_embedding.weight"][tokens] + m.w["decoder.positional_embedding"][pos])[:, None, :]
        heads = m.dims["n_text_head"]
        for i in range(self.n_layer):
            p = f"decoder.blocks.{i}"
            h = m.ln(x, p + ".attn_ln")
            k, v = m.linear(h, p + ".attn.key"), m.linear(h, p + ".attn.value")
            self.keys[i] = k if self.keys[i] is None else torch.cat([self.keys[i], k], 1)
            self.values[i] = v if self.values[i] is None else torch.cat([self.values[i], v], 1)
            x = x + m.linear(m.attend(m.linear(h, p + ".attn.query"), self.keys[i], self.values[i], heads),
                             p + ".attn.out")
            h = m.ln(x, p + ".cross_attn_ln")
            ck, cv = self.cross[i]
            q = m.linear(h, p + ".cross_attn.query")
            x = x + m.linear(m.attend(q, ck.expand(q.shape[0], -1, -1), cv.expand(q.shape[0], -1, -1), heads),
                             p + ".cross_attn.out")
            x = x + m.linear(m.gelu(m.linear(m.ln(x, p + ".mlp_ln"), p + ".mlp.0")), p + ".mlp.2")
        self.length += 1
        return (m.ln(x, "decoder.ln") @ m.w["decoder.token_embedding.weight"].T)[:, 0, :].float()

    def reorder(self, rows):
        if FAULT == "no_reorder":
            rows = sorted(rows)   # keeps each source row's count, loses the permutation
        idx = torch.tensor(rows)
        self.keys = [k[idx] for k in self.keys]
        self.values = [v[idx] for v in self.values]


def beam_search(model, audio, prompt, beam, max_new):
    meta = model.meta
    sp = meta["special"]
    n_vocab = model.dims["n_vocab"]
    dec = Decoder(model, audio)
    for t in prompt:
        logits = dec.step(torch.tensor([t]))
    live = [([], 0.0, [])]
    finished = []
    for step in range(max_new):
        if step > 0:
            logits = dec.step(torch.tensor([h[0][-1] for h in live]))
        blocked = set(meta["suppress"]) | (set(meta["begin_suppress"]) if step == 0 else set())
        if sp["timestamp_begin"] >= 0:
            blocked |= set(range(sp["timestamp_begin"], n_vocab))
        if sp["no_timestamps"] >= 0:
            blocked.add(sp["no_timestamps"])
        logits[:, sorted(blocked)] = float("-inf")
        lps = torch.log_softmax(logits, dim=-1).numpy()
        cands = []
        for row, (toks, total, tlps) in enumerate(live):
            order = np.lexsort((np.arange(n_vocab), -lps[row]))[:beam + 1]
            cands += [(total + float(lps[row, j]), row, int(j)) for j in order]
        cands.sort(key=lambda c: -c[0])
        new_live, sources = [], []
        for total, row, j in cands:
            toks, _, tlps = live[row]
            if j == sp["eot"]:
                if len(finished) < beam:
                    finished.append((toks, total, tlps + [float(lps[row, j])]))
            else:
                new_live.append((toks + [j], total, tlps + [float(lps[row, j])]))
                sources.append(row)
                if len(new_live) == beam:
                    break
        live = new_live
        if len(finished) >= beam or not live:
            break
        dec.reorder(sources)
    else:
        finished += live
    best = max(range(len(finished)), key=lambda i: (finished[i][1] / max(1, len(finished[i][0])), -i))
    return finished, best


def cmd_dump(argv):
    if "--help" in argv:
        print("usage: mock_earshot dump --model M --audio A --out DIR [--tokens ...] [--beam N] [--max-tokens N]")
        return 0
    opt = {argv[i]: argv[i + 1] for i in range(0, len(argv) - 1, 2)}
    model = Model(opt["--model"])
    meta, dims = model.meta, model.dims
    pcm = read_wav_pcm16(opt["--audio"])
    if not meta["variable_length"]:
        pcm = np.concatenate([pcm, np.zeros(max(0, 480000 - pcm.size), np.float32)])[:480000]
    edge = np.zeros(meta.get("edge_samples", 0), np.float32)
    pcm = np.concatenate([edge, pcm, edge])
    mel = log_mel_spectrogram(pcm, n_mels=dims["n_mels"])
    if FAULT == "mel":
        mel = mel + 1e-3
    out = opt["--out"]
    os.makedirs(out, exist_ok=True)
    audio = model.encode(mel)
    mel.astype("<f4").tofile(os.path.join(out, "mel.f32"))
    audio.numpy().astype("<f4").tofile(os.path.join(out, "encoder.f32"))
    desc = {"mel": {"file": "mel.f32", "shape": list(mel.shape)},
            "encoder": {"file": "encoder.f32", "shape": list(audio.shape)}}
    if "--tokens" in opt:
        tokens = [int(t) for t in opt["--tokens"].split(",")]
        dec = Decoder(model, audio)
        logits = torch.cat([dec.step(torch.tensor([t])) for t in tokens]).numpy()
        logits.astype("<f4").tofile(os.path.join(out, "logits.f32"))
        desc["logits"] = {"file": "logits.f32", "shape": list(logits.shape)}
    if "--beam" in opt:
        beam = int(opt["--beam"])
        prompt = list(meta["prompt"]) + ([meta["special"]["no_timestamps"]] if meta["special"]["no_timestamps"] >= 0
                                         else [])
        default_max = dims["n_text_ctx"] // 2 - len(prompt)
        max_new = min(int(opt.get("--max-tokens", default_max)), dims["n_text_ctx"] - len(prompt))
        finished, best = beam_search(model, audio, prompt, beam, max_new)
        toks, total, tlps = finished[best]
        table = [bytes.fromhex(h) for h in meta["token_bytes"]]
        skip = set(meta["special_ids"])
        n_regular = meta["special"]["eot"] if meta["kind"] == "bytelevel" else len(table)
        text = b"".join(table[t] for t in toks if t < n_regular and t not in skip)
        if meta["kind"] == "sentencepiece" and text.startswith(b" "):
            text = text[1:]
        result = {"beam_size": beam, "prompt": prompt, "tokens": toks, "sum_logprob": total,
                  "token_logprobs": tlps[:len(toks)], "text": text.decode("utf-8", errors="replace"),
                  "finished": [{"tokens": f[0], "sum_logprob": f[1], "score": f[1] / max(1, len(f[0]))}
                               for f in finished]}
        with open(os.path.join(out, "beam.json"), "w") as f:
            json.dump(result, f)
        desc["beam"] = "beam.json"
    with open(os.path.join(out, "dump.json"), "w") as f:
        json.dump(desc, f)
    return 0


def main(argv):
    if len(argv) < 2:
        print("usage: mock_earshot {import|dump} ...", file=sys.stderr)
        return 2
    return {"import": cmd_import, "dump": cmd_dump}[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
