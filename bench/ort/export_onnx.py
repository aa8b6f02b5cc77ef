#!/usr/bin/python3
"""Whisper-shaped random-weight models for the onnxruntime-web baseline, in ONNX and in earshot's checkpoint format,
with the same weights in both, so the two engines are timed on identical models.

    /usr/bin/python3 bench/ort/export_onnx.py --shape tiny.en [--seed 1] [--out build/ort] [--check] [--earshot CLI]

Writes OUT/<shape>-seed<seed>/ (skipped when its manifest.json is already up to date; --force redoes it):
  checkpoint/            earshot float checkpoint (tests/reference/earshot_checkpoint.py's writer):
                         `earshot import checkpoint OUT/<shape>-seed<seed>/checkpoint -o X.earshot --dtype int8`;
                         marked fixed-length ("variable_length_audio": false) like a real Whisper checkpoint, so
                         earshot pads every clip to the 30-s window as the ONNX encoder does
  encoder.onnx           mel [batch, 80, 3000] -> audio_features [batch, 1500, d]      (the full 30-s window)
  cross_kv.onnx          audio_features [batch, positions, d] -> cross_key_i, cross_value_i [batch, H, positions, dh]
  decoder.onnx           one decoder step with a self-attention KV cache (what transformers.js calls
                         decoder_with_past): tokens int64 [batch, 1], past_key_i / past_value_i [batch, H, past, dh],
                         cross_key_i / cross_value_i [cross_batch, H, positions, dh] -> logits [batch, 1, n_vocab],
                         present_key_i / present_value_i [batch, H, past + 1, dh]. cross_batch may be 1 for any
                         batch (beams share the cross K/V, as earshot's beam search does); keys are stored already
                         scaled by dh^-0.25; past may be 0.
  *_int8.onnx            the same graphs after ORT-style dynamic quantization (see quantize_graph below)
  runtime_init.onnx      a one-node graph: creating its session times onnxruntime-web's own start-up (WASM
                         compile, thread pool), apart from the model's sessions
  manifest.json          shape, seed, dims, file names and sizes, input/output names, special ids; written last,
                         so its presence means the folder is complete
  check/                 (with --check) reference tensors from PyTorch, compared by bench/ort/check_onnx.mjs

The model is earshot_train.model.Whisper (the PyTorch reference) with tests/reference/reference_model.py's seeded
weights. The token embedding is stored once, transposed ([d, n_vocab]): the output projection reads it as a MatMul
weight and the input embedding gathers its columns, so the int8 file also holds one int8 copy.

--check also runs the ONNX files in onnxruntime-web (Node) against PyTorch and, with --earshot, imports the
checkpoint with the CLI and compares its encoder output with PyTorch on a short clip.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

torch.backends.mkldnn.enabled = False

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))

import reference_model as ref  # noqa: E402
from earshot_checkpoint import CheckpointVariant, write_earshot_checkpoint  # noqa: E402
from reference_model import Dims, WeightSpec  # noqa: E402
from signals import speech_like, write_wav_pcm16  # noqa: E402

# Bump when the files written here change meaning; cached folders with another version are rebuilt.
EXPORT_VERSION = 3
OPSET = 14
N_FRAMES = 3000                     # 30 s of 10-ms mel frames: Whisper's fixed window

SHAPES = {
    "tiny.en": Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                    n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4, n_vocab=51864),
    "base.en": Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
                    n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6, n_vocab=51864),
}
SOT, EOT = 1, 2                     # the checkpoint writer's SentencePiece-style control ids


def variant_for(shape: str, seed: int) -> CheckpointVariant:
    return CheckpointVariant(name=f"bench-{shape}-seed{seed}", dims=SHAPES[shape],
                             weights=WeightSpec(seed=seed, eot=EOT), sot=SOT, eot=EOT)


# --- the graphs ----------------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, mel):
        return self.encoder(mel)[0]


def _heads(x, n_head):
    """[B, T, d] -> [B, H, T, dh]"""
    return x.view(x.shape[0], x.shape[1], n_head, -1).transpose(1, 2)


class CrossKV(nn.Module):
    """Cross-attention keys (scaled by dh^-0.25, as the reference scales them) and values of every decoder layer."""

    def __init__(self, model):
        super().__init__()
        self.blocks = model.decoder.blocks
        self.n_head = model.dims.n_text_head
        self.scale = (model.dims.n_text_state // self.n_head) ** -0.25

    def forward(self, audio):
        out = []
        for block in self.blocks:
            attn = block.cross_attn
            out.append(_heads(attn.key(audio) * self.scale, self.n_head))
            out.append(_heads(attn.value(audio), self.n_head))
        return tuple(out)


class DecoderStep(nn.Module):
    """One token per row through the reference decoder's blocks, with the self-attention K/V cache as inputs and
    outputs. Same arithmetic as TextDecoder.forward on the whole prefix, one position at a time."""

    def __init__(self, model):
        super().__init__()
        dec = model.decoder
        self.n_head = model.dims.n_text_head
        self.d = model.dims.n_text_state
        self.scale = (self.d // self.n_head) ** -0.25
        self.embedding_t = nn.Parameter(dec.token_embedding.weight.detach().t().contiguous())   # [d, n_vocab]
        self.positional_embedding = dec.positional_embedding
        self.blocks = dec.blocks
        self.ln = dec.ln

    def _attend(self, q, k, v):
        w = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return (w @ v).transpose(1, 2).reshape(q.shape[0], 1, self.d)

    def forward(self, tokens, *kv):
        n = len(self.blocks)
        past, cross = kv[:2 * n], kv[2 * n:]
        offset = past[0].shape[2]
        x = torch.index_select(self.embedding_t, 1, tokens.reshape(-1)).t().unsqueeze(1)
        x = x + self.positional_embedding[offset:offset + 1]
        presents = []
        for i, block in enumerate(self.blocks):
            attn = block.attn
            h = block.attn_ln(x)
            q = _heads(attn.query(h) * self.scale, self.n_head)
            k = torch.cat([past[2 * i], _heads(attn.key(h) * self.scale, self.n_head)], dim=2)
            v = torch.cat([past[2 * i + 1], _heads(attn.value(h), self.n_head)], dim=2)
            presents += [k, v]
            x = x + attn.out(self._attend(q, k, v))
            h = block.cross_attn_ln(x)
            q = _heads(block.cross_attn.query(h) * self.scale, self.n_head)
            x = x + block.cross_attn.out(self._attend(q, cross[2 * i], cross[2 * i + 1]))
            x = x + block.mlp(block.mlp_ln(x))
        logits = self.ln(x) @ self.embedding_t
        return (logits, *presents)


def io_names(n_layer: int):
    past = [f"past_{kind}_{i}" for i in range(n_layer) for kind in ("key", "value")]
    cross = [f"cross_{kind}_{i}" for i in range(n_layer) for kind in ("key", "value")]
    present = [f"present_{kind}_{i}" for i in range(n_layer) for kind in ("key", "value")]
    return past, cross, present


def export_fp32(model, out_dir: str) -> dict:
    dims = model.dims
    d, h, n_layer = dims.n_text_state, dims.n_text_head, dims.n_text_layer
    dh = d // h
    past, cross, present = io_names(n_layer)
    files = {}
    with torch.no_grad():
        path = os.path.join(out_dir, "encoder.onnx")
        torch.onnx.export(Encoder(model), (torch.zeros(1, dims.n_mels, N_FRAMES),), path, opset_version=OPSET,
                          input_names=["mel"], output_names=["audio_features"],
                          dynamic_axes={"mel": {0: "batch"}, "audio_features": {0: "batch"}})
        files["encoder"] = path

        path = os.path.join(out_dir, "cross_kv.onnx")
        torch.onnx.export(CrossKV(model), (torch.zeros(1, 20, d),), path, opset_version=OPSET,
                          input_names=["audio_features"], output_names=cross,
                          dynamic_axes={"audio_features": {0: "batch", 1: "positions"},
                                        **{name: {0: "batch", 2: "positions"} for name in cross}})
        files["cross_kv"] = path

        # Traced with a non-empty cache and a cross batch different from the batch, so that neither the past
        # length nor the broadcast gets frozen into the graph.
        b, p, s = 2, 3, 20
        args = (torch.zeros(b, 1, dtype=torch.long),
                *[torch.zeros(b, h, p, dh) for _ in past], *[torch.zeros(1, h, s, dh) for _ in cross])
        path = os.path.join(out_dir, "decoder.onnx")
        torch.onnx.export(DecoderStep(model), args, path, opset_version=OPSET,
                          input_names=["tokens", *past, *cross], output_names=["logits", *present],
                          dynamic_axes={"tokens": {0: "batch"}, "logits": {0: "batch"},
                                        **{name: {0: "batch", 2: "past"} for name in past},
                                        **{name: {0: "cross_batch", 2: "positions"} for name in cross},
                                        **{name: {0: "batch", 2: "total"} for name in present}})
        files["decoder"] = path
    return files


# --- int8: what onnxruntime's dynamic quantization writes, done with the onnx package ---------------------------
class _Names:
    def __init__(self, graph):
        self.used = {t.name for t in graph.initializer} | {v.name for v in graph.input} | \
            {o for n in graph.node for o in n.output} | {n.name for n in graph.node}

    def __call__(self, base: str) -> str:
        name, k = base, 0
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def _symmetric_int8(w: np.ndarray, axis):
    """Symmetric int8 in [-127, 127]: per column of a [K, N] MatMul weight (axis=0 reduced), per output channel of
    a conv weight, or per tensor (axis=None)."""
    amax = np.max(np.abs(w), axis=axis, keepdims=axis is not None)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def quantize_graph(model: onnx.ModelProto, per_column: bool = True, quantize_conv: bool = True) -> onnx.ModelProto:
    """Dynamic int8 quantization in the layout onnxruntime's quantize_dynamic produces:

      MatMul(x, W)      -> DynamicQuantizeLinear(x) -> (x_q uint8, x_scale, x_zp)
                           MatMulInteger(x_q, W_q int8, x_zp, W_zp) -> Cast(float) -> Mul(., x_scale * W_scale)
      Conv(x, W, bias)  -> ConvInteger(x_q, W_q, x_zp, W_zp) -> Cast(float) -> Mul(., x_scale * W_scale) -> Add(bias)
      Gather(W, idx)    -> Gather(W_q, idx) -> Cast(float) -> Mul(., W_scale [gathered when per column])

    Each activation is quantized once however many MatMuls read it (q, k and v share one DynamicQuantizeLinear).
    Weight scales are per column (= per output channel) when per_column, else per tensor; conv weights are per
    output channel either way, with a scalar zero point (onnxruntime's ConvInteger takes no per-channel zero
    point). onnxruntime fuses the MatMul pattern into its DynamicQuantizeMatMul kernel at session creation."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    unique = _Names(graph)
    new_inits, new_nodes = [], []
    quantized_inputs = {}
    quantized_weights = {}   # float initializer -> (q name, scale name, zero point name, per_column)

    def init(name, array):
        tensor = numpy_helper.from_array(array, unique(name))
        new_inits.append(tensor)
        return tensor.name

    def quantize_input(x):
        if x not in quantized_inputs:
            names = [unique(f"{x}_quantized"), unique(f"{x}_scale"), unique(f"{x}_zero_point")]
            new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], names, name=unique(f"{x}_QuantizeLinear")))
            quantized_inputs[x] = names
        return quantized_inputs[x]

    def matmul_weight(name):
        if name not in quantized_weights:
            w = numpy_helper.to_array(inits[name])
            q, scale = _symmetric_int8(w, 0 if per_column else None)
            scale = scale.reshape(-1) if per_column else scale.reshape(())
            zp = np.zeros(scale.shape, dtype=np.int8)
            quantized_weights[name] = (init(f"{name}_quantized", q), init(f"{name}_scale", scale),
                                       init(f"{name}_zero_point", zp), per_column)
        return quantized_weights[name]

    def is_float_init(name, ndim):
        t = inits.get(name)
        return t is not None and t.data_type == TensorProto.FLOAT and len(t.dims) == ndim

    # Weights shared by a MatMul and a Gather (the tied embedding) are quantized once, with the MatMul's layout.
    for node in graph.node:
        if node.op_type == "MatMul" and is_float_init(node.input[1], 2):
            matmul_weight(node.input[1])

    for node in graph.node:
        out = node.output[0]
        if node.op_type == "MatMul" and is_float_init(node.input[1], 2):
            w_q, w_scale, w_zp, _ = matmul_weight(node.input[1])
            x_q, x_scale, x_zp = quantize_input(node.input[0])
            mm, cast, scale = unique(f"{out}_MatMulInteger"), unique(f"{out}_cast"), unique(f"{out}_scales")
            new_nodes += [
                helper.make_node("MatMulInteger", [x_q, w_q, x_zp, w_zp], [mm], name=unique(f"{node.name}_quant")),
                helper.make_node("Cast", [mm], [cast], to=TensorProto.FLOAT, name=unique(f"{node.name}_cast")),
                helper.make_node("Mul", [x_scale, w_scale], [scale], name=unique(f"{node.name}_scales_mul")),
                helper.make_node("Mul", [cast, scale], [out], name=unique(f"{node.name}_output_scale_mul")),
            ]
        elif node.op_type == "Conv" and quantize_conv and is_float_init(node.input[1], 3):
            w = numpy_helper.to_array(inits[node.input[1]])
            q, w_scale = _symmetric_int8(w, (1, 2))                     # [C_out, 1, 1]
            x_q, x_scale, x_zp = quantize_input(node.input[0])
            w_q = init(f"{node.input[1]}_quantized", q)
            w_zp = init(f"{node.input[1]}_zero_point", np.array(0, dtype=np.int8))
            w_s = init(f"{node.input[1]}_scale", w_scale.reshape(-1, 1))   # broadcasts over [B, C_out, T]
            conv, cast, scale = unique(f"{out}_ConvInteger"), unique(f"{out}_cast"), unique(f"{out}_scales")
            scaled = unique(f"{out}_scaled") if len(node.input) > 2 else out
            new_nodes += [
                helper.make_node("ConvInteger", [x_q, w_q, x_zp, w_zp], [conv], name=unique(f"{node.name}_quant"),
                                 **{a.name: helper.get_attribute_value(a) for a in node.attribute}),
                helper.make_node("Cast", [conv], [cast], to=TensorProto.FLOAT, name=unique(f"{node.name}_cast")),
                helper.make_node("Mul", [x_scale, w_s], [scale], name=unique(f"{node.name}_scales_mul")),
                helper.make_node("Mul", [cast, scale], [scaled], name=unique(f"{node.name}_output_scale_mul")),
            ]
            if len(node.input) > 2:
                bias = numpy_helper.to_array(inits[node.input[2]]).reshape(-1, 1)
                new_nodes.append(helper.make_node("Add", [scaled, init(f"{node.input[2]}_column", bias)], [out],
                                                  name=unique(f"{node.name}_bias_add")))
        elif node.op_type == "Gather" and node.input[0] in quantized_weights:
            w_q, w_scale, _, cols = quantized_weights[node.input[0]]
            axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
            gathered, cast = unique(f"{out}_quantized"), unique(f"{out}_cast")
            new_nodes += [
                helper.make_node("Gather", [w_q, node.input[1]], [gathered], axis=axis, name=unique(node.name)),
                helper.make_node("Cast", [gathered], [cast], to=TensorProto.FLOAT, name=unique(f"{node.name}_cast")),
            ]
            if cols and axis == 1:
                # Columns were gathered: each one has its own scale, gathered with the same indices.
                col_scale = unique(f"{out}_scales")
                new_nodes.append(helper.make_node("Gather", [w_scale, node.input[1]], [col_scale], axis=0,
                                                  name=unique(f"{node.name}_scales")))
                new_nodes.append(helper.make_node("Mul", [cast, col_scale], [out], name=unique(f"{node.name}_mul")))
            elif not cols or axis == 0:
                new_nodes.append(helper.make_node("Mul", [cast, w_scale], [out], name=unique(f"{node.name}_mul")))
            else:
                raise ValueError(f"{node.name}: cannot dequantize a gather along axis {axis}")
        else:
            new_nodes.append(node)

    used = {i for n in new_nodes for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + [t for t in new_inits if t.name in used])
    # Intermediate shape annotations from the float export stay valid (outputs keep their names and types);
    # the new tensors get none, and onnxruntime infers them.
    onnx.checker.check_model(model)
    return model


def write_runtime_init(out_dir: str) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "runtime_init", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    path = os.path.join(out_dir, "runtime_init.onnx")
    onnx.save(model, path)
    return path


def write_int8(files: dict, per_column: bool) -> dict:
    out = {}
    for key, path in files.items():
        model = quantize_graph(onnx.load(path), per_column=per_column)
        q_path = path[:-len(".onnx")] + "_int8.onnx"
        onnx.save(model, q_path)
        out[f"{key}_int8"] = q_path
    return out


# --- reference tensors for check_onnx.mjs ------------------------------------------------------------------------
def write_tensor(index: dict, folder: str, name: str, array: np.ndarray):
    array = np.ascontiguousarray(array)
    dtype = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64"}[array.dtype]
    array.astype(array.dtype.newbyteorder("<")).tofile(os.path.join(folder, f"{name}.bin"))
    index[name] = {"file": f"{name}.bin", "dtype": dtype, "shape": list(array.shape)}


@torch.no_grad()
def write_check_data(model, out_dir: str, seed: int) -> str:
    """30 s of speech-like audio through the reference: features, encoder output, layer-0 cross K/V, and the
    logits of a 2-row, 4-token teacher-forced decode (what the ONNX steps must reproduce one token at a time)."""
    folder = os.path.join(out_dir, "check")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    dims = model.dims
    mel = ref.log_mel(speech_like(30.0, seed=seed), dims.n_mels, pad_to_samples=N_FRAMES * 160)[None]
    audio = model.encoder(torch.from_numpy(mel))[0]
    cross = CrossKV(model)(audio)
    rng = np.random.default_rng(seed)
    tokens = np.stack([[SOT] + list(rng.integers(3, dims.n_vocab, 3)) for _ in range(2)]).astype(np.int64)
    logits = model.decoder(torch.from_numpy(tokens), audio.expand(2, -1, -1))
    index = {}
    write_tensor(index, folder, "mel", mel.astype(np.float32))
    write_tensor(index, folder, "audio_features", audio.numpy())
    write_tensor(index, folder, "cross_key_0", cross[0].numpy())
    write_tensor(index, folder, "cross_value_0", cross[1].numpy())
    write_tensor(index, folder, "tokens", tokens)
    write_tensor(index, folder, "logits", logits.numpy())
    with open(os.path.join(folder, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return folder


def run_node_check(out_dir: str) -> bool:
    cmd = ["node", os.path.join(HERE, "check_onnx.mjs"), out_dir]
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode == 0


def check_earshot(earshot: str, out_dir: str, model, seed: int) -> bool:
    """`earshot import checkpoint` (f32), then `earshot dump` on a 2-s clip (padded by the engine to the 30-s
    window): the engine's encoder output against the reference's on the engine's own features (DESIGN.md 10: max |diff| <= 1e-4 x max |ref|). The int8 import's
    encoder error is printed for information."""
    work = os.path.join(out_dir, "earshot-check")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    wav = os.path.join(work, "clip.wav")
    write_wav_pcm16(wav, speech_like(2.0, seed=seed + 1))
    ok = True
    for dtype in ("f32", "int8"):
        model_file = os.path.join(work, f"model-{dtype}.earshot")
        dump_dir = os.path.join(work, f"dump-{dtype}")
        for args in (["import", "checkpoint", os.path.join(out_dir, "checkpoint"), "-o", model_file, "--dtype", dtype],
                     ["dump", "--model", model_file, "--audio", wav, "--out", dump_dir]):
            proc = subprocess.run([earshot] + args, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"FAIL: earshot {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
                return False
        with open(os.path.join(dump_dir, "dump.json")) as f:
            meta = json.load(f)
        got = {k: np.fromfile(os.path.join(dump_dir, meta[k]["file"]), dtype="<f4").reshape(meta[k]["shape"])
               for k in ("mel", "encoder")}
        want = ref.encode(model, got["mel"])[0].numpy()
        diff = float(np.max(np.abs(got["encoder"].astype(np.float64) - want)))
        rel = diff / float(np.max(np.abs(want)))
        passed = got["encoder"].shape == want.shape and (dtype != "f32" or rel <= 1e-4)
        ok = ok and passed
        print(f"{'ok' if passed else 'FAIL'}: earshot {dtype} encoder vs PyTorch, 2-s clip in the 30-s window "
              f"{list(got['encoder'].shape)}: max|diff| {diff:.3g}, relative {rel:.2e}"
              + (" (limit 1e-4)" if dtype == "f32" else " (information)"))
        os.remove(model_file)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return ok


# --- main ------------------------------------------------------------------------------------------------------
def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def up_to_date(manifest_path: str, per_column: bool) -> bool:
    try:
        with open(manifest_path) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return False
    folder = os.path.dirname(manifest_path)
    return m.get("export_version") == EXPORT_VERSION and m.get("int8_per_column") == per_column and \
        all(os.path.isfile(os.path.join(folder, p)) for p in m.get("files", {}).values())


def write_checkpoint(out_dir: str, shape: str, seed: int):
    """The test writer's folder, then one change to its config: fixed-length audio (Whisper's 30-s window), so that
    both engines encode 1500 positions whatever the clip's length."""
    folder = os.path.join(out_dir, "checkpoint")
    model, _, _ = write_earshot_checkpoint(folder, variant_for(shape, seed))
    config_path = os.path.join(folder, "config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["variable_length_audio"] = False
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return model


def export_all(shape: str, seed: int, out_root: str, per_column: bool) -> tuple:
    out_dir = os.path.join(out_root, f"{shape}-seed{seed}")
    manifest_path = os.path.join(out_dir, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    model = write_checkpoint(out_dir, shape, seed)
    files = export_fp32(model, out_dir)
    files.update(write_int8(files, per_column))
    files["runtime_init"] = write_runtime_init(out_dir)
    dims = model.dims
    past, cross, present = io_names(dims.n_text_layer)
    manifest = {
        "export_version": EXPORT_VERSION,
        "shape": shape,
        "seed": seed,
        "dims": dims.to_dict(),
        "n_frames": N_FRAMES,
        "opset": OPSET,
        "int8_per_column": per_column,
        "special_tokens": {"sot": SOT, "eot": EOT},
        "checkpoint": "checkpoint",
        "files": {k: os.path.basename(p) for k, p in sorted(files.items())},
        "bytes": {k: os.path.getsize(p) for k, p in sorted(files.items())},
        "sha256": {k: sha256(p) for k, p in sorted(files.items())},
        "io": {"encoder": {"inputs": ["mel"], "outputs": ["audio_features"]},
               "cross_kv": {"inputs": ["audio_features"], "outputs": cross},
               "decoder": {"inputs": ["tokens", *past, *cross], "outputs": ["logits", *present]}},
        "head_dim": dims.n_text_state // dims.n_text_head,
    }
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    mb = {k: round(v / 2**20, 1) for k, v in manifest["bytes"].items()}
    print(f"exported {shape} seed {seed} to {out_dir} in {time.time() - t0:.0f} s; MiB: {mb}", flush=True)
    return out_dir, model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", required=True, choices=sorted(SHAPES))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "ort"))
    p.add_argument("--int8-per-tensor", action="store_true",
                   help="one scale per MatMul weight instead of one per column (output channel)")
    p.add_argument("--force", action="store_true", help="export even if the folder is up to date")
    p.add_argument("--check", action="store_true", help="compare onnxruntime-web (Node) with PyTorch")
    p.add_argument("--earshot", help="with --check: the earshot CLI, to check the checkpoint's import")
    args = p.parse_args()
    torch.set_num_threads(1)
    per_column = not args.int8_per_tensor
    out_dir = os.path.join(args.out, f"{args.shape}-seed{args.seed}")
    model = None
    if args.force or not up_to_date(os.path.join(out_dir, "manifest.json"), per_column):
        out_dir, model = export_all(args.shape, args.seed, args.out, per_column)
    else:
        print(f"{out_dir} is up to date", flush=True)
    if not args.check:
        return 0
    if model is None:
        model = ref.make_model(SHAPES[args.shape], variant_for(args.shape, args.seed).weights)
    write_check_data(model, out_dir, args.seed)
    ok = run_node_check(out_dir)
    if args.earshot:
        ok = check_earshot(os.path.abspath(args.earshot), out_dir, model, args.seed) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
