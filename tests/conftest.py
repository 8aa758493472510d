"""Fixtures shared by the test modules: tiny shards of labelled profiles, and a tiny run of the
default pipeline (synthetic Crocus seasons -> preprocessing -> training -> report)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preprocessing.shards import Samples, ShardWriter
from preprocessing.tartes_labels import energy_budget
from utils.schema import N_LAYERS, SCALAR_VARIABLES

SEASONS = ("2001080106_2002080106", "2002080106_2003080106", "2003080106_2004080106")
TINY_CNN = {"channels": [8, 8], "hidden": [32, 16]}
TINY_BUDGET = {"wavelengths_nm": [400.0, 800.0, 1300.0], "hidden": [16]}


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
    columns = {"cos_illum": rng.uniform(0.05, 0.95, n), "cos_sza": rng.uniform(0.05, 0.95, n),
               "direct_sw": np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 800, n)),
               "diffuse_sw": rng.uniform(5, 300, n)}
    columns = {k: v.astype(np.float32) for k, v in columns.items()}
    columns["snow_depth"] = np.where(mask, layers[:, 0], 0).sum(axis=1)
    # Labels of exactly the float32 values stored, absent layers as NaN.
    as_nan = [np.where(mask, layers[:, i].astype(np.float64), np.nan) for i in range(5)]
    budget = energy_budget(*as_nan, columns["cos_illum"], columns["direct_sw"], columns["diffuse_sw"])
    meta = pd.DataFrame({"region": region, "season": season, "time": pd.Timestamp(season[:8]), "point": 0,
                         "massif": 3, "ZS": 1800.0, "slope": slope, "aspect": -1.0}, index=range(n))
    return Samples(layers, mask, np.stack([columns[k] for k in SCALAR_VARIABLES], axis=1), budget.albedo,
                   np.nan_to_num(budget.absorbed), budget.soil, meta)


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
