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
