#!/usr/bin/env bash
# Checks the WebAssembly build against the native one on the same model and audio (beam 5 and greedy).
# Usage: tests/js/wasm_vs_native.sh NATIVE_BUILD_DIR WASM_BUILD_DIR
set -euo pipefail
native=$1
wasm=$2
here=$(cd "$(dirname "$0")" && pwd)
work="$wasm/wasm_vs_native"
rm -rf "$work" && mkdir -p "$work"
/usr/bin/python3 "$here/../reference/make_test_model.py" "$work" >/dev/null
"$native/earshot" import checkpoint "$work/checkpoint" -o "$work/model.earshot" --dtype f16 >/dev/null
for beam in 5 1; do
  "$native/earshot" transcribe --model "$work/model.earshot" --beam "$beam" --json "$work/sample.wav" >"$work/native_$beam.json"
  node --no-experimental-fetch "$here/wasm_vs_native.mjs" "$wasm" "$work/model.earshot" "$work/sample.wav" \
    "$work/native_$beam.json" "$beam"
done
# Quantized models: the kernels are bit-identical across builds (kernels_qgemm_test checks fixed outputs in
# both), but the float front end is not (libm sin/cos/log differ by ulps between glibc and Emscripten's musl),
# and per-row activation quantization turns ulp differences into occasional one-step rounding changes. So
# tokens must be equal and log-probs within 0.1 (int8 vs f16 differ by 0.7 on this model), not 1e-4.
for dtype in int8 int4; do
  "$native/earshot" import checkpoint "$work/checkpoint" -o "$work/model_$dtype.earshot" --dtype "$dtype" >/dev/null
  "$native/earshot" transcribe --model "$work/model_$dtype.earshot" --beam 5 --json "$work/sample.wav" \
    >"$work/native_${dtype}_5.json"
  node --no-experimental-fetch "$here/wasm_vs_native.mjs" "$wasm" "$work/model_$dtype.earshot" "$work/sample.wav" \
    "$work/native_${dtype}_5.json" 5 0.1
done
