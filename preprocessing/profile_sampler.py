"""Snow profiles drawn over the whole physically plausible input domain, labelled with TARTES.

The embedded seasons are realistic but narrow; the emulator must also be right for the packs that
Crocus produces over decades and massifs. This sampler covers

    1..50 layers, dz 0.002..0.2 m, SSA 2..150 m2/kg, density 50..917 kg/m3 (ice layers, density
    >= 850, at the surface and at depth), soot 0..1e-5, dust 0..1e-2 kg/kg (zeros and surface
    events), cos_illum -0.3..1 (a sun behind the slope in 3 %), direct fraction 0..1

with the structure of real snowpacks most of the time: SSA falling and density rising with depth
(snow ages downwards), melt-freeze crusts and ice layers, fresh snow over old snow, thin packs
over soil, dusty spring surfaces, and deep clean winter packs (27-50 layers, little soot, no dust:
where light goes deepest). SSA above Crocus's limit of 100 m2/kg is frequent in fresh snow (TARTES
then sees 70). A share of profiles is left unstructured so that no corner of the domain is empty.
Profiles are labelled with the labeller's energy budget and written as the shards of
preprocessing/shards.py, so training mixes them with the seasons. They have no sun position:
their cos_sza is NaN.

    python -m preprocessing.profile_sampler --out DIR [--samples 200000] [--seed 0]
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from preprocessing.shards import Samples, ShardWriter, is_complete
from preprocessing.tartes_labels import energy_budget
from utils.provenance import provenance
from utils.schema import LAYER_VARIABLES, META_COLUMNS, N_LAYERS, SCALAR_VARIABLES

DOMAIN = {
    "n_layers": (1, 50),
    "dz": (0.002, 0.2),
    "ssa": (2.0, 150.0),
    "density": (50.0, 917.0),
    "soot": (0.0, 1e-5),
    "dust": (0.0, 1e-2),
    "cos_illum": (0.02, 1.0),
    "direct_fraction": (0.0, 1.0),
}
BEHIND_SLOPE = (0.03, -0.3)  # share of profiles lit from behind the slope, and their lowest cos_illum
ICE_LAYERS = 0.03  # share of layers turned to ice (850..917 kg m-3) outside crusts, the surface included
# Share of each kind of snowpack in a draw.
KINDS = {"aged": 0.37, "fresh_over_old": 0.18, "spring": 0.13, "deep_clean": 0.12, "unstructured": 0.2}
PROFILES_PER_DRAW = 50_000  # drawn, labelled and written at a time


def _log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def sample_profiles(n: int, seed: int) -> dict:
    """n profiles as labeller inputs: (n, 50) layer arrays, NaN below the last layer, and (n,) scalars."""
    rng = np.random.default_rng(seed)
    shape = (n, N_LAYERS)
    kind = rng.choice(list(KINDS), size=n, p=list(KINDS.values()))[:, None]
    # thin packs over soil are frequent in autumn and late spring: a quarter have 1..5 layers
    n_layers = np.where(rng.random(n) < 0.25, rng.integers(1, 6, n), rng.integers(1, N_LAYERS + 1, n))
    deep_clean = kind[:, 0] == "deep_clean"
    n_layers = np.where(deep_clean, rng.integers(27, N_LAYERS + 1, n), n_layers)
    depth_rank = np.arange(N_LAYERS)[None, :] / np.maximum(n_layers[:, None] - 1, 1)  # 0 top .. 1 bottom

    dz = _log_uniform(rng, 0.004, 0.1, (n, 1)) * rng.lognormal(0, 0.5, shape)

    # aged packs: SSA decays and density grows with depth, with layer-to-layer noise
    surface_ssa = _log_uniform(rng, 8, 150, (n, 1))
    bottom_ssa = surface_ssa * _log_uniform(rng, 0.03, 1.0, (n, 1))
    ssa = surface_ssa * (bottom_ssa / surface_ssa) ** depth_rank * rng.lognormal(0, 0.25, shape)
    surface_density = rng.uniform(50, 350, (n, 1))
    bottom_density = rng.uniform(200, 550, (n, 1))
    density = surface_density + (bottom_density - surface_density) * depth_rank + rng.normal(0, 30, shape)

    # fresh snow over old: 1..6 light, high-SSA layers over a coarse, dense pack
    fresh_depth = rng.integers(1, 7, (n, 1))
    fresh = (kind == "fresh_over_old") & (np.arange(N_LAYERS)[None, :] < fresh_depth)
    old = (kind == "fresh_over_old") & ~fresh
    ssa = np.where(fresh, _log_uniform(rng, 40, 150, shape), ssa)
    density = np.where(fresh, rng.uniform(50, 150, shape), density)
    ssa = np.where(old, _log_uniform(rng, 2, 25, shape), ssa)
    density = np.where(old, rng.uniform(250, 550, shape), density)

    # spring: wet, coarse, dense snow throughout
    spring = kind == "spring"
    ssa = np.where(spring, _log_uniform(rng, 2, 15, shape), ssa)
    density = np.where(spring, rng.uniform(300, 600, shape), density)

    # unstructured: every layer drawn independently over the whole domain
    unstructured = kind == "unstructured"
    ssa = np.where(unstructured, _log_uniform(rng, *DOMAIN["ssa"], shape), ssa)
    density = np.where(unstructured, rng.uniform(*DOMAIN["density"], shape), density)
    dz = np.where(unstructured, _log_uniform(rng, *DOMAIN["dz"], shape), dz)

    # melt-freeze crusts and ice layers: dense, coarse; ice anywhere, the surface included
    crust = rng.random(shape) < np.where(spring, 0.15, 0.04)
    ssa = np.where(crust, _log_uniform(rng, 2, 8, shape), ssa)
    density = np.where(crust, rng.uniform(600, 917, shape), density)
    ice = rng.random(shape) < ICE_LAYERS
    density = np.where(ice, rng.uniform(850, 917, shape), density)

    # soot: a background per pack (none in a fifth of packs), occasionally heavy
    soot = _log_uniform(rng, 1e-10, 1e-7, (n, 1)) * rng.lognormal(0, 0.7, shape)
    soot = np.where(rng.random((n, 1)) < 0.1, _log_uniform(rng, 1e-7, 1e-5, shape), soot)
    soot = np.where(rng.random((n, 1)) < 0.2, 0.0, soot)
    # dust: none in a third of packs, a background otherwise, and Saharan events at or near the
    # surface (dusty spring snow) or buried
    dust = _log_uniform(rng, 1e-8, 1e-4, (n, 1)) * rng.lognormal(0, 1.0, shape)
    dust = np.where(rng.random((n, 1)) < 0.35, 0.0, dust)
    event_layer = np.where(rng.random((n, 1)) < 0.7, rng.integers(0, 3, (n, 1)), rng.integers(0, N_LAYERS, (n, 1)))
    has_event = rng.random((n, 1)) < 0.3
    event = has_event & (np.arange(N_LAYERS)[None, :] == event_layer)
    dust = np.where(event, _log_uniform(rng, 1e-4, 1e-2, shape), dust)
    dust = np.where(has_event & spring, np.maximum(dust, _log_uniform(rng, 1e-6, 1e-4, shape)), dust)

    # deep clean winter packs: fine snow, a trace of soot, no dust
    soot = np.where(deep_clean[:, None], np.minimum(soot, _log_uniform(rng, 1e-11, 2e-9, (n, 1))), soot)
    dust = np.where(deep_clean[:, None], 0.0, dust)

    layers = {
        "dz": np.clip(dz, *DOMAIN["dz"]),
        "ssa": np.clip(ssa, *DOMAIN["ssa"]),
        "density": np.clip(density, *DOMAIN["density"]),
        "soot": np.clip(soot, *DOMAIN["soot"]),
        "dust": np.clip(dust, *DOMAIN["dust"]),
    }
    absent = np.arange(N_LAYERS)[None, :] >= n_layers[:, None]
    for a in layers.values():
        a[absent] = np.nan

    direct_fraction = rng.uniform(*DOMAIN["direct_fraction"], n)
    # overcast and clear-sky extremes are common: exact 0 and 1 fractions
    ends = rng.random(n)
    direct_fraction = np.where(ends < 0.05, 0.0, np.where(ends > 0.95, 1.0, direct_fraction))
    total_sw = _log_uniform(rng, 5, 1100, n)
    return {
        **layers,
        "cos_illum": np.where(rng.random(n) < BEHIND_SLOPE[0], rng.uniform(BEHIND_SLOPE[1], 0.0017, n),
                              rng.uniform(*DOMAIN["cos_illum"], n)),
        "direct_sw": direct_fraction * total_sw,
        "diffuse_sw": (1 - direct_fraction) * total_sw,
    }


def realistic_profiles(n: int, n_layers: int = 50, seed: int = 0) -> dict:
    """n realistic Crocus-like profiles of n_layers layers, as labeller inputs, for benchmarks and tests.

    Magnitudes of real Crocus 3.0 runs with TARTES (TARTES_LABELS.md): dz 0.053 +- 0.037 m, SSA
    14.7 +- 8.8 m2/kg, density 336 +- 123 kg/m3, heavy-tailed soot and dust, direct SW 188 +- 215
    and diffuse SW 98 +- 60 W/m2, cos_sza 0.41 +- 0.25 (used as the illumination cosine of flat
    ground). SSA falls and density rises with depth, as snow ages downwards.
    """
    rng = np.random.default_rng(seed)
    depth_rank = np.linspace(0, 1, n_layers)[None, :]  # 0 at the surface, 1 at the bottom
    jitter = rng.normal(0, 0.25, (n, n_layers))
    surface_ssa = rng.lognormal(np.log(30), 0.5, (n, 1))
    ssa = np.clip(surface_ssa * np.exp(-1.6 * depth_rank + jitter), 2, 150)
    density = np.clip(rng.normal(150, 50, (n, 1)) + 300 * depth_rank + rng.normal(0, 40, (n, n_layers)), 50, 917)
    dz = np.clip(rng.lognormal(np.log(0.045), 0.6, (n, n_layers)), 0.002, 0.2)
    soot = rng.lognormal(np.log(2e-9), 1.5, (n, n_layers))
    dust = rng.lognormal(np.log(3e-7), 2.0, (n, n_layers)) * (rng.random((n, n_layers)) < 0.6)
    cos_illum = np.clip(rng.normal(0.41, 0.25, n), 0.02, 1.0)
    direct_sw = np.clip(rng.normal(188, 215, n), 0, None)
    diffuse_sw = np.clip(rng.normal(98, 60, n), 5, None)
    return dict(dz=dz, ssa=ssa, density=density, soot=soot, dust=dust, cos_illum=cos_illum,
                direct_sw=direct_sw, diffuse_sw=diffuse_sw)


def write_sampled_shard(path: str | Path, n: int, seed: int) -> Path:
    """Draw, label and write n profiles as one shard at path; an existing complete shard is kept."""
    path = Path(path)
    if is_complete(path):
        return path
    info = {
        "region": "sampled",
        "season": f"sampled_seed{seed}",
        "source": "preprocessing.profile_sampler",
        "seed": seed,
        "domain": DOMAIN,
        "target_source": "tartes labeller",
        "software": provenance(),
        "created": datetime.now(timezone.utc).isoformat(),
    }
    # one generator per chunk, seeded from (seed, chunk): the draw does not depend on PROFILES_PER_DRAW order
    with ShardWriter(path, n, info) as writer:
        for chunk_index, start in enumerate(tqdm(range(0, n, PROFILES_PER_DRAW), desc=f"sampling {path.name}", unit="chunk")):
            size = min(PROFILES_PER_DRAW, n - start)
            profiles = sample_profiles(size, seed=np.random.SeedSequence([seed, chunk_index]).generate_state(1)[0])
            budget = energy_budget(**profiles)
            present = ~np.isnan(profiles["dz"])
            layers = np.stack([np.nan_to_num(profiles[name], nan=0.0) for name in LAYER_VARIABLES], axis=1)
            columns = {**profiles, "cos_sza": np.full(size, np.nan), "snow_depth": np.nansum(profiles["dz"], axis=1)}
            meta = pd.DataFrame({
                "region": "sampled", "season": info["season"], "time": pd.NaT, "point": np.arange(start, start + size),
                "massif": -1, "ZS": np.nan, "slope": np.nan, "aspect": np.nan,
            }, columns=list(META_COLUMNS))
            writer.write(Samples(layers, present, np.stack([columns[k] for k in SCALAR_VARIABLES], axis=1),
                                 budget.albedo, np.nan_to_num(budget.absorbed, nan=0.0), budget.soil, meta))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="shard directory to write")
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_sampled_shard(args.out, args.samples, args.seed))


if __name__ == "__main__":
    main()
