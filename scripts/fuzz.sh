#!/usr/bin/env bash
# Runs every libFuzzer target built in build/fuzz for a while and reports executions.
# Usage: scripts/fuzz.sh [--seconds N | --runs N]   (default: 30 seconds per target)
# Long runs (>= 1M executions each) belong in bench: scripts/fuzz.sh --runs 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
limit="-max_total_time=30"
case "${1:-}" in
  --seconds) limit="-max_total_time=$2" ;;
  --runs) limit="-runs=$2" ;;
  "") ;;
  *) echo "usage: $0 [--seconds N | --runs N]" >&2; exit 2 ;;
esac
status=0
for bin in build/fuzz/*_fuzz; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus_seed="tests/fuzz/corpus_${name%_fuzz}"
  work=$(mktemp -d)
  [ -d "$corpus_seed" ] && cp -r "$corpus_seed"/. "$work"/
  log=$(mktemp)
  if "$bin" "$limit" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$work" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "$name: $execs executions, no finding"
  else
    echo "$name: FINDING"; tail -40 "$log"; status=1
  fi
  rm -rf "$work" "$log"
done
exit $status
