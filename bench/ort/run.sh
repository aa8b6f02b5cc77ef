#!/usr/bin/env bash
# onnxruntime-web baseline of the benchmark: Whisper tiny.en / base.en shapes with seeded random weights, exported
# to ONNX (fp32 and int8) and timed in onnxruntime-web's WASM backend in Node and in headless Chromium.
#
#   bench/ort/run.sh [--shapes tiny.en,base.en] [--threads 1,2] [--runtimes node,chromium] [--seed 1] [--quick]
#                    [--check]
#
# --quick: 1 timed encoder run instead of 3, 16 decoder steps instead of 64. --check: before timing, compare the
# ONNX files with PyTorch in onnxruntime-web, and the earshot import of the same weights with PyTorch (needs
# build/native/earshot, or EARSHOT_CLI). Exports are cached in build/ort/<shape>-seed<seed>/ (see
# bench/ort/export_onnx.py). Writes build/ort/results.jsonl (raw lines) and build/ort/results.json (see
# bench/ort/report.mjs), prints a table. Everything runs under `nice -n 19`: the machine is shared. Two runs at
# once would time each other's load (and share the cache folder), so a second run waits for the first (flock).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/build/ort"
SHAPES="tiny.en,base.en"
THREADS="1,2"
RUNTIMES="node,chromium"
SEED=1
QUICK=()
CHECK=0

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shapes) SHAPES="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --runtimes) RUNTIMES="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

NICE=(nice -n 19)
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"
cd "$ROOT"
exec 9>"$OUT/.run.lock"
if ! flock -n 9; then
  echo "run.sh: another bench/ort/run.sh is running; waiting for it to finish" >&2
  flock 9
fi
RAW="$OUT/results.jsonl"
RAW_TMP="$(mktemp "$OUT/results.XXXXXX.jsonl.tmp")"
trap 'rm -f "$RAW_TMP"' EXIT
LOAD_BEFORE="$(uptime | sed 's/.*load average: //')"
echo "load average: $LOAD_BEFORE" >&2

failed=0
IFS=, read -r -a shape_list <<< "$SHAPES"
IFS=, read -r -a thread_list <<< "$THREADS"
IFS=, read -r -a runtime_list <<< "$RUNTIMES"

for shape in "${shape_list[@]}"; do
  args=(--shape "$shape" --seed "$SEED" --out "$OUT")
  if [[ $CHECK == 1 ]]; then
    args+=(--check)
    cli="${EARSHOT_CLI:-$ROOT/build/native/earshot}"
    if [[ -x "$cli" ]]; then args+=(--earshot "$cli"); else echo "run.sh: no earshot CLI at $cli: import not checked" >&2; fi
  fi
  if ! "${NICE[@]}" /usr/bin/python3 bench/ort/export_onnx.py "${args[@]}"; then
    echo "run.sh: export/check of $shape failed" >&2
    failed=1
    [[ -f "$OUT/$shape-seed$SEED/manifest.json" ]] || continue
  fi
  for runtime in "${runtime_list[@]}"; do
    for threads in "${thread_list[@]}"; do
      echo "== $shape, $runtime, $threads thread(s)" >&2
      if ! "${NICE[@]}" node bench/ort/ort_bench.mjs --model-dir "$OUT/$shape-seed$SEED" --runtime "$runtime" \
          --threads "$threads" "${QUICK[@]}" >> "$RAW_TMP"; then
        echo "run.sh: $shape $runtime $threads thread(s) failed" >&2
        failed=1
      fi
    done
  done
done

LOAD_AFTER="$(uptime | sed 's/.*load average: //')"
mv "$RAW_TMP" "$RAW"
META="$OUT/results.meta.json"
CPU="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
/usr/bin/python3 - "$META" "$LOAD_BEFORE" "$LOAD_AFTER" "$CPU" "$(nproc)" "${QUICK[*]:-}" "$SEED" <<'EOF'
import json, sys
path, before, after, cpu, nproc, quick, seed = sys.argv[1:]
json.dump({"load_before": before, "load_after": after, "cpu": cpu, "nproc": int(nproc), "quick": quick == "--quick",
           "seed": int(seed), "niceness": 19}, open(path, "w"), indent=1)
EOF
node bench/ort/report.mjs "$RAW" "$OUT/results.json" --meta "$META"
exit $failed
