#!/usr/bin/python3
"""Tests of the parity harness itself, so that a green parity run means something.

- the .earshot reader (tests/reference/earshot_file.py) reads a file flatc builds from the real schema;
- the safetensors writer round-trips F32/F16/BF16;
- the harness passes against tests/reference/mock_earshot.py, an independent implementation of import + dump
  (incremental decoding with a KV cache), and FAILS when the mock carries an injected bug (features off by 1e-3,
  decoder positions off by one, beam-row cache reordering lost);
- commands that print "not implemented yet" give SKIP and exit code 0.
Runs in about half a minute. --earshot is accepted (ctest passes it) but not used.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
from earshot_file import EarshotFile  # noqa: E402
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

MOCK = os.path.join(REPO_ROOT, "tests", "reference", "mock_earshot.py")
SCHEMA = os.path.join(REPO_ROOT, "src", "model", "earshot.fbs")
failures = []


def check(ok: bool, what: str):
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def test_safetensors(work: str):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    path = os.path.join(work, "t.safetensors")
    write_safetensors(path, {"a": a, "h": a, "b": a}, {"k": "v"}, dtypes={"h": "F16", "b": "BF16"})
    got, meta = read_safetensors(path)
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
    check(header_len % 8 == 0 and meta == {"k": "v"}, "safetensors: header padded to 8 bytes, metadata kept")
    check(np.array_equal(got["a"], a), "safetensors: F32 round trip")
    check(np.array_equal(got["h"], a.astype(np.float16).astype(np.float32)), "safetensors: F16 round trip")
    check(float(np.max(np.abs(got["b"] - a) / np.abs(a))) < 2 ** -8, "safetensors: BF16 rounding")


def test_reader(work: str):
    if shutil.which("flatc") is None:
        print("SKIP: flatc not found, .earshot reader not tested")
        return
    w = (np.arange(6, dtype="<f4").reshape(2, 3) - 2.5) / 3
    h = np.array([1.5, -2, 65504], dtype="<f2")
    model = {
        "schema_major": 1,
        "hparams": {"n_mels": 80, "n_vocab": 3, "n_text_ctx": 7, "variable_length_audio": True},
        "mel": {},
        "vocab": {"kind": "SentencePiece", "token_bytes": list(b"a\xffbcd"), "token_offsets": [0, 2, 3, 5],
                  "special_ids": [0]},
        "special": {"sot": 1, "eot": 2, "suppress_tokens": [0, 2], "default_prompt": [1]},
        "alignment_heads": [{"layer": 1, "head": 0}],
        "tensors": [{"name": "w", "shape": [2, 3], "dtype": "F32", "data": list(w.tobytes())},
                    {"name": "h", "shape": [3], "dtype": "F16", "data": list(h.tobytes())},
                    {"name": "q", "shape": [2, 3], "dtype": "I8", "data": [1, 2, 3, 4, 5, 6],
                     "scales": list(np.ones(2, "<f4").tobytes())}],
    }
    src = os.path.join(work, "m.json")
    with open(src, "w") as f:
        json.dump(model, f)
    subprocess.run(["flatc", "-b", "-o", work, SCHEMA, src], check=True)
    f = EarshotFile(os.path.join(work, "m.earshot"), SCHEMA)
    hp = f.root["hparams"].to_dict()
    special = f.root["special"].to_dict()
    tensors = f.tensors()
    check(hp["n_vocab"] == 3 and hp["n_text_ctx"] == 7 and hp["variable_length_audio"] is True and hp["n_audio_ctx"] == 0,
          "reader: hyper-parameters, defaults of absent fields")
    check(special["sot"] == 1 and special["no_timestamps"] == -1 and list(special["suppress_tokens"]) == [0, 2],
          "reader: special tokens with schema defaults (-1) and int vectors")
    check(f.vocabulary() == [b"a\xff", b"b", b"cd"] and f.root["vocab"]["kind"] == "SentencePiece",
          "reader: vocabulary bytes and enum names")
    check(np.array_equal(EarshotFile.tensor_array(tensors["w"]), w) and
          np.array_equal(EarshotFile.tensor_array(tensors["h"]), h.astype(np.float32)) and
          EarshotFile.tensor_array(tensors["q"]) is None and tensors["q"]["dtype"] == "I8",
          "reader: F32/F16 tensors decoded, quantized ones left alone")
    check([(a["layer"], a["head"]) for a in f.root["alignment_heads"]] == [(1, 0)], "reader: vectors of tables")


def run_harness(test: str, work: str, extra, fault: str = "", earshot: str = MOCK):
    env = dict(os.environ, EARSHOT_MOCK_FAULT=fault, OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.run([sys.executable, os.path.join(HERE, test), "--earshot", earshot, "--work-dir", work] +
                          extra, capture_output=True, text=True, env=env, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_harness(work: str):
    rc, out = run_harness("test_whisper_parity.py", os.path.join(work, "w"),
                          ["--only", "tiny", "--dtypes", "f32", "f16"])
    check(rc == 0 and "FAIL" not in out and "logits (22 steps)" in out and "beam5 sum_logprob" in out,
          "harness: Hugging Face tiny model against the mock engine passes (f32 and f16)")
    if rc != 0:
        print(out[-3000:])
    quick = ["--dtypes", "f32", "--max-clips", "1", "--beams", "5"]
    rc, out = run_harness("test_checkpoint_parity.py", os.path.join(work, "c"), quick)
    check(rc == 0 and "FAIL" not in out and "encoder output" in out,
          "harness: earshot checkpoint against the mock engine passes")
    if rc != 0:
        print(out[-3000:])
    for fault, symptom in (("mel", "log-mel max |diff|"), ("position", "logits (21 steps) max |diff|"),
                           ("no_reorder", "beam 5 token sequences differ")):
        rc, out = run_harness("test_checkpoint_parity.py", os.path.join(work, f"fault_{fault}"), quick, fault)
        check(rc == 1 and symptom in out, f"harness: injected fault '{fault}' fails the test ({symptom})")
        if rc != 1 or symptom not in out:
            print(out[-3000:])


def test_skip(work: str):
    stub = os.path.join(work, "earshot_stub")
    with open(stub, "w") as f:
        f.write('#!/bin/sh\necho "earshot $1: not implemented yet" >&2\nexit 1\n')
    os.chmod(stub, 0o755)
    rc, out = run_harness("test_checkpoint_parity.py", os.path.join(work, "stub"), [], earshot=stub)
    check(rc == 0 and "SKIP: earshot import not implemented yet" in out, "harness: missing commands give SKIP, exit 0")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--earshot", help="ignored")
    p.add_argument("--work-dir", required=True)
    args = p.parse_args()
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    test_safetensors(args.work_dir)
    test_reader(args.work_dir)
    test_skip(args.work_dir)
    test_harness(args.work_dir)
    print(f"\nparity harness self-test: {'FAILED: ' + '; '.join(failures) if failures else 'passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
