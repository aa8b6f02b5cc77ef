#!/usr/bin/env bash
# Installs earshot's build and test dependencies on Debian 12 (apt only) and builds the native CLI.
# Safe to rerun: installed packages and an up-to-date build are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  cmake g++ make git libgtest-dev googletest flatbuffers-compiler libflatbuffers-dev nlohmann-json3-dev
  # WebAssembly build and its tests under Node; fuzzers
  emscripten nodejs clang libclang-rt-14-dev
  # PyTorch reference, training recipe and its data tools
  python3 python3-torch python3-torchaudio python3-numpy python3-soundfile python3-sentencepiece libopenblas0-openmp
  espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox libsox-fmt-all
)

bash scripts/apt-ensure.sh "${PACKAGES[@]}"

cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/native -j"$(nproc)" --target earshot
echo "setup: build/native/earshot is ready"
