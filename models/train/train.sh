#!/usr/bin/env bash
# Starts earshot's default English training run, or resumes it from its last checkpoint: the same command both
# times. Runs in the background (nice 5, or $EARSHOT_NICE; worker processes inherit it); the log is
# $DATA/runs/<run>/train.log.
#   models/train/train.sh                      # run "en-8m" under ${EARSHOT_DATA:-~/.cache/earshot/train}
#   models/train/train.sh --run other --lr 5e-4 --workers 2 --threads 1
#   FOREGROUND=1 models/train/train.sh --max-steps 10
# Extra arguments go to `python3 -m earshot_train.train` (see --help); on resume, explicit training options
# override the saved ones, the model shape excepted.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${EARSHOT_DATA:-$HOME/.cache/earshot/train}"
run="en-8m"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --run) run="${args[$((i + 1))]}" ;;
    --run=*) run="${args[$i]#--run=}" ;;
    --data) data="${args[$((i + 1))]}" ;;
    --data=*) data="${args[$i]#--data=}" ;;
  esac
done
export OMP_WAIT_POLICY=PASSIVE
export EARSHOT_DATA="$data"
cd "$here"
cmd=(nice -n "${EARSHOT_NICE:-5}" /usr/bin/python3 -m earshot_train.train --resume --run "$run" "$@")
if [[ -n "${FOREGROUND:-}" ]]; then
  exec "${cmd[@]}"
fi
mkdir -p "$data/runs/$run"
nohup "${cmd[@]}" >>"$data/runs/$run/console.log" 2>&1 &
echo "training pid $! (run $run); log $data/runs/$run/train.log; stop with: kill $!"
