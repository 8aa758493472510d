#!/usr/bin/env bash
# Run preprocessing.preprocess detached (GNU screen) or as a SLURM job, with a log to follow.
#
#   preprocessing/launch.sh screen --input DIR --output OUT [--target tartes] [--workers N]
#   preprocessing/launch.sh slurm  --input DIR --output OUT [--target tartes] [--workers N]
#
# Every argument after the mode goes to `python -m preprocessing.preprocess`. The run is
# resumable: launching it again skips the seasons already written.
# Environment: PYTHON (default python), LOG_DIR (default ./logs), DRY_RUN=1 to print what would
# run; for slurm, the job asks for one CPU per worker, 16 GB and 24 h: override with sbatch's own
# variables (SBATCH_TIMELIMIT, SBATCH_PARTITION, SBATCH_ACCOUNT, ...) or edit the header below.
set -euo pipefail

usage() {
    echo "usage: $0 screen|slurm --input DIR --output OUT [--target crocus|tartes] [--workers N]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
mode=$1
shift
[[ $mode == screen || $mode == slurm ]] || usage
[[ " $* " == *" --input "* && " $* " == *" --output "* ]] || usage

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
workers=1
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do
    [[ ${args[i]} == --workers ]] && workers=${args[i + 1]}
done

log_dir=${LOG_DIR:-$PWD/logs}
mkdir -p "$log_dir"
log_dir=$(cd "$log_dir" && pwd)
stamp=$(date +%Y%m%d-%H%M%S)
log="$log_dir/preprocess-$stamp.log"
# Runs from the current directory (relative --input/--output keep their meaning), the repo on the path.
run="cd $(printf %q "$PWD") && PYTHONPATH=$(printf %q "$repo")\${PYTHONPATH:+:\$PYTHONPATH} \
${PYTHON:-python} -m preprocessing.preprocess $(printf '%q ' "$@")"
run=${run% }

if [[ $mode == screen ]]; then
    launch=(screen -dmS "preprocess-$stamp" bash -c "$run > $(printf %q "$log") 2>&1")
    if [[ ${DRY_RUN:-0} == 1 ]]; then
        printf '%q ' "${launch[@]}"
        echo
    else
        command -v screen > /dev/null || { echo "$0: screen is not installed (use slurm, or install screen)" >&2; exit 1; }
        "${launch[@]}"
        echo "started in screen session preprocess-$stamp (screen -r preprocess-$stamp to attach)"
    fi
else
    script="#!/bin/bash
#SBATCH --job-name=tartes-preprocess
#SBATCH --output=$log
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=$workers
#SBATCH --mem=16G
#SBATCH --time=24:00:00
set -euo pipefail
$run"
    if [[ ${DRY_RUN:-0} == 1 ]]; then
        echo "$script"
    else
        command -v sbatch > /dev/null || { echo "$0: sbatch not found (no SLURM here: use screen)" >&2; exit 1; }
        echo "$script" | sbatch
    fi
fi
echo "log: $log  (follow it with: tail -f $log)"
