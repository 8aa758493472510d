"""Throughput and peak memory of preprocessing.preprocess on synthetic seasons of two sizes, and
what a whole archive costs as a SLURM array of one pair per task (preprocessing/launch.sh slurm --array).

    python benchmarks/preprocess.py [--points 100 300] [--days N] [--data DIR] [--target crocus]
        [--threads 1] [--archive-seasons 60] [--archive-points 8000] [--regions 1] [--cores 32] [--nodes 1 2 4 8]

Generates one season per size with preprocessing.synthetic (kept in --data, default a temporary
directory, so a second call with the same --data reuses them), runs the preprocessing CLI in a
fresh process per size with --threads threads (the labeller's numba threads; 1: an array task of
--cpus-per-task 1), and prints its samples per second, pairs per hour, and peak resident memory:
VmHWM (what getrusage reports, counting the pages of the memory-mapped shard it touched) and the
peak of its anonymous memory (heap: what the process itself holds). Bar: peak RSS <= 2 GB and not
growing with the number of points (at most x1.25 between the two sizes). --target crocus also
labels every sample with the labeller's energy budget (the absorbed profile and soil term Crocus'
PRO files lack), so it costs about as much as --target tartes.

The archive estimate: a pair of P points yields P x (samples per point-season) samples (samples
scale with points x daylight hours with snow; the rate per point-season is the one measured on the
largest synthetic season), and a process takes (fixed cost) + samples / (marginal rate) seconds
per pair, both fitted on the two sizes. An array of one pair per task on N nodes of C cores runs
N x C tasks at once (C x peak RSS must fit in a node's memory), so the archive takes
ceil(pairs / (N x C)) waves of one pair's time: more slots than pairs do not help.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from preprocessing.shards import find_shards, open_shard  # noqa: E402
from preprocessing.synthetic import generate  # noqa: E402

BAR_BYTES = 2 * 1024**3
GROWTH_TOLERANCE = 1.25  # largest peak-memory ratio between the two sizes that still counts as flat


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_preprocess(input_dir: Path, output_dir: Path, target: str, threads: int) -> dict:
    """Run the CLI in a child process: wall time, peak RSS (wait4) and peak anonymous RSS (polling /proc)."""
    command = [sys.executable, "-m", "preprocessing.preprocess", "--input", str(input_dir),
               "--output", str(output_dir), "--target", target, "--soil_albedo", "ALB_SOIL"]  # as main.py's run
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    peak_anon = 0

    def poll():
        nonlocal peak_anon
        while child.returncode is None:
            peak_anon = max(peak_anon, _status_kib(child.pid, "RssAnon"))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    poller.join()
    if child.returncode != 0:
        raise RuntimeError(f"preprocess failed ({child.returncode}):\n{out}")
    n_samples = sum(len(open_shard(p)) for p in find_shards(output_dir))
    return {"seconds": seconds, "samples": n_samples, "peak_rss": usage.ru_maxrss * 1024, "peak_anon": peak_anon * 1024}


def fit(rows: list[tuple[int, dict]]) -> tuple[float, float]:
    """(fixed seconds per pair, marginal samples per second) of t = fixed + samples / rate through the
    smallest and largest sizes; (0, samples/s of the largest) when the two do not give a positive slope."""
    (_, small), (_, large) = rows[0], rows[-1]
    extra_samples, extra_seconds = large["samples"] - small["samples"], large["seconds"] - small["seconds"]
    if extra_samples > 0 and extra_seconds > 0:
        rate = extra_samples / extra_seconds
        fixed = small["seconds"] - small["samples"] / rate
        if fixed >= 0:
            return fixed, rate
    return 0.0, large["samples"] / large["seconds"]


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--days", type=int, default=None, help="days per season (default: the whole year)")
    parser.add_argument("--data", type=Path, default=None, help="where generated seasons are kept (reused)")
    parser.add_argument("--target", choices=["crocus", "tartes"], default="crocus")
    parser.add_argument("--threads", type=int, default=1, help="threads of the preprocessing process (default 1)")
    archive = parser.add_argument_group("the archive estimate")
    archive.add_argument("--archive-seasons", type=int, default=60)
    archive.add_argument("--archive-points", type=int, default=8000, help="points of the archive, all regions")
    archive.add_argument("--regions", type=int, default=1, help="files (regions) the points are split into")
    archive.add_argument("--cores", type=int, default=32, help="cores per node")
    archive.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        rows = []
        for points in args.points:
            input_dir = data / (f"points{points}" + ("" if args.days is None else f"_days{args.days}"))
            started = time.perf_counter()
            generate(input_dir, seasons=1, points=points, days=args.days)
            print(f"{points} points: season generated in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append((points, run_preprocess(input_dir, Path(tmp) / f"out{points}", args.target, args.threads)))

    season = "whole-year seasons" if args.days is None else f"seasons of {args.days} days"
    print(f"\npreprocess --target {args.target}, one season per size ({season}), one process of "
          f"{args.threads} thread(s), on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f})")
    print(f"{'points':>7} {'samples':>10} {'seconds':>8} {'samples/s':>10} {'pairs/hour':>11} "
          f"{'samples/point':>14} {'peak RSS (MB)':>14} {'peak anon (MB)':>15}")
    for points, r in rows:
        print(f"{points:>7} {r['samples']:>10} {r['seconds']:>8.1f} {r['samples'] / r['seconds']:>10.0f} "
              f"{3600 / r['seconds']:>11.1f} {r['samples'] / points:>14.0f} {r['peak_rss'] / 1e6:>14.0f} "
              f"{r['peak_anon'] / 1e6:>15.0f}")
    worst = max(r["peak_rss"] for _, r in rows)
    print(f"bar: peak RSS <= 2 GB: {'PASS' if worst <= BAR_BYTES else 'FAIL'} (worst {worst / 1e6:.0f} MB)")
    (small_points, small), (large_points, large) = rows[0], rows[-1]
    for key, label in (("peak_rss", "peak RSS"), ("peak_anon", "peak anon")):
        growth = large[key] / small[key]
        verdict = "PASS" if growth <= GROWTH_TOLERANCE else "FAIL"
        print(f"bar: {label} does not grow with points: {verdict} (x{growth:.2f} from {small_points} to "
              f"{large_points} points, samples x{large['samples'] / max(small['samples'], 1):.2f})")

    fixed, rate = fit(rows)
    per_point = large["samples"] / large_points
    pairs = args.archive_seasons * args.regions
    points_per_pair = args.archive_points / args.regions
    pair_samples = per_point * points_per_pair
    pair_seconds = fixed + pair_samples / rate
    print(f"\narchive of {args.archive_seasons} seasons x {args.archive_points} points in {args.regions} region "
          f"file(s): {pairs} pairs of {points_per_pair:.0f} points, one pair per array task of "
          f"{args.threads} CPU(s)")
    print(f"assumed: samples per pair = points x {per_point:.0f} samples per point-season (measured on the "
          f"{large_points}-point synthetic season, {season}: they scale with points x daylight hours with snow); "
          f"a task takes {fixed:.1f} s + samples / {rate:.0f} samples/s (fitted on the two sizes)")
    print(f"per pair: {pair_samples / 1e6:.1f} M samples, {_duration(pair_seconds)}, peak RSS about "
          f"{worst / 1e6:.0f} MB (flat in points); whole archive: {pairs * pair_seconds / 3600:.0f} core-hours, "
          f"{pair_samples * pairs / 1e9:.2f} G samples")
    print(f"{'nodes':>6} {'cores':>6} {'tasks at once':>14} {'waves':>6} {'wall time':>10} {'memory/node (GB)':>17}")
    for nodes in args.nodes:
        slots = nodes * args.cores // args.threads
        at_once = min(slots, pairs)
        waves = math.ceil(pairs / slots)
        memory = math.ceil(at_once / nodes) * worst / 1e9  # the tasks of a node at once x peak RSS
        print(f"{nodes:>6} {args.cores:>6} {at_once:>14} {waves:>6} {_duration(waves * pair_seconds):>10} "
              f"{memory:>17.1f}")
    if max(args.nodes) * args.cores // args.threads > pairs:
        print(f"more than {pairs} slots do not help: one pair per task (split the points into more region files "
              f"for more tasks, or give each task threads with --cpus-per-task and --threads here)")

if __name__ == "__main__":
    main()
