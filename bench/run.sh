#!/usr/bin/env bash
# The project's benchmark, in one run: kernel micro-benchmarks, the onnxruntime-web baseline, earshot end to end in
# Node and headless Chromium at 1 and 2 threads, then one summary with earshot/ORT ratios and the targets.
#
# Usage: bench/run.sh [--quick] [--shapes tiny.en,base.en] [--runtimes node,chromium] [--threads 1,2]
#                     [--skip kernels,ort,e2e] [--out DIR] [--default-model M.earshot]
#   --quick      tiny.en only (unless --shapes), 1 run per measure, short kernel and ORT runs, no f16 models
#   --shapes     Whisper shapes to run (random weights, exact tiny.en / base.en shapes); default both
#   --skip       parts to leave out (with ort skipped, the ratios use the last build/ort/results.jsonl)
#   --default-model  the model timed as the default (default: the first models/earshot-en-*.earshot), e.g. a
#                candidate exported from a training run before it ships
#   --out        results folder (default build/bench-results/DATE-TIME): kernels.txt, ort.jsonl, e2e-*.jsonl,
#                the logs, env.txt (machine, load) and summary.txt (the table printed at the end)
# Builds (cached, configured on first use): build/e2e-native (CLI, for importing models), build/e2e-wasm (plain
# WebAssembly), build/e2e-wasm-mt (pthreads, EARSHOT_WASM_THREADS=ON; 2-thread results are reported unavailable
# when it does not build). Models and clips: bench/e2e/prepare.py -> build/bench-models. The machine's load
# changes the numbers: env.txt records `uptime` before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs   # emcc's JS optimizer needs acorn from here
jobs=${EARSHOT_JOBS:-2}

quick=0
shapes=
runtimes=node,chromium
threads=1,2
skip=
out=
default_model=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --shapes) shapes=$2; shift ;;
    --runtimes) runtimes=$2; shift ;;
    --threads) threads=$2; shift ;;
    --skip) skip=$2; shift ;;
    --out) out=$2; shift ;;
    --default-model) default_model=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$shapes" ] || { [ $quick = 1 ] && shapes=tiny.en || shapes=tiny.en,base.en; }
out=${out:-build/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
skipped() { [[ ",$skip," == *",$1,"* ]]; }
quick_flag=()
[ $quick = 1 ] && quick_flag=(--quick)
say() { echo "== $*" >&2; }

{
  echo "date: $(date -Is)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (plus uncommitted changes: $(git status --porcelain 2>/dev/null | wc -l) files)"
  echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "node: $(node --version), chromium: $(/usr/bin/chromium --version 2>/dev/null || echo missing)"
  echo "options: quick=$quick shapes=$shapes runtimes=$runtimes threads=$threads skip=$skip"
  echo "uptime before: $(uptime)"
} >"$out/env.txt"

# --- builds ----------------------------------------------------------------------------------------------------------
native=build/e2e-native
wasm=build/e2e-wasm
wasm_mt=build/e2e-wasm-mt
if ! skipped e2e; then
  say "building ($native, $wasm, $wasm_mt)"
  [ -f "$native/CMakeCache.txt" ] || cmake -S . -B "$native" -DCMAKE_BUILD_TYPE=Release -DEARSHOT_TESTS=OFF >/dev/null
  cmake --build "$native" -j"$jobs" --target earshot >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
  [ -f "$wasm/CMakeCache.txt" ] || emcmake cmake -S . -B "$wasm" -DCMAKE_BUILD_TYPE=Release -DEARSHOT_TESTS=OFF >/dev/null
  cmake --build "$wasm" -j"$jobs" --target earshot_wasm >>"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
  # The pthreads build is optional: without it the 2-thread rows say why they are missing.
  mt_ok=1
  if [ ! -f "$wasm_mt/CMakeCache.txt" ]; then
    emcmake cmake -S . -B "$wasm_mt" -DCMAKE_BUILD_TYPE=Release -DEARSHOT_TESTS=OFF -DEARSHOT_WASM_THREADS=ON \
      >>"$out/build.log" 2>&1 || mt_ok=0
  fi
  [ $mt_ok = 1 ] && { cmake --build "$wasm_mt" -j"$jobs" --target earshot_wasm >>"$out/build-mt.log" 2>&1 || mt_ok=0; }
  if [ $mt_ok = 0 ]; then
    say "the pthreads WebAssembly build failed (see $out/build-mt.log): 2-thread results will be unavailable"
    wasm_mt=build/e2e-wasm-mt-failed   # never run a stale module
  fi
fi

# --- kernels ---------------------------------------------------------------------------------------------------------
if ! skipped kernels; then
  say "kernels (bench/kernels/run.sh)"
  bench/kernels/run.sh "${quick_flag[@]}" | tee "$out/kernels.txt"
fi

# --- onnxruntime-web baseline (its export also writes the checkpoint earshot imports, so it runs first) -------------
if ! skipped ort; then
  if [ -x bench/ort/run.sh ]; then
    say "onnxruntime-web (bench/ort/run.sh)"
    # It prints its own table and leaves the raw JSON lines in build/ort/results.jsonl.
    bench/ort/run.sh "${quick_flag[@]}" --shapes "$shapes" --runtimes "$runtimes" --threads "$threads" \
      2>&1 | tee "$out/ort.log" || say "bench/ort/run.sh failed in part (see $out/ort.log)"
    cp build/ort/results.jsonl "$out/ort.jsonl" 2>/dev/null || say "no ORT results: ratios will be missing"
  else
    say "no bench/ort/run.sh: ORT ratios will be missing"
  fi
elif [ -s build/ort/results.jsonl ]; then
  # Ratios against the last ORT run, taken at another time and load: say so.
  say "ORT skipped: ratios use build/ort/results.jsonl from $(date -r build/ort/results.jsonl '+%F %T')"
  cp build/ort/results.jsonl "$out/ort-earlier.jsonl"
  echo "ORT results: reused from build/ort/results.jsonl of $(date -r build/ort/results.jsonl '+%F %T')" >>"$out/env.txt"
fi

# --- earshot end to end ----------------------------------------------------------------------------------------------
if ! skipped e2e; then
  dtypes=int8
  [ $quick = 1 ] || dtypes=int8,f16
  say "models and clips (bench/e2e/prepare.py)"
  /usr/bin/python3 bench/e2e/prepare.py --earshot "$native/earshot" --shapes "$shapes" --dtypes "$dtypes" \
    ${default_model:+--default-model "$default_model"}
  for runtime in ${runtimes//,/ }; do
    say "earshot end to end in $runtime, threads $threads"
    node bench/e2e/earshot_bench.mjs --runtime "$runtime" --threads "$threads" --wasm "$wasm" --wasm-mt "$wasm_mt" \
      "${quick_flag[@]}" >"$out/e2e-$runtime.jsonl" 2> >(tee "$out/e2e-$runtime.log" >&2) ||
      say "earshot in $runtime: some jobs failed (see $out/e2e-$runtime.log)"
  done
  if [ $quick = 0 ] && [[ ",$runtimes," == *",node,"* ]]; then
    f16_models=$(for s in ${shapes//,/ }; do printf '%s-f16,' "$s"; done)
    say "f16 models for reference (Node, 1 thread)"
    node bench/e2e/earshot_bench.mjs --runtime node --threads 1 --wasm "$wasm" --models "${f16_models%,}" \
      >"$out/e2e-node-f16.jsonl" 2> >(tee "$out/e2e-node-f16.log" >&2) || say "f16 jobs failed"
  fi
fi

echo "uptime after: $(uptime)" >>"$out/env.txt"
echo
cat "$out/env.txt"
echo
shopt -s nullglob
results=("$out"/*.jsonl)
if [ ${#results[@]} -gt 0 ]; then
  node bench/e2e/report.mjs "${results[@]}" | tee "$out/summary.txt"
fi
echo
echo "results: $out"
