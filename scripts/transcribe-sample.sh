#!/usr/bin/env bash
# The main job: transcribes a WAV (default: a sample spoken by espeak-ng) with the shipped default model.
# Usage: scripts/transcribe-sample.sh [AUDIO.wav] [earshot transcribe options...]
# Without a model in models/ (a checkout that dropped it), a small random-weight test model is used (its text is noise).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/native/earshot
[ -x "$cli" ] || { echo "build/native/earshot is missing: run scripts/setup.sh first" >&2; exit 1; }
mkdir -p build/sample

audio=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$audio" ]; then
  audio=build/sample/sample.wav
  espeak-ng -v en-us -s 150 -w "$audio" "Please remind me to call the office at nine thirty tomorrow morning."
fi

model=$(ls models/earshot-en-*.earshot 2>/dev/null | sort | tail -n 1 || true)
if [ -z "$model" ]; then
  echo "no default model in models/: using a random-weight test model" >&2
  model=build/sample/test-model.earshot
  /usr/bin/python3 tests/reference/make_test_model.py build/sample/test >/dev/null
  "$cli" import checkpoint build/sample/test/checkpoint -o "$model" >/dev/null
fi
echo "model: $model" >&2
"$cli" transcribe --model "$model" "$@" "$audio"
