"""The evaluation set of plot/evaluation.py on a tiny run of main.py (tests/conftest.py `tiny_run`):
its columns are the shards' values, the test report's per-sample quantities and the emulator as
users call it; its errors are the test report's; the cache follows the model and the data; one
sample's whole budget and the errors by layer; albedo-only models. The test report's categories
(light rule, impurity kind) against the yardstick's tags and the sampler's draws, its tables by
category, and `main.py --evaluate`, which writes a model file's report without training."""
import json
import os
import re
import shutil
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import torch

import main
import plot.evaluation as evaluation
from dataset import ShardDataset, profile_arguments
from models import Emulator, build_model
from plot.evaluation import evaluation_set, layer_errors, open_run, sample_budget, select
from preprocessing.profile_sampler import IMPURITIES, draw_profiles
from preprocessing.shards import open_shard
from preprocessing.tartes_labels import energy_budget
from tests.conftest import TINY_CNN
from utils.config import UsageError
from utils.report import BINS, CATEGORIES, error_metrics, impurity_kind, light_rule, report_markdown, truncation_regime
from utils.report import test_report as make_test_report  # not collected as a test
from utils.schema import COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DUST, DZ, SOIL_ALBEDO, SOOT, SSA

YARDSTICK = evaluation.REPO / "data" / "surfex_tartes_cases.npz"

pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return tiny_run


def report_errors(df):
    return error_metrics({"albedo": df["albedo_error"].to_numpy(), "top_layer": df["top_error"].to_numpy(),
                          "profile": df["profile_error"].to_numpy()})


def test_evaluation_set_holds_the_test_samples_and_agrees_with_the_test_report(run_dir):
    run = open_run(run_dir)
    df = evaluation_set(run)
    shards = [open_shard(p) for p in run.splits["test"]]
    assert len(df) == sum(len(s) for s in shards) > 100
    assert str(df["time"].dt.tz) == "UTC" and df["time"].dt.month.isin([11, 12]).all()
    shard, rows = shards[0], df["row"].to_numpy()[:50]
    np.testing.assert_array_equal(df["surface_ssa"][:50], shard.layers[rows, SSA, 0])
    np.testing.assert_array_equal(df["surface_dust"][:50], shard.layers[rows, DUST, 0])
    np.testing.assert_array_equal(df["cos_illum"][:50], shard.scalars[rows, COS_ILLUM])
    np.testing.assert_array_equal(df["cos_zenith"][:50], shard.scalars[rows, COS_ZENITH])
    np.testing.assert_array_equal(df["albedo_target"][:50], shard.albedo[rows].astype(np.float64))
    np.testing.assert_array_equal(df["top_target"][:50], shard.absorbed[rows, 0].astype(np.float64))
    np.testing.assert_array_equal(df["soil_target"][:50], shard.soil[rows].astype(np.float64))
    np.testing.assert_array_equal(df["n_layers"][:50], shard.mask[rows].sum(axis=1))
    np.testing.assert_allclose(df["snow_depth"][:50], (shard.layers[rows, DZ] * shard.mask[rows]).sum(axis=1), rtol=1e-6)
    # The test report's per-sample quantities are the dataset's, computed there only.
    for name, values in ShardDataset(run.splits["test"]).report_columns().items():
        np.testing.assert_array_equal(df[name], values, err_msg=name)
    # The predictions are Emulator.energy_budget's, on the profiles as the labeller takes them.
    emulator = Emulator.load(run.model_file)
    budget = emulator.energy_budget(**profile_arguments(shard.layers[rows], shard.mask[rows], shard.scalars[rows]))
    np.testing.assert_allclose(df["albedo_prediction"][:50], budget.albedo, rtol=1e-6)
    np.testing.assert_allclose(df["top_prediction"][:50], budget.absorbed[:, 0], rtol=1e-6)
    np.testing.assert_allclose(df["soil_prediction"][:50], budget.soil, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(df["albedo_error"], df["albedo_prediction"] - df["albedo_target"], atol=1e-15)
    profile = (np.nansum(np.abs(budget.absorbed - np.where(shard.mask[rows], shard.absorbed[rows], np.nan)), axis=1)
               + np.abs(budget.soil - shard.soil[rows]))
    np.testing.assert_allclose(df["profile_error"][:50], profile, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(df["top_error_w_m2"], df["top_error"] * df["shortwave"], rtol=1e-6)
    # Same numbers as main.py's test report, computed through the training code path.
    report = json.loads((run_dir / "test_report.json").read_text())["test"]["overall"]
    mine = report_errors(df)
    assert mine["n"] == report["n"]
    for name, keys in (("albedo", ("mae", "rmse", "bias")), ("top_layer", ("mae", "bias")), ("profile", ("mean",))):
        for key in keys:
            assert mine[name][key] == pytest.approx(report[name][key], rel=1e-5, abs=1e-7), (name, key)


def test_wide_range_profiles_are_evaluated_like_the_seasons(run_dir):
    df = evaluation_set(run_dir, split="wide_range")
    assert len(df) == 200 and df["time"].isna().all() and set(df["region"]) == {"sampled"}
    assert df["cos_zenith"].notna().all() and df["cos_illum"].notna().all()  # drawn profiles have a sun too
    report = json.loads((run_dir / "test_report.json").read_text())["wide_range"]["overall"]
    mine = report_errors(df)
    assert mine["albedo"]["mae"] == pytest.approx(report["albedo"]["mae"], rel=1e-5)
    assert mine["profile"]["mean"] == pytest.approx(report["profile"]["mean"], rel=1e-5)
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
    assert evaluation.cached_fingerprint(run_copy / "evaluation_test.parquet")["format"] == evaluation.EVALUATION_FORMAT
    pd.testing.assert_frame_equal(evaluation_set(run_copy), first)
    layer_errors(run_copy)
    assert len(calls) == 1  # from the cache, the errors by layer too
    evaluation_set(run_copy, refresh=True)
    assert len(calls) == 2
    assert not list(run_copy.glob("*.tmp-*"))

    # A different model (same file name): recomputed, with its own predictions.
    emulator = Emulator.load(run_copy / "best.pt")
    with torch.no_grad():
        next(emulator.model.parameters()).add_(0.05)
    emulator.save(run_copy / "best.pt")
    changed = evaluation_set(run_copy)
    assert len(calls) == 3 and not np.allclose(changed["albedo_prediction"], first["albedo_prediction"])
    np.testing.assert_array_equal(changed["albedo_target"], first["albedo_target"])

    # Changed data (a shard file rewritten): recomputed.
    target = open_run(run_copy).splits["test"][0] / "albedo.npy"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    evaluation_set(run_copy)
    assert len(calls) == 4
    evaluation_set(run_copy)
    assert len(calls) == 4


def test_one_samples_whole_budget_is_the_emulators_against_its_label(run_dir):
    run = open_run(run_dir)
    df = evaluation_set(run)
    sample = df.loc[df["n_layers"].idxmax()]
    budget = sample_budget(run, sample)
    shard = open_shard(evaluation.shard_of(run, sample["region"], sample["season"]))
    row = int(sample["row"])
    n = int(sample["n_layers"])
    layers = budget.layers
    assert list(layers["layer"]) == list(range(1, n + 1)) and n > 1
    np.testing.assert_allclose(layers["dz"], shard.layers[row, DZ, :n], rtol=1e-7)
    np.testing.assert_allclose(layers["bottom"], np.cumsum(shard.layers[row, DZ, :n].astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(layers["top"].iloc[1:], layers["bottom"].iloc[:-1], rtol=1e-12)
    np.testing.assert_array_equal(layers["target"], shard.absorbed[row, :n].astype(np.float64))
    assert budget.albedo_target == shard.albedo[row] and budget.soil_target == shard.soil[row]
    expected = Emulator.load(run.model_file).energy_budget(**profile_arguments(
        shard.layers[row:row + 1], shard.mask[row:row + 1], shard.scalars[row:row + 1]))
    np.testing.assert_allclose(layers["prediction"], expected.absorbed[0, :n], rtol=1e-12)
    assert budget.albedo_prediction == pytest.approx(sample["albedo_prediction"], rel=1e-5)  # float32, batch of 1
    assert layers["prediction"].iloc[0] == pytest.approx(sample["top_prediction"], rel=1e-5)
    # The energy is conserved, in W m-2 too.
    for kind, albedo, soil in (("target", budget.albedo_target, budget.soil_target),
                               ("prediction", budget.albedo_prediction, budget.soil_prediction)):
        assert albedo + layers[kind].sum() + soil == pytest.approx(1, abs=2e-6), kind
        np.testing.assert_allclose(layers[f"{kind}_w_m2"], layers[kind] * budget.shortwave, rtol=1e-12)
    assert budget.shortwave == pytest.approx(sample["shortwave"], rel=1e-6)


def test_errors_by_layer_and_depth_sum_up_the_profiles(run_dir):
    df = evaluation_set(run_dir)
    errors = layer_errors(run_dir)
    by_layer, by_depth, soil = errors["by_layer"], errors["by_depth"], errors["soil"]
    assert list(by_layer.index) == list(range(1, 51))
    # Layer k is present in the samples of at least k layers.
    np.testing.assert_array_equal(by_layer["n"], [(df["n_layers"] >= k).sum() for k in range(1, 51)])
    assert by_layer["mae"].iloc[0] == pytest.approx(np.abs(df["top_error"]).mean(), rel=1e-9)
    assert by_layer["bias"].iloc[0] == pytest.approx(df["top_error"].mean(), rel=1e-9)
    assert by_layer["mae_w_m2"].iloc[0] == pytest.approx(np.abs(df["top_error_w_m2"]).mean(), rel=1e-6)
    assert soil["mae"].iloc[0] == pytest.approx(np.abs(df["soil_error"]).mean(), rel=1e-9)
    assert by_depth["n"].sum() == df["n_layers"].sum()  # every present layer in one depth bin
    assert by_depth["low"].iloc[0] == 0 and np.isinf(by_depth["high"].iloc[-1])
    # The sum of |error| over layers and soil is the profile error.
    total = (by_layer["mae"].fillna(0) * by_layer["n"]).sum() + soil["mae"].iloc[0] * len(df)
    assert total == pytest.approx(df["profile_error"].sum(), rel=1e-6)


def test_albedo_only_models_have_albedo_columns_only(run_dir, tmp_path):
    run_copy = tmp_path / "run"
    shutil.copytree(run_dir, run_copy)
    for cached in run_copy.glob("evaluation_*.parquet"):
        cached.unlink()
    budget = Emulator.load(run_copy / "best.pt")
    model, settings = build_model("cnn_seed", TINY_CNN)
    Emulator("cnn_seed", asdict(settings), model, budget.domain, budget.config, {}).save(run_copy / "best.pt")
    df = evaluation_set(run_copy)
    assert {"albedo_target", "albedo_prediction", "albedo_error", "cos_illum", "shortwave"} <= set(df.columns)
    assert not evaluation.is_budget(df) and not {"top_target", "soil_prediction", "profile_error"} & set(df.columns)
    with pytest.raises(ValueError, match="gives the albedo only"):
        layer_errors(run_copy)
    with pytest.raises(ValueError, match="gives the albedo only"):
        sample_budget(run_copy, df.iloc[0])


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


def test_no_module_under_utils_imports_the_layers_above():
    """Issue 15: utils/ holds leaves; the evaluation set lives beside the plots."""
    import ast
    from pathlib import Path

    above = {"dataset", "models", "training", "main", "plot", "predict"}
    for path in sorted((Path(evaluation.REPO) / "utils").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & above, (path.name, imported & above)
    assert not (Path(evaluation.REPO) / "utils" / "evaluation.py").exists()


# ---------------------------------------------------------------------------------------------
# The test report's categories, and main.py --evaluate

def test_categories_are_the_yardsticks_tags():
    """impurity_kind gives the yardstick's tag on every row whose pack shows it (a buried dust layer
    needs a layer under the top one: packs of 1-3 layers tagged buried hold none, and are typical);
    light_rule gives its behind / no_diffuse tags on the rows with light."""
    with np.load(YARDSTICK) as cases:
        cases = {name: cases[name] for name in cases.files}
    kind = impurity_kind(cases["soot"], cases["dust"])
    n_layers = (~np.isnan(cases["dz"])).sum(axis=1)
    hidden = (cases["impurity_kind"] == 3) & (n_layers <= 3)
    np.testing.assert_array_equal(kind[~hidden], cases["impurity_kind"][~hidden])
    assert (kind[hidden] == 1).all() and 0 < hidden.sum() < 100
    assert np.bincount(kind, minlength=5).min() >= 178  # every kind present
    rule = light_rule(cases["cos_illum"], cases["diffuse_sw"], cases["cos_zenith"])
    lit = ~cases["night"]
    np.testing.assert_array_equal(rule[lit], np.select([cases["behind"], cases["no_diffuse"]], [1, 2], 0)[lit])
    assert (cases["behind"] & cases["no_diffuse"]).any()  # the sun behind the slope rules over Dumont's split
    # Without cos_zenith Crocus's rule for forcing without diffuse light does not apply.
    np.testing.assert_array_equal(light_rule([0.5, 0.5, -0.2], [0.0, 0.0, 0.0], [0.3, np.nan, np.nan]), [2, 0, 1])


def test_impurity_kinds_of_the_wide_domain_sampler():
    """The sampler's clean packs, surface dust events and very dark surfaces are found as drawn; its
    buried layers too, but where the top layer's background dust reaches an event's level."""
    profiles, drawn = draw_profiles(3000, seed=3)
    kind = impurity_kind(profiles["soot"], profiles["dust"])
    drawn_kind = np.array([list(IMPURITIES).index(name) for name in drawn["impurity"]])
    for code in (0, 2, 4):
        assert (kind[drawn_kind == code] == code).all(), CATEGORIES["impurity_kind"][code]
    assert (kind[drawn_kind == 3] == 3).mean() > 0.9
    found_dusty = (kind == 3) & (drawn_kind == 3)
    assert (np.nan_to_num(profiles["dust"][found_dusty, 1:]) >= 1e-4).any(axis=1).all()


def test_report_by_category_and_soil_albedo():
    """Hand-made errors: each row lands in the bin of its soil albedo (edges closed on the left, the
    last bin closed) and the category of its code; the markdown names the categories."""
    n = 8
    columns = {name: np.full(n, 0.5) for name in BINS} | {"shortwave": np.full(n, 100.0)}
    columns["n_layers"] = np.full(n, 3)
    columns["soil_albedo"] = np.array([0.05, 0.15, 0.2, 0.25, 0.35, 1.0, 0.1, 0.3])
    columns["light_rule"] = np.array([0, 0, 1, 1, 1, 2, 0, 0])
    columns["impurity_kind"] = np.array([0, 1, 2, 3, 4, 4, 4, 1])
    columns["truncation"] = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    error = np.array([1, 2, 3, 4, 5, 6, 7, 8]) * 1e-4
    target = {"albedo": np.full(n, 0.8), "absorbed": np.zeros((n, 50)), "soil": np.zeros(n)}
    prediction = {"albedo": 0.8 + error, "absorbed": np.zeros((n, 50)), "soil": np.zeros(n)}
    prediction["absorbed"][:, 0] = -error
    report = make_test_report(prediction, target, columns)

    def mae(name, i):
        return report["by"][name]["bins"][i]["albedo"]["mae"]

    soil = report["by"]["soil_albedo"]
    assert [b["n"] for b in soil["bins"]] == [2, 2, 2, 2] and soil["unit"] == "-"
    assert mae("soil_albedo", 0) == pytest.approx(4e-4) and mae("soil_albedo", 3) == pytest.approx(5.5e-4)
    light = report["by"]["light_rule"]["bins"]
    assert [b["label"] for b in light] == list(CATEGORIES["light_rule"]) and [b["n"] for b in light] == [4, 3, 1]
    assert mae("light_rule", 1) == pytest.approx(4e-4) and light[2]["top_layer"]["bias"] == pytest.approx(-6e-4)
    impurities = report["by"]["impurity_kind"]["bins"]
    assert [b["n"] for b in impurities] == [1, 2, 1, 1, 3] and mae("impurity_kind", 4) == pytest.approx(6e-4)
    assert impurities[4]["profile"]["mean"] == pytest.approx(6e-4)
    truncation = report["by"]["truncation"]["bins"]
    assert [b["n"] for b in truncation] == [6, 2] and mae("truncation", 1) == pytest.approx(7.5e-4)
    text = report_markdown(report, "t", {})
    assert "## by light rule\n" in text and "## by impurity kind\n" in text and "## by soil albedo (-)\n" in text
    assert "| sun behind the slope | 3 | 0.00040 |" in text and "| very dark surface | 3 | 0.00060 |" in text
    assert "| [0.35, 1) | 2 | 0.00055 |" in text


def test_report_columns_of_the_categories(run_dir):
    run = open_run(run_dir)
    for split in ("test", "wide_range"):
        dataset = ShardDataset(run.splits[split])
        columns = dataset.report_columns()
        rows = dataset.rows(np.arange(len(dataset)))
        scalars = rows["scalars"]
        np.testing.assert_array_equal(columns["soil_albedo"], scalars[:, SOIL_ALBEDO])
        np.testing.assert_array_equal(columns["light_rule"], light_rule(scalars[:, COS_ILLUM], scalars[:, DIFFUSE_SW],
                                                                        scalars[:, COS_ZENITH]))
        soot, dust = (np.where(rows["mask"], rows["layers"][:, i], np.nan) for i in (SOOT, DUST))
        np.testing.assert_array_equal(columns["impurity_kind"], impurity_kind(soot, dust))
        profiles = profile_arguments(rows["layers"], rows["mask"], scalars)
        np.testing.assert_array_equal(columns["truncation"], truncation_regime(
            energy_budget(**profiles).albedo, energy_budget(**profiles, truncation=False).albedo))
    assert len(set(columns["impurity_kind"])) >= 3 and len(set(columns["light_rule"])) >= 2  # the wide-range set


def numbers(tree) -> list[float]:
    """The numbers of a report, in order (None as NaN)."""
    if isinstance(tree, dict):
        return [x for value in tree.values() for x in numbers(value)]
    if isinstance(tree, list):
        return [x for value in tree for x in numbers(value)]
    return [np.nan if tree is None else float(tree)] if tree is None or isinstance(tree, (int, float)) else []


def labels(tree):
    """A report without its numbers: its keys, bin labels and units."""
    if isinstance(tree, dict):
        return {key: labels(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [labels(value) for value in tree]
    return tree if isinstance(tree, str) else 0


def test_evaluate_writes_a_model_files_report_without_training(run_dir, tmp_path, monkeypatch):
    """`main.py --evaluate`: the run's own report again, from the model file alone, into --run_dir;
    with --ship true into the ship directory that holds that model; nothing trained."""
    monkeypatch.setattr(main, "train", lambda *a, **k: pytest.fail("--evaluate trained"))
    out = tmp_path / "evaluated"
    report = main.main(["--evaluate", str(run_dir / "best.pt"), "--run_dir", str(out), "--threads", "1"])
    trained = json.loads((run_dir / "test_report.json").read_text())
    written = json.loads((out / "test_report.json").read_text())
    assert written == json.loads(json.dumps(report))
    for name in ("test", "wide_range"):
        assert set(written[name]["by"]) == set(BINS) | set(CATEGORIES)
        assert json.dumps(labels(written[name])) == json.dumps(labels(trained[name]))
        np.testing.assert_allclose(numbers(written[name]), numbers(trained[name]), rtol=1e-6)
    for key in ("model", "parameters", "macs_per_profile", "selected_epoch", "validation_mae", "splits"):
        assert written[key] == trained[key], key
    assert written["run_dir"] == str(out) and "epochs_trained" not in written
    markdown = (out / "test_report.md").read_text()
    assert "## by impurity kind" in markdown and "# Wide-range test set" in markdown

    # --ship true: the report goes beside the shipped model, when it is this model.
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copyfile(run_dir / "best.pt", shipped / "emulator.pt")
    main.main(["--evaluate", str(run_dir / "best.pt"), "--run_dir", str(out), "--ship", "true",
               "--ship_dir", str(shipped), "--threads", "1"])
    assert (shipped / "emulator_report.md").read_text() == (out / "test_report.md").read_text()
    assert json.loads((shipped / "emulator_report.json").read_text())["test"] == written["test"]

    other = tmp_path / "other.pt"
    emulator = Emulator.load(run_dir / "best.pt")
    with torch.no_grad():
        next(emulator.model.parameters()).add_(0.01)
    emulator.save(other)
    errors = {("--run_dir", str(run_dir)): f"--run_dir {run_dir}: its best.pt is another model than {other}",
              ("--ship", "true", "--ship_dir", str(shipped)): f"--ship true: {shipped / 'emulator.pt'} is not {other}",
              ("--quick",): "--evaluate reports a model file on the data of its own configuration"}
    for extra, message in errors.items():
        with pytest.raises(UsageError, match=re.escape(message)):
            main.main(["--evaluate", str(other), *extra])
    with pytest.raises(UsageError, match=re.escape(f"--evaluate {tmp_path / 'nosuch.pt'}: no emulator file")):
        main.main(["--evaluate", str(tmp_path / "nosuch.pt")])
    assert json.loads((run_dir / "test_report.json").read_text()) == trained  # the run's report kept
