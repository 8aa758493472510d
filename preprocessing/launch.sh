#!/usr/bin/env bash
# Run preprocessing.preprocess detached (GNU screen), as one SLURM job, or as a SLURM job array of
# one PRO/FORCING pair per task over many nodes, with logs to follow.
#
#   preprocessing/launch.sh screen --input DIR --output OUT [--target tartes] [--workers N]
#   preprocessing/launch.sh slurm  --input DIR --output OUT [--target tartes] [--workers N]
#                                  [--mem 16G] [--time 24:00:00] [--cpus-per-task N]
#   preprocessing/launch.sh slurm --array --input DIR --output OUT [--target tartes] [--max-parallel K]
#                                  [--mem 4G] [--time 24:00:00] [--cpus-per-task 1]
#
# Other arguments go to `python -m preprocessing.preprocess` (--target, --time-chunk, --point-chunk,
# --soil_albedo, --surface_step, --lslope).
# Every mode resumes: launching the same command again skips the seasons already written.
#
# --array writes the pair list OUT/.pairs.txt once (a later submission keeps its order and appends
# new pairs, so task i is always the same pair), then submits `sbatch --array=<tasks>%K` of the
# pairs without a shard a task would keep (complete, made from the same files and settings): all of
# them (0-(N-1)) the first time, only what is left after.
# Task i runs `python -m preprocessing.preprocess --input DIR --output OUT --pair-list OUT/.pairs.txt
# --task i`, logs to LOG_DIR/preprocess_<job>_<task>.log and records its result in
# OUT/.status/<region>__<season>.json. What is done, failed (with the error) or left:
#   python -m preprocessing.preprocess --summary OUT
# A task holds one pair in memory by blocks (peak RSS under 2 GB whatever the file size: the
# default --mem 4G leaves room); --cpus-per-task sets the labeller's threads. SLURM caps task
# indices (MaxArraySize, often 1001): more pairs than that need a cluster with a larger cap.
#
# Environment: PYTHON (default python), LOG_DIR (default ./logs, created when a log or job script
# is written there), DRY_RUN=1 to print what would run (and write nothing); other sbatch settings
# through sbatch's own variables
# (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_QOS, ...).
set -euo pipefail

usage() {
    echo "usage: $0 screen|slurm [--array] --input DIR --output OUT [--target crocus|tartes] [--workers N]" \
         "[--max-parallel K] [--mem M] [--time T] [--cpus-per-task C]" >&2
    exit 2
}

error() {  # a usage error, in one line
    echo "$0: error: $*" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
mode=$1
shift
[[ $mode == screen || $mode == slurm ]] || usage

array=0 workers=1 max_parallel="" mem="" time_limit="" cpus="" input="" output=""
args=()  # what goes to preprocessing.preprocess
while [[ $# -gt 0 ]]; do
    case $1 in
        --array) array=1; shift; continue ;;
        --max-parallel | --mem | --time | --cpus-per-task | --workers | --input | --output)
            [[ $# -ge 2 ]] || error "$1: expects a value" ;;
    esac
    case $1 in
        --max-parallel) max_parallel=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --time) time_limit=$2; shift 2 ;;
        --cpus-per-task) cpus=$2; shift 2 ;;
        --workers) workers=$2; args+=("$1" "$2"); shift 2 ;;
        --input) input=$2; args+=("$1" "$2"); shift 2 ;;
        --output) output=$2; args+=("$1" "$2"); shift 2 ;;
        --input=*) input=${1#*=}; args+=("$1"); shift ;;
        --output=*) output=${1#*=}; args+=("$1"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done
[[ -n $input && -n $output ]] || usage
positive='^[1-9][0-9]*$'
if [[ $mode == screen ]]; then
    [[ $array == 0 ]] || error "--array: only with slurm"
    [[ -z $max_parallel$mem$time_limit$cpus ]] || error "--max-parallel, --mem, --time, --cpus-per-task: only with slurm"
fi
if [[ $array == 1 ]]; then
    [[ $workers == 1 ]] || error "--workers: one pair per array task (give a task threads with --cpus-per-task)"
else
    [[ -z $max_parallel ]] || error "--max-parallel: only with --array"
fi
[[ -z $max_parallel || $max_parallel =~ $positive ]] || error "--max-parallel: a positive integer, got '$max_parallel'"
[[ -z $cpus || $cpus =~ $positive ]] || error "--cpus-per-task: a positive integer, got '$cpus'"
[[ -z $mem || $mem =~ ^[1-9][0-9]*[KMGT]?$ ]] || error "--mem: a size such as 4G or 4000M, got '$mem'"
[[ -z $time_limit || $time_limit =~ ^[0-9]+(-[0-9]+)?(:[0-9]+){0,2}$ ]] ||
    error "--time: a SLURM time such as 24:00:00 or 2-00:00:00, got '$time_limit'"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python}
log_dir=${LOG_DIR:-$PWD/logs}
[[ $log_dir == /* ]] || log_dir=$PWD/$log_dir  # absolute, without creating it: a dry run or an error leaves nothing
created_log_dir=0
make_log_dir() {  # just before something is written there
    [[ -d $log_dir ]] || { mkdir -p "$log_dir"; created_log_dir=1; }
}
stamp=$(date +%Y%m%d-%H%M%S)
# Runs from the current directory (relative --input/--output keep their meaning), the repo on the path.
here="cd $(printf %q "$PWD") && PYTHONPATH=$(printf %q "$repo")\${PYTHONPATH:+:\$PYTHONPATH}"

submit() {  # $1: the job script; prints it with DRY_RUN=1
    if [[ ${DRY_RUN:-0} == 1 ]]; then
        echo "$1"
    else
        command -v sbatch > /dev/null || { echo "$0: sbatch not found (no SLURM here: use screen)" >&2; exit 1; }
        make_log_dir
        local file="$log_dir/preprocess-$stamp.sbatch"
        echo "$1" > "$file"
        sbatch "$file"
        echo "job script: $file"
    fi
}

if [[ $array == 1 ]]; then
    pair_list="$output/.pairs.txt"
    plan_args=(--array-plan --pair-list "$pair_list")
    [[ ${DRY_RUN:-0} != 1 ]] || plan_args+=(--dry-run)
    # Checks the arguments (a bad one: one line, exit 2), writes the pair list, says what is left.
    plan=$(PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" "$python" -m preprocessing.preprocess "${args[@]}" \
           "${plan_args[@]}")
    read -r n_pairs n_todo tasks <<< "$plan"
    if [[ $n_todo == 0 ]]; then
        echo "all $n_pairs pairs of $pair_list have a complete shard of these files and settings: nothing to submit"
        echo "summary: $python -m preprocessing.preprocess --summary $(printf %q "$output")"
        exit 0
    fi
    log="$log_dir/preprocess_%A_%a.log"
    task="$here $python -m preprocessing.preprocess $(printf '%q ' "${args[@]}")--pair-list \
$(printf %q "$pair_list") --task \"\$SLURM_ARRAY_TASK_ID\""
    script="#!/bin/bash
#SBATCH --job-name=tartes-preprocess
#SBATCH --array=$tasks${max_parallel:+%$max_parallel}
#SBATCH --output=$log
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=${cpus:-1}
#SBATCH --mem=${mem:-4G}
#SBATCH --time=${time_limit:-24:00:00}
# $n_todo of the $n_pairs pairs of $pair_list (task i: line i + 1); results in $output/.status/
set -euo pipefail
export NUMBA_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-1} OMP_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-1}
export PREPROCESS_LOG=$(printf %q "$log_dir")/preprocess_\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}.log
$task"
    submit "$script"
    [[ ${DRY_RUN:-0} != 1 ]] || echo "dry run: $pair_list not written; $n_todo of $n_pairs pairs to do"
    echo "logs: $log_dir/preprocess_<job>_<task>.log"
    echo "summary: $python -m preprocessing.preprocess --summary $(printf %q "$output")"
    exit 0
fi

log="$log_dir/preprocess-$stamp.log"
run="$here $python -m preprocessing.preprocess $(printf '%q ' "${args[@]}")"
run=${run% }
if [[ $mode == screen ]]; then
    launch=(screen -dmS "preprocess-$stamp" bash -c "$run > $(printf %q "$log") 2>&1")
    if [[ ${DRY_RUN:-0} == 1 ]]; then
        printf '%q ' "${launch[@]}"
        echo
    else
        command -v screen > /dev/null || { echo "$0: screen is not installed (use slurm, or install screen)" >&2; exit 1; }
        make_log_dir
        if ! "${launch[@]}"; then
            [[ $created_log_dir == 0 ]] || rmdir "$log_dir" 2> /dev/null || true
            echo "$0: screen could not start the session (nothing runs)" >&2
            exit 1
        fi
        echo "started in screen session preprocess-$stamp (screen -r preprocess-$stamp to attach)"
    fi
else
    submit "#!/bin/bash
#SBATCH --job-name=tartes-preprocess
#SBATCH --output=$log
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=${cpus:-$workers}
#SBATCH --mem=${mem:-16G}
#SBATCH --time=${time_limit:-24:00:00}
set -euo pipefail
$run"
fi
echo "log: $log  (follow it with: tail -f $log)"
