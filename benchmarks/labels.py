"""Time per profile of the tartes package and of the batched labeller, on the same profiles: the
full energy budget (albedo, absorbed fraction per layer, soil), and the labeller's albedo alone.

    python benchmarks/labels.py [--profiles 200] [--repeats 20]

Bar (issue 11): the labeller's energy budget is >= 300x faster than the tartes package's on a
2-core machine (aim for 600x).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preprocessing.profile_sampler import realistic_profiles  # noqa: E402
from preprocessing.tartes_labels import broadband_albedo, energy_budget, reference_energy_budget  # noqa: E402


def best_time(function, profiles, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(**profiles)
        times.append(time.perf_counter() - start)
    return min(times) / len(profiles["cos_illum"]), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="labeller runs; the fastest is kept")
    args = parser.parse_args()

    profiles = realistic_profiles(args.profiles, n_layers=50, seed=0)
    energy_budget(**profiles)  # compile (or load the cached compilation) outside the timing
    broadband_albedo(**profiles)

    start = time.perf_counter()
    reference = reference_energy_budget(**profiles)
    reference_time = (time.perf_counter() - start) / args.profiles
    budget_time, fast = best_time(energy_budget, profiles, args.repeats)
    albedo_time, albedo = best_time(broadband_albedo, profiles, args.repeats)

    ratio = reference_time / budget_time
    print(f"{args.profiles} realistic 50-layer profiles; {os.cpu_count()} CPU cores, "
          f"numba threads {numba.get_num_threads()}")
    print(f"albedo {fast.albedo.mean():.3f} +- {fast.albedo.std():.3f}, top layer {np.mean(fast.absorbed[:, 0]):.3f}, "
          f"soil {fast.soil.mean():.2e}")
    print(f"max |labeller - tartes|: albedo {np.abs(fast.albedo - reference.albedo).max():.1e}, absorbed "
          f"{np.nanmax(np.abs(fast.absorbed - reference.absorbed)):.1e}, soil {np.abs(fast.soil - reference.soil).max():.1e}"
          f"; albedo alone vs budget {np.abs(albedo - fast.albedo).max():.1e}")
    print(f"tartes package (energy budget) : {reference_time * 1e3:9.3f} ms per profile")
    print(f"labeller energy budget         : {budget_time * 1e3:9.4f} ms per profile ({1 / budget_time:,.0f} "
          f"profiles/s, best of {args.repeats})")
    print(f"labeller albedo alone          : {albedo_time * 1e3:9.4f} ms per profile ({1 / albedo_time:,.0f} profiles/s)")
    print(f"speed-up (energy budget)       : {ratio:9.0f}x  (bar >= 300x: {'met' if ratio >= 300 else 'NOT met'}; "
          f"aim 600x)")


if __name__ == "__main__":
    main()
