#!/usr/bin/env bash
# Quantized kernel micro-benchmark, native and WebAssembly (Node), one thread each.
# Usage: bench/kernels/run.sh [--quick] [--seconds S]
#   Builds the engine library natively and with Emscripten (build/bench-kernels and build/bench-kernels-wasm,
#   or $EARSHOT_BENCH_NATIVE / $EARSHOT_BENCH_WASM), links bench/kernels/bench.cc against each and prints GOP/s
#   per kernel and shape.
set -euo pipefail
cd "$(dirname "$0")/../.."
export NODE_PATH=/usr/share/nodejs
jobs=${EARSHOT_JOBS:-2}
native=${EARSHOT_BENCH_NATIVE:-build/bench-kernels}
wasm=${EARSHOT_BENCH_WASM:-build/bench-kernels-wasm}

# An existing build folder is used as configured (it may be a developer's, with tests on).
[ -f "$native/CMakeCache.txt" ] || cmake -S . -B "$native" -DCMAKE_BUILD_TYPE=Release -DEARSHOT_TESTS=OFF >/dev/null
cmake --build "$native" -j"$jobs" --target earshot_engine >/dev/null
g++ -std=c++17 -O2 -msse4.1 -Isrc -I"$native/generated" -I"$native/third_party/include" \
  bench/kernels/bench.cc "$native/libearshot_engine.a" -lpthread -o "$native/bench_kernels"

[ -f "$wasm/CMakeCache.txt" ] || emcmake cmake -S . -B "$wasm" -DCMAKE_BUILD_TYPE=Release -DEARSHOT_TESTS=OFF >/dev/null
cmake --build "$wasm" -j"$jobs" --target earshot_engine >/dev/null
em++ -std=c++17 -O3 -msimd128 -Isrc -I"$wasm/generated" -I"$wasm/third_party/include" \
  bench/kernels/bench.cc "$wasm/libearshot_engine.a" -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=node \
  -o "$wasm/bench_kernels.js"

"$native/bench_kernels" "$@"
echo
node --no-experimental-fetch "$wasm/bench_kernels.js" "$@"
