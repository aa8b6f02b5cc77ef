#!/usr/bin/python3
"""Log-mel parity: the engine's front end, read back through `earshot dump`, against two Python computations.

References:
  * models/train/earshot_train/mel.py (`log_mel_spectrogram`), the training recipe's front end;
  * an independent one written here from the published recipe with torch.stft (float64, centred, reflect padding,
    periodic Hann) and torchaudio's Slaney filter bank (norm="slaney", mel_scale="slaney").
Signals: deterministic chirps with tones, clicks, exact silence and a noise floor, written as 16-bit WAVs: 3.7 s,
an odd 2.0123 s, and a full 30-s window. Models whose audio window is fixed (Whisper) pad the short clips to 30 s;
the padding in use is read from the shape of the dump. Tolerance (DESIGN.md 10): max |diff| <= 1e-4 * max |ref|.

Models: --model PATH (repeatable), else tests/fixtures/tiny.earshot, else two random-weight models built with the
parity helpers in tests/reference and `earshot import` (a variable-length one and a 30-s Whisper one). Prints SKIP
and exits 0 while `earshot dump` (or, for the built models, `earshot import`) is not implemented.
Exit code: 0 pass or skip, 1 failure.
"""
import argparse
import json
import os
import subprocess
import sys
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIXTURE = os.path.join(REPO_ROOT, "tests", "fixtures", "tiny.earshot")
SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
WINDOW_SAMPLES = 30 * SAMPLE_RATE
REL_TOL = 1e-4


class Skip(Exception):
    pass


class Failure(Exception):
    pass


# --- signals ------------------------------------------------------------------------------------------------
def test_signal(n: int, seed: int) -> np.ndarray:
    """Exponential chirp 60 Hz -> 7.8 kHz with a steady tone, clicks, 0.2 s of exact silence and a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SAMPLE_RATE
    duration = n / SAMPLE_RATE
    f0, f1 = 60.0, 7800.0
    k = np.log(f1 / f0) / duration
    chirp = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    tone = 0.2 * np.sin(2 * np.pi * 440.0 * t + rng.uniform(0, 2 * np.pi)) * (np.sin(2 * np.pi * 0.7 * t) > 0)
    x = 0.4 * chirp + tone + 0.003 * rng.standard_normal(n)
    for pos in rng.integers(0, n, size=max(1, n // 16000)):
        x[pos] += 0.8                                            # clicks: broadband, frame-local peaks
    x[int(0.5 * SAMPLE_RATE):int(0.7 * SAMPLE_RATE)] = 0.0       # exact silence hits the log floor
    return (0.9 * x / np.max(np.abs(x))).astype(np.float32)


def write_wav_pcm16(path: str, audio: np.ndarray) -> np.ndarray:
    """Writes mono 16-bit PCM and returns the samples exactly as a reader sees them (int16 / 32768)."""
    pcm = np.clip(np.round(audio.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


# --- references -----------------------------------------------------------------------------------------------
def independent_log_mel(audio: np.ndarray, n_mels: int, pad_to_samples: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F
    import torchaudio

    x = torch.from_numpy(audio.astype(np.float64))
    if pad_to_samples > x.numel():
        x = F.pad(x, (0, pad_to_samples - x.numel()))
    if x.numel() < N_FFT // 2 + 1:                              # reflect padding needs n_fft/2 + 1 samples
        x = F.pad(x, (0, N_FFT // 2 + 1 - x.numel()))
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    stft = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = stft[:, :-1].abs() ** 2                              # Whisper drops the last frame
    filters = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE,
                                                    norm="slaney", mel_scale="slaney").to(torch.float64).T
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def recipe_log_mel():
    """The training recipe's front end, or None (with the reason) when it cannot be imported."""
    sys.path.insert(0, os.path.join(REPO_ROOT, "models", "train"))
    try:
        from earshot_train.mel import log_mel_spectrogram
        return log_mel_spectrogram, None
    except Exception as e:  # a missing or half-written module must not hide the independent comparison
        return None, f"{type(e).__name__}: {e}"


# --- engine -------------------------------------------------------------------------------------------------
def run_cli(earshot: str, args, timeout: float) -> subprocess.CompletedProcess:
    cmd = [earshot] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s")
    if proc.returncode != 0:
        output = proc.stderr + proc.stdout
        if "not implemented" in output:
            raise Skip(f"earshot {args[0]} not implemented yet")
        tail = " | ".join(output.strip().splitlines()[-6:])
        raise Failure(f"`{' '.join(cmd)}` exited with {proc.returncode}: {tail}")
    return proc


def command_available(earshot: str, command: str) -> bool:
    proc = subprocess.run([earshot, command, "--help"], capture_output=True, text=True, timeout=60)
    return "not implemented" not in proc.stdout + proc.stderr


def read_dumped_mel(out_dir: str) -> np.ndarray:
    """DIR/mel.f32 described by DIR/mel.json ({"shape": [...]}) or by the "mel" entry of DIR/dump.json."""
    shape, path = None, os.path.join(out_dir, "mel.f32")
    if os.path.isfile(os.path.join(out_dir, "mel.json")):
        with open(os.path.join(out_dir, "mel.json")) as f:
            shape = json.load(f)["shape"]
    elif os.path.isfile(os.path.join(out_dir, "dump.json")):
        with open(os.path.join(out_dir, "dump.json")) as f:
            info = json.load(f).get("mel")
        if info:
            shape, path = info["shape"], os.path.join(out_dir, info.get("file", "mel.f32"))
    if shape is None or not os.path.isfile(path):
        raise Failure(f"{out_dir}: no mel.f32 with its shape (mel.json or dump.json)")
    data = np.fromfile(path, dtype="<f4")
    shape = [int(s) for s in shape]
    if len(shape) != 2 or data.size != shape[0] * shape[1]:
        raise Failure(f"{path}: {data.size} floats, shape {shape}")
    return data.reshape(shape)


def build_models(earshot: str, work_dir: str, timeout: float):
    """Random-weight models from the parity helpers: one variable-length, one with Whisper's 30-s window."""
    if not command_available(earshot, "import"):
        raise Skip(f"no {os.path.relpath(FIXTURE, REPO_ROOT)} and earshot import not implemented yet")
    sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
    try:
        from earshot_checkpoint import SMALL, write_earshot_checkpoint
        from hf_whisper import TINY, write_hf_whisper
    except Exception as e:
        raise Skip(f"no {os.path.relpath(FIXTURE, REPO_ROOT)} and the parity model helpers do not import: {e}")
    models = []
    for kind, variant, writer in (("checkpoint", SMALL, write_earshot_checkpoint), ("whisper", TINY, write_hf_whisper)):
        source = os.path.join(work_dir, f"src_{kind}")
        out = os.path.join(work_dir, f"{kind}.earshot")
        writer(source, variant)
        run_cli(earshot, ["import", kind, source, "-o", out, "--dtype", "f32"], timeout)
        models.append(out)
    return models


# --- comparison ----------------------------------------------------------------------------------------------
def compare(label: str, got: np.ndarray, ref: np.ndarray, failures, informational: bool = False):
    if got.shape != ref.shape:
        failures.append(f"{label}: shape {list(got.shape)} vs reference {list(ref.shape)}")
        print(f"  {label:<52} shape {list(got.shape)} vs {list(ref.shape)}  FAIL", flush=True)
        return
    max_diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
    max_ref = float(np.max(np.abs(ref)))
    ok = max_diff <= REL_TOL * max_ref
    verdict = "(information)" if informational else ("ok" if ok else "FAIL")
    print(f"  {label:<52} max|diff| {max_diff:.3e}  max|ref| {max_ref:.3f}  rel {max_diff / max_ref:.2e}  {verdict}",
          flush=True)
    if not ok and not informational:
        failures.append(f"{label}: max |diff| {max_diff:.3e} > {REL_TOL} x {max_ref:.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--earshot", required=True, help="path to the earshot CLI")
    p.add_argument("--work-dir", required=True, help="scratch folder")
    p.add_argument("--model", action="append", help="model file(s) to run dump with (any model: only mel is used)")
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed per CLI command")
    args = p.parse_args()
    earshot = os.path.abspath(args.earshot)
    os.makedirs(args.work_dir, exist_ok=True)
    if not os.path.isfile(earshot):
        print(f"FAIL: no earshot binary at {earshot}")
        return 1

    failures = []
    try:
        if not command_available(earshot, "dump"):
            raise Skip("earshot dump not implemented yet")
        if args.model:
            models = [os.path.abspath(m) for m in args.model]
        elif os.path.isfile(FIXTURE):
            models = [FIXTURE]
        else:
            models = build_models(earshot, args.work_dir, args.timeout)

        recipe, recipe_problem = recipe_log_mel()
        if recipe is None:
            print(f"NOTE: models/train/earshot_train/mel.py unavailable ({recipe_problem}); "
                  f"comparing with the independent reference only")
        cases = [("chirp_3.7s", 59200, 1), ("chirp_2.0123s", 32197, 2), ("chirp_30s", WINDOW_SAMPLES, 3)]
        clips = []
        for name, n, seed in cases:
            wav = os.path.join(args.work_dir, f"{name}.wav")
            clips.append((name, wav, write_wav_pcm16(wav, test_signal(n, seed))))

        for model in models:
            model_name = os.path.splitext(os.path.basename(model))[0]
            for name, wav, audio in clips:
                out_dir = os.path.join(args.work_dir, "dumps", f"{model_name}_{name}")
                os.makedirs(out_dir, exist_ok=True)
                for stale in os.listdir(out_dir):
                    os.remove(os.path.join(out_dir, stale))
                try:
                    run_cli(earshot, ["dump", "--model", model, "--audio", wav, "--out", out_dir], args.timeout)
                except Failure as e:
                    # Variable-length models may have an audio window shorter than 30 s (the 15-s parity model).
                    if len(audio) > 15 * SAMPLE_RATE and "longer than" in str(e):
                        print(f"NOTE: {model_name} / {name}: longer than the model's audio window; not compared")
                        continue
                    raise
                got = read_dumped_mel(out_dir)
                n_mels, n_frames = got.shape
                if n_frames == len(audio) // HOP:
                    pad = 0
                elif n_frames == WINDOW_SAMPLES // HOP and len(audio) < WINDOW_SAMPLES:
                    pad = WINDOW_SAMPLES
                else:
                    failures.append(f"{model_name}/{name}: {n_frames} frames fit neither {len(audio)} samples "
                                    f"unpadded nor a 30-s window")
                    continue
                print(f"{model_name} / {name}: {len(audio)} samples, pad_to_samples {pad}, mel {n_mels}x{n_frames}",
                      flush=True)
                if not np.all(np.isfinite(got)):
                    failures.append(f"{model_name}/{name}: non-finite features")
                independent = independent_log_mel(audio, n_mels, pad)
                compare("engine vs independent (torch.stft, float64)", got, independent, failures)
                if recipe is not None:
                    theirs = recipe(audio, n_mels=n_mels, pad_to_samples=pad)
                    compare("engine vs earshot_train.mel", got, np.asarray(theirs, np.float64), failures)
                    compare("earshot_train.mel vs independent", np.asarray(theirs), independent, failures,
                            informational=True)
    except Skip as e:
        print(f"SKIP: {e}")
        return 0
    except Failure as e:
        failures.append(str(e))

    for f in failures:
        print(f"FAIL: {f}")
    print("mel parity: " + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
