import json
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import main
import utils.evaluation as evaluation
from models import Emulator
from preprocessing.shards import LAYER_VARIABLES, SCALAR_VARIABLES, open_shard
from tests.test_training import TINY_MODEL
from utils.evaluation import evaluation_set, open_run, select
from utils.report import error_metrics

_RUN = {}


def tiny_run(tmp_path_factory):
    """A run of main.py on three short embedded seasons (2 points, Nov 1 to Dec 15) and a few
    wide-domain profiles, built once per session: the default path (synthetic Crocus files,
    preprocessing, sampled profiles, training, test report) in miniature."""
    if "run" not in _RUN:
        root = tmp_path_factory.mktemp("tiny_run")
        main.main(["--quick", "--crocus_dir", str(root / "crocus"), "--shard_dir", str(root / "shards"),
                   "--sampled_dir", str(root / "sampled"), "--sampled_train", "200", "--sampled_validation", "100",
                   "--sampled_test", "200", "--run_dir", str(root / "run"), "--ship_dir", str(root / "shipped"),
                   "--threads", "1",
                   "--embedded_points", "2", "--embedded_seasons", "3", "--embedded_start_day", "92",
                   "--embedded_days", "45", "--epochs", "1", "--model", "cnn_seed", "--model_settings", TINY_MODEL])
        _RUN["run"] = root / "run"
    return _RUN["run"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_evaluation_set_holds_the_test_samples_and_agrees_with_the_test_report(run_dir):
    run = open_run(run_dir)
    df = evaluation_set(run)
    shards = [open_shard(p) for p in run.splits["test"]]
    assert len(df) == sum(len(s) for s in shards) > 100
    assert str(df["time"].dt.tz) == "UTC" and df["time"].dt.month.isin([11, 12]).all()
    shard = shards[0]
    rows = df["row"].to_numpy()[:50]
    np.testing.assert_array_equal(df["surface_ssa"][:50], shard.layers[rows, LAYER_VARIABLES.index("ssa"), 0])
    np.testing.assert_array_equal(df["target"][:50], shard.target[rows].astype(np.float64))
    np.testing.assert_array_equal(df["n_layers"][:50], shard.mask[rows].sum(axis=1))
    np.testing.assert_allclose(df["snow_depth"][:50], (shard.layers[rows, 0] * shard.mask[rows]).sum(axis=1), rtol=1e-6)
    # The prediction is Emulator.predict's, on the profile as the labeller takes it (NaN where absent).
    emulator = Emulator.load(run.model_file)
    nan_layers = [np.where(shard.mask[rows], shard.layers[rows, i], np.nan) for i in range(5)]
    illumination = [shard.scalars[rows, SCALAR_VARIABLES.index(name)] for name in ("cos_sza", "direct_sw", "diffuse_sw")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few test profiles lie outside the training domain
        expected = emulator.predict(*nan_layers, *illumination)
    np.testing.assert_allclose(df["prediction"][:50], expected, rtol=1e-6)
    # Same numbers as main.py's test report, computed through the training code path.
    report = json.loads((run_dir / "test_report.json").read_text())["test"]["overall"]
    mine = error_metrics(df["prediction"], df["target"])
    assert mine["n"] == report["n"]
    for key in ("mae", "rmse", "bias"):
        assert mine[key] == pytest.approx(report[key], rel=1e-5, abs=1e-7)


def test_wide_range_profiles_are_evaluated_like_the_seasons(run_dir):
    df = evaluation_set(run_dir, split="wide_range")
    assert len(df) == 200 and df["time"].isna().all() and set(df["region"]) == {"sampled"}
    report = json.loads((run_dir / "test_report.json").read_text())["wide_range"]["overall"]
    assert error_metrics(df["prediction"], df["target"])["mae"] == pytest.approx(report["mae"], rel=1e-5)
    assert select(df, start="2000-01-01").empty  # no time: outside any date range


def test_cache_is_reused_and_refreshed_when_model_or_data_change(run_dir, tmp_path, monkeypatch):
    run_copy = tmp_path / "run"
    shutil.copytree(run_dir, run_copy)
    for cached in run_copy.glob("evaluation_*.parquet"):
        cached.unlink()
    calls = []
    compute = evaluation.compute
    monkeypatch.setattr(evaluation, "compute", lambda *a, **k: calls.append(1) or compute(*a, **k))

    first = evaluation_set(run_copy)
    assert (run_copy / "evaluation_test.parquet").is_file() and len(calls) == 1
    pd.testing.assert_frame_equal(evaluation_set(run_copy), first)
    assert len(calls) == 1  # from the cache
    evaluation_set(run_copy, refresh=True)
    assert len(calls) == 2

    # A different model (same file name): recomputed, with its own predictions.
    emulator = Emulator.load(run_copy / "best.pt")
    with torch.no_grad():
        next(emulator.model.parameters()).add_(0.05)
    emulator.save(run_copy / "best.pt")
    changed = evaluation_set(run_copy)
    assert len(calls) == 3 and not np.allclose(changed["prediction"], first["prediction"])
    np.testing.assert_array_equal(changed["target"], first["target"])

    # Changed data (a shard file rewritten): recomputed.
    target = open_run(run_copy).splits["test"][0] / "target.npy"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    evaluation_set(run_copy)
    assert len(calls) == 4
    evaluation_set(run_copy)
    assert len(calls) == 4


def test_select_by_metadata_dates_and_hours(run_dir):
    df = evaluation_set(run_dir)
    points = sorted(df["point"].unique())
    assert len(points) == 2
    one = select(df, point=points[0])
    assert len(one) and set(one["point"]) == {points[0]}
    zs = one["ZS"].iloc[0]
    assert len(select(df, altitude=(zs, zs))) == (df["ZS"] == zs).sum()
    assert select(df, massif=-5).empty
    window = select(df, start="2012-11-10", end=pd.Timestamp("2012-11-20 06:00", tz="UTC"), hours=[11, 12])
    assert len(window) > 0
    assert window["time"].min() >= pd.Timestamp("2012-11-10", tz="UTC")
    assert window["time"].max() < pd.Timestamp("2012-11-20 06:00", tz="UTC")
    assert set(window["time"].dt.hour) <= {11, 12}
    both = select(df, aspect=sorted(df["aspect"].unique()), slope=sorted(df["slope"].unique()))
    assert len(both) == len(df)


def test_runs_open_from_a_run_directory_or_a_shipped_model(run_dir, tmp_path, monkeypatch):
    run = open_run(run_dir)
    assert run.model_file == run_dir / "best.pt" and run.metrics_file == run_dir / "metrics.csv"
    assert run.cache_dir == run_dir and len(run.splits["test"]) == 1 and len(run.splits["wide_range"]) == 1

    shipped = tmp_path / "data"
    shipped.mkdir()
    shutil.copyfile(run_dir / "best.pt", shipped / "emulator.pt")
    from_model = open_run(shipped)
    # Without the run's splits, the seasons are split again from the configuration in the model.
    assert from_model.splits["test"] == run.splits["test"] and "wide_range" not in from_model.splits
    assert from_model.metrics_file is None and from_model.cache_dir != shipped
    shutil.copyfile(run_dir / "splits.json", shipped / "emulator_splits.json")
    shutil.copyfile(run_dir / "metrics.csv", shipped / "emulator_metrics.csv")
    from_model = open_run(shipped)
    assert from_model.splits == run.splits and from_model.metrics_file == shipped / "emulator_metrics.csv"

    # The default run: the run directory behind the shipped model while it holds that model.
    monkeypatch.setattr(evaluation, "SHIPPED_DIR", shipped)
    (shipped / "emulator_report.json").write_text(json.dumps({"run_dir": str(run_dir)}))
    assert evaluation.default_run() == run_dir
    (shipped / "emulator.pt").write_bytes((shipped / "emulator.pt").read_bytes() + b"\0")
    assert evaluation.default_run() == shipped

    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        open_run(tmp_path)
    with pytest.raises(ValueError, match="no split 'wide'"):
        evaluation_set(run, split="wide")
