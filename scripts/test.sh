#!/usr/bin/env bash
# The whole test suite: native GoogleTest + PyTorch parity (ctest), the same unit tests compiled to WebAssembly
# (plain and with pthreads) and run under Node, short libFuzzer runs, and the training recipe's Python tests.
# Usage: scripts/test.sh            (expects scripts/setup.sh to have run)
set -uo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs
export OMP_WAIT_POLICY=PASSIVE
JOBS=$(nproc)
passed=0
failed=0
failures=()

stage() {  # stage NAME COMMAND...: runs one stage and records its outcome
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

native() {
  cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build build/native -j"$JOBS" &&
    ctest --test-dir build/native --output-on-failure
}

wasm() {
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build build/wasm -j"$JOBS" &&
    ctest --test-dir build/wasm --output-on-failure &&
    tests/js/wasm_vs_native.sh build/native build/wasm
}

wasm_mt() {  # the pthreads module and the unit tests with pthreads: the multi-thread tests run here too
  emcmake cmake -S . -B build/wasm-mt -DCMAKE_BUILD_TYPE=Release -DEARSHOT_WASM_THREADS=ON >/dev/null &&
    cmake --build build/wasm-mt -j"$JOBS" &&
    ctest --test-dir build/wasm-mt --output-on-failure
}

fuzz() {
  CC=clang CXX=clang++ cmake -S . -B build/fuzz -DEARSHOT_FUZZ=ON -DEARSHOT_TESTS=OFF >/dev/null &&
    cmake --build build/fuzz -j"$JOBS" &&
    scripts/fuzz.sh --seconds "${EARSHOT_FUZZ_SECONDS:-30}"
}

recipe() {
  EARSHOT_CLI=build/native/earshot /usr/bin/python3 -m unittest discover models/train/tests 2>&1
}

total_start=$SECONDS
stage native native
stage wasm wasm
stage wasm-mt wasm_mt
stage fuzz fuzz
stage recipe recipe
echo "test suite: $((SECONDS - total_start)) s"
if ((failed)); then echo "failed stages: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
((failed == 0))
