"""Throughput and peak memory of preprocessing.preprocess on synthetic seasons of two sizes.

    python benchmarks/preprocess.py [--points 100 300] [--days N] [--data DIR] [--target crocus]

Generates one season per size with preprocessing.synthetic (kept in --data, default a temporary
directory, so a second call with the same --data reuses them), runs the preprocessing CLI in a
fresh process per size, and prints samples per second and its peak resident memory: VmHWM
(what getrusage reports, counting the pages of the memory-mapped shard it touched) and the peak
of its anonymous memory (heap: what the process itself holds). Bar: peak RSS <= 2 GB and not
growing with the number of points (at most x1.25 between the two sizes).
"""
from __future__ import annotations

import argparse
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


def run_preprocess(input_dir: Path, output_dir: Path, target: str) -> dict:
    """Run the CLI in a child process: wall time, peak RSS (wait4) and peak anonymous RSS (polling /proc)."""
    command = [sys.executable, "-m", "preprocessing.preprocess", "--input", str(input_dir),
               "--output", str(output_dir), "--target", target]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--days", type=int, default=None, help="days per season (default: the whole year)")
    parser.add_argument("--data", type=Path, default=None, help="where generated seasons are kept (reused)")
    parser.add_argument("--target", choices=["crocus", "tartes"], default="crocus")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        rows = []
        for points in args.points:
            input_dir = data / (f"points{points}" + ("" if args.days is None else f"_days{args.days}"))
            started = time.perf_counter()
            generate(input_dir, seasons=1, points=points, days=args.days)
            print(f"{points} points: season generated in {time.perf_counter() - started:.0f} s", flush=True)
            rows.append((points, run_preprocess(input_dir, Path(tmp) / f"out{points}", args.target)))

    print(f"\npreprocess --target {args.target}, one season per size")
    print(f"{'points':>7} {'samples':>10} {'seconds':>8} {'samples/s':>10} {'peak RSS (MB)':>14} {'peak anon (MB)':>15}")
    for points, r in rows:
        print(f"{points:>7} {r['samples']:>10} {r['seconds']:>8.1f} {r['samples'] / r['seconds']:>10.0f} "
              f"{r['peak_rss'] / 1e6:>14.0f} {r['peak_anon'] / 1e6:>15.0f}")
    worst = max(r["peak_rss"] for _, r in rows)
    print(f"bar: peak RSS <= 2 GB: {'PASS' if worst <= BAR_BYTES else 'FAIL'} (worst {worst / 1e6:.0f} MB)")
    (small_points, small), (large_points, large) = rows[0], rows[-1]
    for key, label in (("peak_rss", "peak RSS"), ("peak_anon", "peak anon")):
        growth = large[key] / small[key]
        verdict = "PASS" if growth <= GROWTH_TOLERANCE else "FAIL"
        print(f"bar: {label} does not grow with points: {verdict} (x{growth:.2f} from {small_points} to "
              f"{large_points} points, samples x{large['samples'] / max(small['samples'], 1):.2f})")


if __name__ == "__main__":
    main()
