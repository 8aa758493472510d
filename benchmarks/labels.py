"""Time per profile of the tartes package and of the batched labeller, on the same profiles: the
full energy budget (albedo, absorbed fraction per layer, soil) of docs/labels.md.

    python benchmarks/labels.py [--profiles 200] [--repeats 20] [--reference-profiles 50]

Bar (issue 21): the labeller's energy budget is >= 300x faster than the plain tartes package (two
`tartes.absorption_profile` calls per label, as the package is meant to be used) on a 2-core
machine (aim for 600x). Also printed: the labeller on one thread, beside SURFEX's own TARTES on one
core (measured outside this repository, which does not hold SURFEX's source), the time of
`reference_energy_budget` (tartes with SURFEX's differences, a few calls more per profile) and the
agreement of both implementations with SURFEX's outputs in data/surfex_tartes_cases.npz.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np
import tartes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preprocessing.profile_sampler import realistic_profiles  # noqa: E402
from preprocessing.tartes_labels import energy_budget, reference_energy_budget  # noqa: E402
from utils.crocus_rules import crocus_inputs  # noqa: E402
from utils.profiles import validate_inputs  # noqa: E402
from utils.tartes_constants import (B0, BANDS, DIFFUSE_SZA_DEG, DUST, G0, SHAPE_PARAMETERIZATION,  # noqa: E402
                                    SOOT)

YARDSTICK = Path(__file__).resolve().parents[1] / "data" / "surfex_tartes_cases.npz"
# SURFEX's SNOWCRO_TARTES built standalone (gfortran -O3 -march=native), one point per call, real
# Crocus packs of 20 to 49 layers, one core: measured outside this repository (docs/benchmarks.md).
SURFEX_PROFILES_PER_S = (1500, 1800)


def plain_tartes(profiles: dict) -> float:
    """Seconds per profile of the plain package: absorption_profile under direct and diffuse light
    on the whole pack (Crocus's rules applied first, outside the timing)."""
    layers, scalars, n_layers, _ = validate_inputs(**profiles)
    layers, scalars = crocus_inputs(layers, scalars)
    common = dict(wavelength=BANDS["wavelength"], shape_parameterization=SHAPE_PARAMETERIZATION, g0=G0, B0=B0,
                  impurities_type=[SOOT, DUST], refrac_index="w2008", soilalbedo=0.2, dir_frac=1.0, totflux=1.0)
    start = time.perf_counter()
    for p, n in enumerate(n_layers):
        pack = dict(SSA=layers["ssa"][p, :n], density=layers["density"][p, :n], thickness=layers["dz"][p, :n],
                    impurities=[[float(s), float(d)] for s, d in zip(layers["soot"][p, :n], layers["dust"][p, :n])])
        tartes.absorption_profile(sza=np.degrees(np.arccos(scalars["cos_illum"][p])), **pack, **common)
        tartes.absorption_profile(sza=DIFFUSE_SZA_DEG, **pack, **common)
    return (time.perf_counter() - start) / len(n_layers)


def best_time(profiles: dict, repeats: int) -> float:
    """Seconds per profile of energy_budget, the fastest of `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        energy_budget(**profiles)
        times.append(time.perf_counter() - start)
    return min(times) / len(profiles["cos_illum"])


def yardstick_errors(function, rows=slice(None)) -> tuple[float, float]:
    """The largest |function - SURFEX| over albedo, absorbed fractions and soil, on the yardstick's
    rows without and with layers of guarded SSA."""
    with np.load(YARDSTICK) as cases:
        cases = {name: cases[name][rows] for name in cases.files}
    budget = function(**{name: cases[name] for name in ("dz", "ssa", "density", "soot", "dust", "cos_illum",
                                                        "direct_sw", "diffuse_sw", "soil_albedo", "cos_zenith")})
    error = np.maximum.reduce([np.abs(budget.albedo - cases["surfex_albedo"]),
                               np.nanmax(np.abs(budget.absorbed - cases["surfex_absorbed"]), axis=1),
                               np.abs(budget.soil - cases["surfex_soil"])])
    guarded = ((cases["ssa"] > 100) & (cases["density"] < 850)).any(axis=1)
    return error[~guarded].max(initial=0.0), error[guarded].max(initial=0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20, help="labeller runs; the fastest is kept")
    parser.add_argument("--reference-profiles", type=int, default=50,
                        help="profiles given to reference_energy_budget (and yardstick rows it is checked on)")
    args = parser.parse_args()

    profiles = realistic_profiles(args.profiles, n_layers=50, seed=0, soil_and_zenith=True)
    fast = energy_budget(**profiles)  # compile (or load the cached compilation) outside the timing
    threads = numba.get_num_threads()
    budget_time = best_time(profiles, args.repeats)
    numba.set_num_threads(1)
    one_thread_time = best_time(profiles, args.repeats)
    numba.set_num_threads(threads)
    plain_time = plain_tartes({k: v for k, v in profiles.items() if k not in ("soil_albedo", "cos_zenith")})
    subset = {k: v[:args.reference_profiles] for k, v in profiles.items()}
    start = time.perf_counter()
    reference = reference_energy_budget(**subset)
    reference_time = (time.perf_counter() - start) / args.reference_profiles
    rows = np.linspace(0, 2499, args.reference_profiles).astype(int)

    ratio = plain_time / budget_time
    print(f"{args.profiles} realistic 50-layer profiles; {os.cpu_count()} CPU cores, numba threads {threads}")
    print(f"albedo {fast.albedo.mean():.3f} +- {fast.albedo.std():.3f}, top layer {np.mean(fast.absorbed[:, 0]):.3f}, "
          f"soil {fast.soil.mean():.2e}")
    print(f"max |labeller - reference| on {args.reference_profiles} of them: albedo "
          f"{np.abs(fast.albedo[:len(rows)] - reference.albedo).max():.1e}, absorbed "
          f"{np.nanmax(np.abs(fast.absorbed[:len(rows)] - reference.absorbed)):.1e}, soil "
          f"{np.abs(fast.soil[:len(rows)] - reference.soil).max():.1e}")
    for name, function, where in (("labeller", energy_budget, slice(None)),
                                  ("reference", reference_energy_budget, rows)):
        plain, guarded = yardstick_errors(function, where)
        print(f"max |{name} - SURFEX| on {'all 2500' if name == 'labeller' else len(rows)} yardstick rows: "
              f"{plain:.1e} (rows with guarded SSA {guarded:.1e}; bar 1e-9 and 1e-6)")
    print(f"tartes package, 2 absorption_profile calls : {plain_time * 1e3:9.3f} ms per profile")
    print(f"reference_energy_budget (tartes, SURFEX's) : {reference_time * 1e3:9.3f} ms per profile")
    print(f"labeller energy budget, {threads} threads          : {budget_time * 1e3:9.4f} ms per profile "
          f"({1 / budget_time:,.0f} profiles/s, best of {args.repeats})")
    print(f"labeller energy budget, 1 thread           : {one_thread_time * 1e3:9.4f} ms per profile "
          f"({1 / one_thread_time:,.0f} profiles/s per core)")
    print(f"SURFEX's own TARTES, 1 core (Fortran -O3 -march=native, 20-49-layer packs, one point per call; "
          f"measured outside this repository): about {SURFEX_PROFILES_PER_S[0]:,}-{SURFEX_PROFILES_PER_S[1]:,} "
          f"profiles/s")
    print(f"speed-up over the tartes package (energy budget): {ratio:6.0f}x  (bar >= 300x: "
          f"{'met' if ratio >= 300 else 'NOT met'}; aim 600x)")


if __name__ == "__main__":
    main()
