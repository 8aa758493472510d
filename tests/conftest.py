"""Fixtures and helpers shared by the test modules: tiny shards of labelled profiles, untrained
emulators and extreme profiles, and a tiny run of the default pipeline (synthetic Crocus seasons -> preprocessing -> training -> report)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from features import fit_normalisation
from models import Emulator, build_model
from preprocessing.profile_sampler import sample_profiles
from preprocessing.shards import Samples, ShardWriter
from preprocessing.tartes_labels import energy_budget
from utils.domain import input_domain, model_inputs
from utils.schema import LAYER_VARIABLES, MODEL_SCALARS, N_LAYERS, SCALAR_VARIABLES
from utils.tartes_constants import SOIL_ALBEDO

SEASONS = ("2001080106_2002080106", "2002080106_2003080106", "2003080106_2004080106")
TINY_CNN = {"channels": [8, 8], "hidden": [32, 16]}
TINY_BUDGET = {"wavelengths_nm": [400.0, 800.0, 1300.0], "n_shallow": 2, "hidden": [16]}


def profiles_samples(region: str, season: str, n: int, seed: int, slope: float = 0.0) -> Samples:
    """`n` random but plausible profiles labelled by the project's TARTES labeller, as a shard's rows."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(1, N_LAYERS + 1, n)
    mask = np.arange(N_LAYERS)[None, :] < n_layers[:, None]
    shape = (n, N_LAYERS)
    fields = {
        "dz": rng.uniform(0.005, 0.15, shape),
        "ssa": np.exp(rng.uniform(np.log(3), np.log(80), shape)),
        "density": rng.uniform(80, 550, shape),
        "soot": np.where(rng.random(shape) < 0.3, 0.0, 10 ** rng.uniform(-10, -7, shape)),
        "dust": np.where(rng.random(shape) < 0.3, 0.0, 10 ** rng.uniform(-8, -4, shape)),
    }
    layers = np.stack([np.where(mask, fields[k], 0.0) for k in fields], axis=1).astype(np.float32)
    # cos_zenith (as cos_illum >= 0.05 and diffuse_sw > 0) triggers none of Crocus' step 0 rules here.
    columns = {"cos_illum": rng.uniform(0.05, 0.95, n), "cos_zenith": rng.uniform(0.05, 0.95, n),
               "direct_sw": np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 800, n)),
               "diffuse_sw": rng.uniform(5, 300, n)}
    columns = {k: v.astype(np.float32) for k, v in columns.items()}
    columns["snow_depth"] = np.where(mask, layers[:, 0], 0).sum(axis=1)
    columns["soil_albedo"] = rng.uniform(0.1, 0.35, n).astype(np.float32)  # drawn last: the rest as before
    # Labels of exactly the float32 values stored, absent layers as NaN.
    as_nan = [np.where(mask, layers[:, i].astype(np.float64), np.nan) for i in range(5)]
    budget = energy_budget(*as_nan, columns["cos_illum"], columns["direct_sw"], columns["diffuse_sw"],
                           soil_albedo=columns["soil_albedo"], cos_zenith=columns["cos_zenith"])
    meta = pd.DataFrame({"region": region, "season": season, "time": pd.Timestamp(season[:8]), "point": 0,
                         "massif": 3, "ZS": 1800.0, "slope": slope, "aspect": -1.0}, index=range(n))
    return Samples(layers, mask, np.stack([columns[k] for k in SCALAR_VARIABLES], axis=1), budget.albedo,
                   np.nan_to_num(budget.absorbed), budget.soil, meta)


def make_emulator(settings: dict, path: Path, name: str = "optical_budget", sharpen: float = 10.0,
                  inputs: tuple[np.ndarray, np.ndarray] | None = None) -> Emulator:
    """An untrained emulator of architecture `name` whose outputs vary from profile to profile:
    normalisation and input domain fitted on `inputs` (model layers and scalars; default 3,000
    sampled wide-domain profiles), its last linear layer sharpened (weights x `sharpen`); saved at
    path and loaded back."""
    layers, scalars = model_inputs(sample_profiles(3000, seed=0, soil_and_zenith=True)) if inputs is None else inputs
    torch.manual_seed(0)
    model, model_settings = build_model(name, settings)
    fit_normalisation(model, [(layers, scalars)])
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(sharpen)
    domain = input_domain([(layers, layers[:, 0] > 0, scalars)])
    Emulator(name, asdict(model_settings), model.eval(), domain, {"model": name}, {"epoch": 0}).save(path)
    return Emulator.load(path)


def extreme_inputs(n, seed):
    """Random and extreme physical inputs over and beyond the labeller's domain."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(1, 51, n)
    n_layers[:3] = (1, 2, 50)
    absent = np.arange(50)[None, :] >= n_layers[:, None]

    def field(low, high, zero=0.0):
        a = np.exp(rng.uniform(np.log(low), np.log(high), (n, 50)))
        a[rng.random((n, 50)) < zero] = 0.0
        a[absent] = np.nan
        return a

    density = field(1, 917)
    density[rng.random((n, 50)) < 0.1] = 917.0
    inputs = dict(dz=field(1e-5, 20.0), ssa=field(0.01, 1e4), density=density, soot=field(1e-14, 1e-2, 0.3),
                  dust=field(1e-14, 0.5, 0.3), cos_illum=rng.uniform(-1, 1, n),
                  direct_sw=rng.uniform(0, 1400, n) * (rng.random(n) > 0.2), diffuse_sw=rng.uniform(1e-3, 600, n))
    inputs["cos_illum"][3:6] = (-1.0, 0.0017, 1.0)
    # drawn after the rest, which stays as it was: forcing without diffuse light (some light left),
    # any soil albedo, cos_zenith unknown (NaN) or anything in [-1, 1]
    no_diffuse = rng.random(n) < 0.2
    inputs["diffuse_sw"][no_diffuse] = 0.0
    inputs["direct_sw"][no_diffuse] = np.maximum(inputs["direct_sw"][no_diffuse], 1.0)
    inputs.update(soil_albedo=rng.uniform(0, 1, n),
                  cos_zenith=np.where(rng.random(n) < 0.3, np.nan, rng.uniform(-1, 1, n)))
    return inputs


def extreme_profiles() -> dict:
    """Labeller-style profiles (NaN below the pack) at the edges of what Crocus gives."""
    rows = []

    def pack(dz, ssa, density, soot=1e-9, dust=1e-7, cos_illum=0.5, direct_sw=300.0, diffuse_sw=100.0,
             soil_albedo=SOIL_ALBEDO, cos_zenith=np.nan):
        dz = np.atleast_1d(np.asarray(dz, dtype=float))
        layer = {name: np.broadcast_to(np.asarray(v, dtype=float), dz.shape)
                 for name, v in (("ssa", ssa), ("density", density), ("soot", soot), ("dust", dust))}
        rows.append(({"dz": dz, **layer}, (cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith)))

    pack([0.01], 30, 200)  # one layer over the soil
    pack([0.0005], 60, 100)  # half a millimetre: below the depth floor of the features
    pack(np.full(50, 0.05), np.linspace(60, 5, 50), np.linspace(100, 450, 50))  # 50 layers
    pack(np.full(50, 0.1), 100, 150, soot=0.0, dust=0.0)  # 5 m of clean fine snow: light goes deepest
    pack([0.02, 0.3, 0.1], [20, 10, 5], [900, 917, 880])  # ice at the surface and below
    pack(np.full(5, 2.0), 10, 917)  # 10 m of ice
    pack([0.02, 0.03], [150, 120], [60, 80])  # SSA above 100: replaced by 70
    pack([0.05, 0.1], 20, 300, cos_illum=0.001)  # sun behind the slope: all diffuse
    pack([0.05, 0.1], 20, 300, cos_illum=0.0)
    pack([0.05, 0.1], 20, 300, cos_illum=-0.6)
    pack([0.05, 0.1], 20, 300, cos_illum=1.0)
    pack([0.05, 0.1], 20, 300, direct_sw=500.0, diffuse_sw=0.0)  # all direct
    pack([0.05, 0.1], 20, 300, direct_sw=0.0, diffuse_sw=80.0)  # all diffuse
    pack([0.05, 0.1], 20, 300, soot=1e-5, dust=1e-2)  # heavy impurities
    pack([0.05, 0.1], 20, 300, soot=0.0, dust=0.0, direct_sw=1e-3, diffuse_sw=1e-3)
    pack(np.full(30, 0.001), 80, 50)  # many very thin layers
    pack([0.05, 0.1], 20, 300, direct_sw=500.0, diffuse_sw=0.0, cos_zenith=0.3)  # no diffuse light: Dumont's split
    pack([0.05, 0.1], 20, 300, cos_illum=-0.2, diffuse_sw=0.0, cos_zenith=0.1)  # behind the slope rules over it
    pack([0.01, 0.02], 30, 200, soil_albedo=0.0)  # thin packs over a black soil
    pack([0.01, 0.02], 30, 200, soil_albedo=1.0)  # and a white one
    n = len(rows)
    profiles = {name: np.full((n, 50), np.nan) for name in LAYER_VARIABLES}
    for i, (layers, _) in enumerate(rows):
        for name, values in layers.items():
            profiles[name][i, :len(values)] = values
    for j, name in enumerate(MODEL_SCALARS):
        profiles[name] = np.array([scalars[j] for _, scalars in rows])
    return profiles


DARK_COS_ZENITH = [0.0, -0.3, 1e-9, -1.0, 5e-9, 0.0]


def light_and_soil_profiles(n: int, seed: int, extremes: bool = False) -> dict:
    """sample_profiles(n, seed) with each profile's soil albedo (0.05 to 0.5) and cos_zenith, and
    rows for the rules that use them: an eighth without diffuse light (Dumont's split where
    cos_zenith is known), an eighth with cos_zenith not known (NaN; five of them without diffuse
    light, taken as it is), six dark by cos_zenith <= 1e-8 with light; then, with extremes,
    `extreme_profiles` (soils of albedo 0 and 1 among them)."""
    profiles = {name: np.array(values, dtype=float) for name, values in
                sample_profiles(n, seed=seed, soil_and_zenith=True).items()}
    rows = np.random.default_rng(seed).permutation(n)
    no_diffuse, unknown, dark = rows[:n // 8], rows[n // 8 - 5:n // 4], rows[n // 4:n // 4 + len(DARK_COS_ZENITH)]
    profiles["diffuse_sw"][no_diffuse] = 0.0
    profiles["cos_zenith"][unknown] = np.nan
    profiles["cos_zenith"][dark] = DARK_COS_ZENITH
    profiles["direct_sw"][dark] += 50.0  # light: dark by cos_zenith alone
    if extremes:
        extreme = extreme_profiles()
        profiles = {name: np.concatenate([values, extreme[name]]) for name, values in profiles.items()}
    return profiles


def truncation_profiles(n: int, seed: int) -> dict:
    """Labeller-style profiles where SURFEX's truncation acts (docs/labels.md, step 2, point 3): 1 to 3
    thin top layers (2 to 10 mm) over a thick dense one (0.2 to 0.8 m, 250 to 500 kg m-3), then
    more layers (2 to 50 in all, many beyond the near infrared's top 16), over soils of albedo 0.05
    to 0.5, lit; the first is 5 mm over 0.5 m of density 400 alone. At 1040 and 1300 nm the cumulative
    ke tau* passes 30 in the thick layer: the thin ones lie on a white floor."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(2, N_LAYERS + 1, n)
    n_layers[0] = 2
    n_thin = np.minimum(rng.integers(1, 4, n), n_layers - 1)
    n_thin[0] = 1
    index = np.arange(N_LAYERS)[None, :]
    thin, thick, absent = index < n_thin[:, None], index == n_thin[:, None], index >= n_layers[:, None]
    shape = (n, N_LAYERS)
    profiles = {
        "dz": np.where(thin, rng.uniform(0.002, 0.01, shape),
                       np.where(thick, rng.uniform(0.2, 0.8, shape), rng.uniform(0.02, 0.2, shape))),
        "ssa": np.where(thin, rng.uniform(20, 70, shape), rng.uniform(5, 40, shape)),
        "density": np.where(thin, rng.uniform(80, 300, shape), rng.uniform(250, 500, shape)),
        "soot": 10 ** rng.uniform(-10, -8, shape), "dust": 10 ** rng.uniform(-8, -6, shape)}
    profiles["dz"][0, :2], profiles["ssa"][0, :2], profiles["density"][0, :2] = (0.005, 0.5), (40, 15), (150, 400)
    for values in profiles.values():
        values[absent] = np.nan
    profiles.update(cos_illum=rng.uniform(0.1, 0.95, n), direct_sw=rng.uniform(0, 800, n),
                    diffuse_sw=rng.uniform(20, 300, n), soil_albedo=rng.uniform(0.05, 0.5, n),
                    cos_zenith=rng.uniform(0.1, 0.95, n))
    return profiles


@pytest.fixture(scope="session")
def write_profiles_shard():
    """write(path, region, season, n, seed): a shard of `profiles_samples`."""
    def write(path, region, season, n, seed):
        with ShardWriter(path, n, {"region": region, "season": season}) as writer:
            writer.write(profiles_samples(region, season, n, seed))
        return path
    return write


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory, write_profiles_shard):
    """Three seasons of a few hundred profiles, written once per test session."""
    root = tmp_path_factory.mktemp("shards")
    for i, season in enumerate(SEASONS):
        write_profiles_shard(root / "Alpes" / season, "Alpes", season, 300 + 40 * i, seed=i)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The run directory of a run of main.py on three short embedded seasons (2 points, Nov 1 to
    Dec 15) and a few wide-domain profiles, with a tiny energy-budget model trained one epoch,
    built once per session: the default path (synthetic Crocus files, preprocessing, sampled
    profiles, training, test report) in miniature, for the evaluation set and the figures."""
    import json

    import main

    root = tmp_path_factory.mktemp("tiny_run")
    main.main(["--quick", "--crocus_dir", str(root / "crocus"), "--shard_dir", str(root / "shards"),
               "--sampled_dir", str(root / "sampled"), "--sampled_train", "200", "--sampled_validation", "100",
               "--sampled_test", "200", "--run_dir", str(root / "run"), "--ship_dir", str(root / "shipped"),
               "--threads", "1", "--embedded_points", "2", "--embedded_seasons", "3", "--embedded_start_day", "92",
               "--embedded_days", "45", "--epochs", "1", "--model", "optical_budget",
               "--model_settings", json.dumps(TINY_BUDGET)])
    return root / "run"
