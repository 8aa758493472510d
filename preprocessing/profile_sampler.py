"""Snow profiles drawn over what users simulate, labelled as SURFEX's TARTES computes them.

The embedded seasons are realistic but narrow; the emulator must also be right for the packs and
the light that Crocus meets over decades, massifs and slopes. This sampler covers

    1..50 layers, dz 0.002..0.2 m, SSA 2..150 m2/kg, density 50..917 kg/m3 (ice layers, density
    >= 850, at the surface and at depth), soot 0..1e-5, dust 0..1e-2 kg/kg, soil albedo 0.05..0.5,
    slopes 0..50 degrees under a sun anywhere above the horizon, 5..1100 W/m2 of shortwave

with the structure of real snowpacks most of the time. Each profile draws three things:

- a kind of pack (KINDS): aged packs (SSA falling and density rising with depth: snow ages
  downwards), fresh snow over old snow, wet spring packs, deep clean winter packs (27-50 layers:
  where light goes deepest), thin layers over an ice or dense layer (where SURFEX's truncation over
  an albedo-1 floor matters, docs/labels.md), and unstructured packs so that no corner of the
  domain is empty. Melt-freeze crusts and ice layers anywhere; SSA above Crocus's limit of
  100 m2/kg is frequent in fresh snow (TARTES then sees 70).
- impurities (IMPURITIES): clean, a typical background of soot and dust, a surface dust event
  (1e-4..3e-3 kg/kg in the top 1-3 layers of a pack of 10 layers or more), a buried dust layer, or
  a very dark surface (a top layer of SSA 2-4 with dust 3e-3..1e-2, where SURFEX's energy clean-up
  acts). Deep clean packs are clean.
- light (LIGHT): a sun (zenith, azimuth) and a slope (0-50 degrees, flat ground in a share) with
  its aspect; cos_illum follows from them as ISBA computes it, so it is always what the geometry
  allows; the sun behind the slope (cos_illum < 0.0017) in a share, redrawn until it is so; the
  zenith at Crocus's cap (cos 0.01) as at sunrise and sunset; forcing without diffuse light
  (diffuse_sw = 0 exactly: the labeller splits it by Dumont's formula on cos_zenith) or overcast
  (direct_sw = 0) in shares. No row is dark (night is a rule, not something to learn).

Profiles are labelled with the labeller's energy budget (soil albedo and cos_zenith of each
profile) and written as the shards of preprocessing/shards.py, so training mixes them with the
seasons.

    python -m preprocessing.profile_sampler --out DIR [--samples 200000] [--seed 0] [--truncation_regime]
"""
from __future__ import annotations

import argparse
import itertools
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from preprocessing.shards import Samples, ShardWriter, is_complete
from preprocessing.tartes_labels import energy_budget
from utils.profiles import EnergyBudget
from utils.provenance import provenance
from utils.report import truncation_regime as regime_of
from utils.schema import LAYER_VARIABLES, META_COLUMNS, N_LAYERS, SCALAR_VARIABLES
from utils.solar import ZENITH_MARGIN, illumination_cosine
from utils.tartes_constants import COS_ILLUM_MIN, ICE_DENSITY, ICE_DENSITY_MAX

COS_ZENITH_CAP = float(np.cos(np.pi / 2 - ZENITH_MARGIN))  # the lowest sun SURFEX gives TARTES
DOMAIN = {
    "n_layers": (1, 50),
    "dz": (0.002, 0.2),
    "ssa": (2.0, 150.0),
    "density": (50.0, ICE_DENSITY_MAX),
    "soot": (0.0, 1e-5),
    "dust": (0.0, 1e-2),
    "soil_albedo": (0.05, 0.5),
    "cos_zenith": (COS_ZENITH_CAP, 1.0),
    "slope": (0.0, 50.0),  # degrees
    "shortwave": (5.0, 1100.0),  # direct_sw + diffuse_sw, W m-2
}
ICE_LAYERS = 0.03  # share of layers turned to ice (850..917 kg m-3) outside crusts, the surface included
# Shares of each kind of pack, of impurities (over the packs that are not deep_clean, which are
# clean), and of each kind of light.
KINDS = {"aged": 0.33, "fresh_over_old": 0.16, "spring": 0.12, "deep_clean": 0.11, "thin_over_dense": 0.1,
         "unstructured": 0.18}
IMPURITIES = {"clean": 0.14, "typical": 0.52, "surface_dust": 0.16, "buried_dust": 0.12, "dark_surface": 0.06}
FORCING = {"mixed": 0.85, "no_diffuse": 0.1, "overcast": 0.05}  # diffuse_sw = 0 / direct_sw = 0 exactly
LIGHT = {"behind_slope": 0.04, "flat": 0.3, "zenith_cap": 0.03}  # flat: of the rows lit from the front
PROFILES_PER_DRAW = 50_000  # drawn, labelled and written at a time


def _log_uniform(rng, low, high, size):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _choice(rng, shares: dict, n: int) -> np.ndarray:
    return rng.choice(list(shares), size=n, p=list(shares.values()))


def _sun_and_slope(rng, behind: np.ndarray) -> dict:
    """cos_zenith, cos_illum and the geometry (degrees) of each row: flat ground or a slope, the sun
    behind the slope (cos_illum < COS_ILLUM_MIN) exactly where `behind`, redrawn until it is so."""
    n = len(behind)
    flat = ~behind & (rng.random(n) < LIGHT["flat"])
    at_cap = rng.random(n) < LIGHT["zenith_cap"]
    geometry = {name: np.empty(n) for name in ("cos_zenith", "cos_illum", "azimuth", "slope", "aspect")}
    rows = np.arange(n)
    while rows.size:
        m = rows.size
        draw = {
            "cos_zenith": np.where(at_cap[rows], COS_ZENITH_CAP, rng.uniform(*DOMAIN["cos_zenith"], m)),
            "azimuth": rng.uniform(0, 360, m),
            "slope": np.where(flat[rows], 0.0, rng.uniform(*DOMAIN["slope"], m)),
            "aspect": rng.uniform(0, 360, m),
        }
        draw["cos_illum"] = illumination_cosine(np.arccos(draw["cos_zenith"]), np.deg2rad(draw["azimuth"]),
                                                draw["slope"], draw["aspect"])
        kept = (draw["cos_illum"] < COS_ILLUM_MIN) == behind[rows]
        for name, values in draw.items():
            geometry[name][rows[kept]] = values[kept]
        rows = rows[~kept]
    geometry["aspect"][flat] = -1.0  # Crocus files' aspect of flat ground
    return geometry


def draw_profiles(n: int, seed: int) -> tuple[dict, dict]:
    """n profiles as inputs of the labeller's energy_budget ((n, 50) layer arrays, NaN below the
    last layer, and (n,) scalars: cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith), and
    what was drawn for each: its kind, impurities, forcing, whether the sun is behind the slope,
    and the sun's azimuth, the slope and its aspect (degrees; aspect -1 on flat ground)."""
    rng = np.random.default_rng(seed)
    shape = (n, N_LAYERS)
    index = np.arange(N_LAYERS)[None, :]
    kind = _choice(rng, KINDS, n)
    impurity = np.where(kind == "deep_clean", "clean", _choice(rng, IMPURITIES, n))
    pack, impurities = kind[:, None], impurity[:, None]

    # thin packs over soil are frequent in autumn and late spring: a quarter have 1..5 layers
    n_layers = np.where(rng.random(n) < 0.25, rng.integers(1, 6, n), rng.integers(1, N_LAYERS + 1, n))
    n_layers = np.where(kind == "deep_clean", rng.integers(27, N_LAYERS + 1, n), n_layers)
    thin_layers = rng.integers(1, 4, n)  # of thin_over_dense packs, over their dense layer
    n_layers = np.where(kind == "thin_over_dense", np.maximum(n_layers, thin_layers + 1), n_layers)
    # dust events fall on deep packs; a buried layer lies under at least one layer
    n_layers = np.where((impurity == "surface_dust") & (n_layers < 10), rng.integers(10, N_LAYERS + 1, n), n_layers)
    n_layers = np.where((impurity == "buried_dust") & (n_layers < 4), rng.integers(4, N_LAYERS + 1, n), n_layers)
    depth_rank = index / np.maximum(n_layers[:, None] - 1, 1)  # 0 top .. 1 bottom

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
    fresh = (pack == "fresh_over_old") & (index < fresh_depth)
    old = (pack == "fresh_over_old") & ~fresh
    ssa = np.where(fresh, _log_uniform(rng, 40, 150, shape), ssa)
    density = np.where(fresh, rng.uniform(50, 150, shape), density)
    ssa = np.where(old, _log_uniform(rng, 2, 25, shape), ssa)
    density = np.where(old, rng.uniform(250, 550, shape), density)

    # spring: wet, coarse, dense snow throughout
    spring = pack == "spring"
    ssa = np.where(spring, _log_uniform(rng, 2, 15, shape), ssa)
    density = np.where(spring, rng.uniform(300, 600, shape), density)

    # unstructured: every layer drawn independently over the whole domain
    unstructured = pack == "unstructured"
    ssa = np.where(unstructured, _log_uniform(rng, *DOMAIN["ssa"], shape), ssa)
    density = np.where(unstructured, rng.uniform(*DOMAIN["density"], shape), density)
    dz = np.where(unstructured, _log_uniform(rng, *DOMAIN["dz"], shape), dz)

    # melt-freeze crusts and ice layers: dense, coarse; ice anywhere, the surface included
    crust = rng.random(shape) < np.where(spring, 0.15, 0.04)
    ssa = np.where(crust, _log_uniform(rng, 2, 8, shape), ssa)
    density = np.where(crust, rng.uniform(600, ICE_DENSITY_MAX, shape), density)
    ice = rng.random(shape) < ICE_LAYERS
    density = np.where(ice, rng.uniform(ICE_DENSITY, ICE_DENSITY_MAX, shape), density)

    # thin layers (2 mm - 2 cm) over an ice layer or a dense, coarse one: the kept layers of SURFEX's
    # truncation are then optically thin over its albedo-1 floor
    thin = (pack == "thin_over_dense") & (index < thin_layers[:, None])
    dense = (pack == "thin_over_dense") & (index == thin_layers[:, None])
    dz = np.where(thin, _log_uniform(rng, 0.002, 0.02, shape), dz)
    ssa = np.where(thin, _log_uniform(rng, 5, 120, shape), ssa)
    density = np.where(thin, rng.uniform(50, 350, shape), density)
    ice_below = rng.random((n, 1)) < 0.5
    dz = np.where(dense, _log_uniform(rng, 0.02, 0.2, shape), dz)
    ssa = np.where(dense & ~ice_below, _log_uniform(rng, 2, 10, shape), ssa)
    density = np.where(dense, np.where(ice_below, rng.uniform(ICE_DENSITY, ICE_DENSITY_MAX, shape),
                                       rng.uniform(550, ICE_DENSITY, shape)), density)

    # soot: a background per pack (none in a fifth of packs), occasionally heavy
    soot = _log_uniform(rng, 1e-10, 1e-7, (n, 1)) * rng.lognormal(0, 0.7, shape)
    soot = np.where(rng.random((n, 1)) < 0.1, _log_uniform(rng, 1e-7, 1e-5, shape), soot)
    soot = np.where(rng.random((n, 1)) < 0.2, 0.0, soot)
    # dust: a background (none in a third of packs), higher in spring
    dust = _log_uniform(rng, 1e-8, 1e-4, (n, 1)) * rng.lognormal(0, 1.0, shape)
    dust = np.where(rng.random((n, 1)) < 0.35, 0.0, dust)
    dust = np.where(spring, np.maximum(dust, _log_uniform(rng, 1e-6, 1e-4, (n, 1))), dust)
    # clean packs: no dust, no soot or a trace of it (deep clean winter packs: fine snow, a trace)
    clean = impurities == "clean"
    soot = np.where(clean, np.where(rng.random((n, 1)) < 0.5, 0.0, _log_uniform(rng, 1e-11, 2e-9, (n, 1))), soot)
    dust = np.where(clean, 0.0, dust)
    # Saharan dust events: on the top 1-3 layers, or one or two layers buried under later snow
    event_depth = rng.integers(1, 4, (n, 1))
    dust = np.where((impurities == "surface_dust") & (index < event_depth), _log_uniform(rng, 1e-4, 3e-3, shape), dust)
    buried_top = rng.integers(1, np.maximum(n_layers, 2))[:, None]
    buried = (impurities == "buried_dust") & (index >= buried_top) & (index < buried_top + rng.integers(1, 3, (n, 1)))
    dust = np.where(buried, _log_uniform(rng, 1e-4, 3e-3, shape), dust)
    # very dark surfaces: a coarse, wet, very dusty top layer (not ice, which Crocus makes clean)
    dark = (impurities == "dark_surface") & (index == 0)
    ssa = np.where(dark, rng.uniform(2, 4, shape), ssa)
    density = np.where(dark, rng.uniform(300, 600, shape), density)
    dust = np.where(dark, _log_uniform(rng, 3e-3, 1e-2, shape), dust)

    profiles = {name: np.clip(values, *DOMAIN[name]) for name, values in
                (("dz", dz), ("ssa", ssa), ("density", density), ("soot", soot), ("dust", dust))}
    absent = index >= n_layers[:, None]
    for values in profiles.values():
        values[absent] = np.nan

    behind = rng.random(n) < LIGHT["behind_slope"]
    geometry = _sun_and_slope(rng, behind)
    forcing = _choice(rng, FORCING, n)
    direct_fraction = np.select([forcing == "no_diffuse", forcing == "overcast"], [1.0, 0.0], rng.uniform(0, 1, n))
    shortwave = _log_uniform(rng, *DOMAIN["shortwave"], n)
    profiles.update(
        cos_illum=geometry["cos_illum"],
        direct_sw=direct_fraction * shortwave,
        diffuse_sw=(1 - direct_fraction) * shortwave,
        soil_albedo=rng.uniform(*DOMAIN["soil_albedo"], n),
        cos_zenith=geometry["cos_zenith"],
    )
    drawn = {"kind": kind, "impurity": impurity, "forcing": forcing, "behind_slope": behind,
             **{name: geometry[name] for name in ("azimuth", "slope", "aspect")}}
    return profiles, drawn


def sample_profiles(n: int, seed: int, *, soil_and_zenith: bool = False) -> dict:
    """The profiles of draw_profiles(n, seed) as the emulator takes them (the layers, cos_illum,
    direct_sw and diffuse_sw); with soil_and_zenith, also each profile's soil_albedo and cos_zenith,
    keyword arguments of the labeller and of models.Emulator."""
    profiles, _ = draw_profiles(n, seed)
    if not soil_and_zenith:
        del profiles["soil_albedo"], profiles["cos_zenith"]
    return profiles


def realistic_profiles(n: int, n_layers: int = 50, seed: int = 0, *, soil_and_zenith: bool = False) -> dict:
    """n realistic Crocus-like profiles of n_layers layers, as the emulator takes them, for
    benchmarks and tests; with soil_and_zenith, also each profile's soil_albedo (0.1-0.35, ISBA's
    snow-free albedos) and cos_zenith (flat ground: cos_illum), keyword arguments of the labeller
    and of models.Emulator. The other values do not depend on soil_and_zenith.

    Magnitudes of real Crocus 3.0 runs with TARTES (docs/labels.md): dz 0.053 +- 0.037 m, SSA
    14.7 +- 8.8 m2/kg, density 336 +- 123 kg/m3, heavy-tailed soot and dust, direct SW 188 +- 215
    and diffuse SW 98 +- 60 W/m2, cos_zenith 0.41 +- 0.25 (the illumination cosine of flat
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
    profiles = dict(dz=dz, ssa=ssa, density=density, soot=soot, dust=dust, cos_illum=cos_illum,
                    direct_sw=direct_sw, diffuse_sw=diffuse_sw)
    if soil_and_zenith:  # drawn last: the other values are those of the plain call
        profiles.update(soil_albedo=rng.uniform(0.1, 0.35, n), cos_zenith=cos_illum.copy())
    return profiles


def write_sampled_shard(path: str | Path, n: int, seed: int, *, truncation_regime: bool = False) -> Path:
    """Draw, label and write n profiles as one shard at path; an existing complete shard is kept.

    With truncation_regime, only profiles where SURFEX's per-band truncation changes the albedo
    (utils.report.truncation_regime: a thin top over a layer SURFEX drops in some bands only, about
    7 % of the draws) are kept, until there are n: training data where a few wavelengths of physics
    follow the labels least well."""
    path = Path(path)
    if is_complete(path):
        return path
    info = {
        "region": "sampled",
        "season": f"sampled_seed{seed}" + ("_truncation" if truncation_regime else ""),
        "source": "preprocessing.profile_sampler",
        "seed": seed,
        "domain": DOMAIN,
        "shares": {"kinds": KINDS, "impurities": IMPURITIES, "forcing": FORCING, "light": LIGHT},
        "kept": "rows in SURFEX's truncation regime" if truncation_regime else "every row",
        "target_source": "tartes labeller",
        "software": provenance(),
        "created": datetime.now(timezone.utc).isoformat(),
    }
    # one generator per chunk, seeded from (seed, chunk): the draw does not depend on PROFILES_PER_DRAW order
    written = 0
    with ShardWriter(path, n, info) as writer, tqdm(total=n, desc=f"sampling {path.name}", unit="profile") as bar:
        for chunk_index in itertools.count():
            if written == n:
                break
            size = PROFILES_PER_DRAW if truncation_regime else min(PROFILES_PER_DRAW, n - written)
            profiles, drawn = draw_profiles(size, seed=np.random.SeedSequence([seed, chunk_index]).generate_state(1)[0])
            budget = energy_budget(**profiles)
            keep = np.ones(size, dtype=bool)
            if truncation_regime:
                keep = regime_of(budget.albedo, energy_budget(**profiles, truncation=False).albedo) == 1
                keep &= np.cumsum(keep) <= n - written
                profiles = {name: values[keep] for name, values in profiles.items()}
                drawn = {name: values[keep] for name, values in drawn.items()}
                budget = EnergyBudget(budget.albedo[keep], budget.absorbed[keep], budget.soil[keep])
            kept = int(keep.sum())
            present = ~np.isnan(profiles["dz"])
            layers = np.stack([np.nan_to_num(profiles[name], nan=0.0) for name in LAYER_VARIABLES], axis=1)
            columns = {**profiles, "snow_depth": np.nansum(profiles["dz"], axis=1)}
            meta = pd.DataFrame({
                "region": "sampled", "season": info["season"], "time": pd.NaT,
                "point": np.arange(written, written + kept), "massif": -1, "ZS": np.nan, "slope": drawn["slope"],
                "aspect": drawn["aspect"],
            }, columns=list(META_COLUMNS))
            writer.write(Samples(layers, present, np.stack([columns[k] for k in SCALAR_VARIABLES], axis=1),
                                 budget.albedo, np.nan_to_num(budget.absorbed, nan=0.0), budget.soil, meta))
            written += kept
            bar.update(kept)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="shard directory to write")
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truncation_regime", action="store_true",
                        help="keep only profiles where SURFEX's truncation changes the albedo")
    args = parser.parse_args(argv)
    print(write_sampled_shard(args.out, args.samples, args.seed, truncation_regime=args.truncation_regime))


if __name__ == "__main__":
    main()
