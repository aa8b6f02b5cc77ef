#!/usr/bin/python3
"""Models and clips for the end-to-end benchmark (bench/e2e/earshot_bench.mjs), cached in build/bench-models/.

    /usr/bin/python3 bench/e2e/prepare.py --earshot build/e2e-native/earshot [--shapes tiny.en,base.en]
        [--dtypes int8,f16] [--out build/bench-models] [--ort-dir build/ort] [--default-model M.earshot]

Writes OUT/manifest.json, which the benchmark reads:
  clips   clip10.wav and clip30.wav: whole LibriSpeech test-other utterances from ../shared/data/dev, one after
          another with 0.25-s gaps, padded with near-silence to exactly 10.000 and 30.000 s (16 kHz, 16-bit mono);
          the concatenated reference text is kept for the default model's sanity check. Without the dev data,
          tests/reference/signals.py's speech_like signal (not words) stands in.
  models  Whisper-shaped random-weight models with exactly the tiny.en / base.en shapes, imported with the CLI at
          each dtype. The weights come from bench/ort/export_onnx.py's checkpoint (build/ort/<shape>-seed1/
          checkpoint, ready once its manifest.json exists) so that earshot and onnxruntime-web time identical
          weights; when that is missing, from tests/reference/hf_whisper.py's BENCH_VARIANTS (a Hugging Face
          Whisper folder with Whisper's real special ids) written here. Plus the default model: --default-model
          (a candidate not shipped yet) or else the first models/earshot-en-*.earshot, if there is one.
Imports are redone only when their source or the CLI changed.
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
from signals import SAMPLE_RATE, speech_like, write_wav_pcm16  # noqa: E402

DEV_DIR = os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "data", "dev"))
CLIP_SECONDS = (10, 30)
ORT_SEED = 1
GAP_S = 0.25


def log(msg):
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


# --- clips ---------------------------------------------------------------------------------------------------------
def librispeech_utterances():
    """(path, transcript) of dev's LibriSpeech test-other clips in manifest order, or [] without the data."""
    manifest = os.path.join(DEV_DIR, "manifest.tsv")
    if not os.path.exists(manifest):
        return []
    out = []
    with open(manifest, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = {name: i for i, name in enumerate(header)}
        for line in f:
            row = line.rstrip("\n").split("\t")
            if "librispeech" in row[col["path"]]:
                out.append((os.path.join(DEV_DIR, row[col["path"]]), row[col["transcript"]]))
    return out


def make_clip(seconds, utterances, rng):
    """Whole utterances that fit, in order, then near-silence up to `seconds`."""
    import soundfile as sf
    n_total = seconds * SAMPLE_RATE
    pieces, texts, used = [], [], 0
    gap = int(GAP_S * SAMPLE_RATE)
    for path, text in utterances:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            continue  # the dev set is 16 kHz throughout; anything else is skipped rather than resampled here
        audio = audio.mean(axis=1)
        need = len(audio) + (gap if pieces else 0)
        if used + need > n_total:
            continue
        if pieces:
            pieces.append(np.zeros(gap, np.float32))
        pieces.append(audio)
        texts.append(text)
        used += need
        if n_total - used < SAMPLE_RATE:
            break
    if not pieces:
        return None, None
    x = np.concatenate(pieces + [np.zeros(n_total - used, np.float32)])
    x = x + 1e-4 * rng.standard_normal(len(x)).astype(np.float32)  # a recording's noise floor, not digital zero
    return x, " ".join(texts)


def prepare_clips(out_dir):
    clips = {}
    utterances = librispeech_utterances()
    rng = np.random.default_rng(7)
    for seconds in CLIP_SECONDS:
        path = os.path.join(out_dir, f"clip{seconds}.wav")
        audio, text = make_clip(seconds, utterances, rng) if utterances else (None, None)
        source = "librispeech test-other (dev)"
        if audio is None:
            audio, text, source = speech_like(seconds, seed=seconds), None, "speech_like (synthetic, no words)"
        write_wav_pcm16(path, audio)
        clips[str(seconds)] = {"path": os.path.relpath(path, REPO_ROOT), "seconds": seconds, "source": source,
                               "reference_text": text}
    return clips


# --- models --------------------------------------------------------------------------------------------------------
def file_stamp(path):
    st = os.stat(path)
    return f"{st.st_size}:{int(st.st_mtime)}"


def ort_checkpoint(ort_dir, shape):
    """bench/ort's earshot checkpoint of `shape`, once its export is complete (manifest.json is written last)."""
    folder = os.path.join(ort_dir, f"{shape}-seed{ORT_SEED}")
    manifest = os.path.join(folder, "manifest.json")
    if not os.path.exists(manifest):
        return None
    with open(manifest, encoding="utf-8") as f:
        m = json.load(f)
    checkpoint = os.path.join(folder, m.get("checkpoint", "checkpoint"))
    if not os.path.exists(os.path.join(checkpoint, "model.safetensors")):
        return None
    return checkpoint


def own_hf_folder(out_dir, shape):
    """A Hugging Face Whisper folder with tests/reference/hf_whisper.py's seeded weights (written once)."""
    from hf_whisper import BENCH_VARIANTS, write_hf_whisper
    folder = os.path.join(out_dir, f"hf-{shape}")
    done = os.path.join(folder, ".complete")
    if not os.path.exists(done):
        log(f"writing random-weight {shape} (Hugging Face layout) to {folder}")
        t = time.time()
        write_hf_whisper(folder, BENCH_VARIANTS[shape])
        with open(done, "w") as f:
            f.write("ok\n")
        log(f"  {time.time() - t:.0f} s")
    return folder


def import_model(cli, kind, src, out_path, dtype):
    weights = os.path.join(src, "model.safetensors")
    stamp = {"kind": kind, "source": os.path.relpath(src, REPO_ROOT), "source_stamp": file_stamp(weights),
             "cli_stamp": file_stamp(cli), "dtype": dtype}
    stamp_path = out_path + ".source.json"
    if os.path.exists(out_path) and os.path.exists(stamp_path):
        with open(stamp_path, encoding="utf-8") as f:
            if json.load(f) == stamp:
                return
    log(f"importing {os.path.relpath(src, REPO_ROOT)} -> {os.path.relpath(out_path, REPO_ROOT)} ({dtype})")
    subprocess.run([cli, "import", kind, src, "-o", out_path, "--dtype", dtype], check=True,
                   stdout=subprocess.DEVNULL)
    with open(stamp_path, "w", encoding="utf-8") as f:
        json.dump(stamp, f)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--earshot", required=True, help="the native CLI (for `earshot import`)")
    p.add_argument("--shapes", default="tiny.en,base.en")
    p.add_argument("--dtypes", default="int8,f16")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "bench-models"))
    p.add_argument("--ort-dir", default=os.path.join(REPO_ROOT, "build", "ort"))
    p.add_argument("--default-model", default=None,
                   help="model timed as the default (default: the first models/earshot-en-*.earshot)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cli = os.path.abspath(args.earshot)

    manifest = {"clips": prepare_clips(args.out), "models": []}
    for shape in [s for s in args.shapes.split(",") if s]:
        checkpoint = ort_checkpoint(args.ort_dir, shape)
        if checkpoint:
            kind, src, origin = "checkpoint", checkpoint, "bench/ort export (same weights as the ONNX files)"
        else:
            kind, src, origin = "whisper", own_hf_folder(args.out, shape), "tests/reference/hf_whisper.py"
            log(f"{shape}: no complete {args.ort_dir}/{shape}-seed{ORT_SEED} export; using own random weights "
                "(earshot/ORT ratios then compare different random weights of the same shapes)")
        for dtype in [d for d in args.dtypes.split(",") if d]:
            out_path = os.path.join(args.out, f"{shape}-{dtype}.earshot")
            import_model(cli, kind, src, out_path, dtype)
            manifest["models"].append({
                "name": f"{shape}-{dtype}", "shape": shape, "dtype": dtype, "random_weights": True,
                "whisper_shaped": True, "path": os.path.relpath(out_path, REPO_ROOT),
                "bytes": os.path.getsize(out_path), "weights_from": origin,
                "same_weights_as_ort": kind == "checkpoint"})

    if args.default_model and not os.path.isfile(args.default_model):
        sys.exit(f"prepare.py: --default-model {args.default_model}: no such file")
    defaults = [os.path.abspath(args.default_model)] if args.default_model else sorted(
        glob.glob(os.path.join(REPO_ROOT, "models", "earshot-en-*.earshot")))
    if defaults:
        path = defaults[0]
        manifest["models"].append({
            "name": os.path.basename(path)[:-len(".earshot")], "shape": "default", "dtype": "as shipped",
            "random_weights": False, "whisper_shaped": False, "path": os.path.relpath(path, REPO_ROOT),
            "bytes": os.path.getsize(path), "sha256": sha256(path)})
    else:
        log("no default model yet (models/earshot-en-*.earshot): its rows are skipped")
        manifest["default_model"] = "no default model yet"

    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    log(f"wrote {os.path.relpath(os.path.join(args.out, 'manifest.json'), REPO_ROOT)}: "
        f"{len(manifest['models'])} models, clips {', '.join(manifest['clips'])} s")


if __name__ == "__main__":
    main()
