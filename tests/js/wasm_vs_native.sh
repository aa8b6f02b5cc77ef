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
# Quantized models too: the kernels are bit-identical across builds and so is the front end (its log10 runs in
# double, where glibc and Emscripten's musl round to the same float), so per-row quantization has nothing to
# amplify: the same tokens and log-probs as with F16.
for dtype in int8 int4; do
  "$native/earshot" import checkpoint "$work/checkpoint" -o "$work/model_$dtype.earshot" --dtype "$dtype" >/dev/null
  "$native/earshot" transcribe --model "$work/model_$dtype.earshot" --beam 5 --json "$work/sample.wav" \
    >"$work/native_${dtype}_5.json"
  node --no-experimental-fetch "$here/wasm_vs_native.mjs" "$wasm" "$work/model_$dtype.earshot" "$work/sample.wav" \
    "$work/native_${dtype}_5.json" 5
done
