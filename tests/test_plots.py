"""The figures of plot/ on a tiny run of main.py (tests/conftest.py `tiny_run`, an energy-budget
model): every script writes a non-empty figure under the folder asked (never graphs/), and the
numbers drawn are those of the test report, the evaluation set and its errors by layer."""
import json
from pathlib import Path

import matplotlib.image
import matplotlib.patches
import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg

import plot.all as plot_all
from plot import (absorbed_profile, albedo_distribution, deposition, error_breakdown, layer_errors, snowpack, style,
                  top_layer_season)
from plot.evaluation import evaluation_set, open_run, sample_budget, season_files
from utils.report import BINS

pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return tiny_run


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    monkeypatch.setattr(style, "DPI", 50)  # rendering is most of a script's time


@pytest.fixture(scope="module")
def every_figure(run_dir, tmp_path_factory):
    """plot.all on the tiny run: {path: figure} of every figure written, the figures kept for inspection."""
    out, kept = tmp_path_factory.mktemp("graphs"), {}
    save = style.save

    def keep(figure, path):
        kept[Path(path)] = figure
        return save(figure, path)

    committed = {p: p.stat().st_mtime_ns for p in style.GRAPHS.rglob("*")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(style, "DPI", 50)
        patch.setattr(style, "save", keep)
        paths = plot_all.plot_all(run_dir, out, device="cpu")
    assert sorted(paths) == sorted(kept)
    assert {p: p.stat().st_mtime_ns for p in style.GRAPHS.rglob("*")} == committed  # graphs/ untouched
    return out, kept


def texts(figure) -> str:
    return "\n".join(t.get_text() for t in figure.findobj(matplotlib.text.Text))


def report(run_dir) -> dict:
    return json.loads((run_dir / "test_report.json").read_text())["test"]


def figure_of(every_figure, kind: str, name: str = ""):
    [figure] = [f for path, f in every_figure[1].items() if path.parent.name == kind and name in path.name]
    return figure


def assert_image(path):
    assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 150 and pixels.shape[1] > 300
    assert pixels[..., :3].std() > 0.05  # not blank


def test_every_script_writes_a_non_empty_figure(every_figure):
    out, figures = every_figure
    kinds = {p.parent.name for p in figures}
    assert kinds == {"albedo_distribution", "scatter", "season", "diurnal", "learning_curves", "deposition", "inputs",
                     "snowpack", "error_breakdown", "absorbed_profile", "layer_errors", "top_layer_season"}
    assert len([p for p in figures if p.parent.name == "scatter"]) == 5  # 4 of the albedo, 1 of the top layer
    for path in figures:
        assert path.is_file() and path.parent.parent == out
        assert_image(path)
    assert not list(out.rglob("*.tmp-*"))


def test_scatter_and_learning_curves_print_the_report_figures(run_dir, every_figure):
    overall = report(run_dir)["overall"]
    shown = texts(figure_of(every_figure, "scatter", "test_surface_dust"))
    albedo = overall["albedo"]
    assert f"n = {overall['n']:,}" in shown
    assert f"MAE = {albedo['mae']:.4f}" in shown and f"RMSE = {albedo['rmse']:.4f}" in shown
    assert f"bias = {albedo['bias']:+.4f}" in shown
    top = texts(figure_of(every_figure, "scatter", "test_top_surface_ssa"))
    assert f"MAE = {overall['top_layer']['mae']:.4f}" in top and "absorbed in the top layer" in top
    curves = texts(figure_of(every_figure, "learning_curves"))
    assert f"test albedo MAE of the selected model: {albedo['mae']:.5f}" in curves
    assert f"test profile error: {overall['profile']['mean']:.5f}" in curves


def test_error_breakdown_bars_equal_the_test_report_bins(run_dir, every_figure):
    figure = figure_of(every_figure, "error_breakdown")
    axes = np.array(figure.axes[:3 * len(BINS)]).reshape(3, len(BINS))
    assert error_breakdown.QUANTITIES == tuple(BINS)
    for column, name in enumerate(error_breakdown.QUANTITIES):
        bins = report(run_dir)["by"][name]["bins"]
        for row, (metric, statistics) in enumerate((("albedo", ("mae", "bias")), ("top_layer", ("mae", "bias")),
                                                    ("profile", ("mean",)))):
            for bars, statistic in zip(axes[row, column].containers, statistics, strict=True):
                for bar, expected in zip(bars, bins, strict=True):
                    if expected["n"] == 0:
                        assert np.isnan(bar.get_height())
                        continue
                    assert bar.get_height() == pytest.approx(expected[metric][statistic], rel=1e-5, abs=1e-7), \
                        (name, metric, statistic)
        assert error_breakdown.count(bins[0]["n"]) in texts(figure)


def overlapping(extents) -> bool:
    return any(a.overlaps(b) for i, a in enumerate(extents) for b in extents[i + 1:])


def test_error_breakdown_counts_do_not_overlap():
    """Bins of equal bars and large counts, in a panel of the figure's size: the count labels of
    neighbouring bins stay apart (written in full, 'n=1,234,567', they overlapped)."""
    assert max(len(error_breakdown.count(n)) for n in (0, 999, 9_950, 999_499, 999_500, 12_345_678)) <= 6
    assert [error_breakdown.count(n) for n in (950, 12_345, 999_500, 1_234_567)] == ["n=950", "n=12k", "n=1.0M",
                                                                                     "n=1.2M"]
    style.use()
    width, height = error_breakdown.PANEL
    figure, axes = plt.subplots(3, len(BINS), figsize=(width * len(BINS), height * 3 + 1), constrained_layout=True)
    edges = BINS["cos_illum"][0]
    rows = [{"low": low, "high": high, "n": 1_234_567, "albedo": {"mae": 0.001, "bias": 0.0005}}
            for low, high in zip(edges[:-1], edges[1:])]
    for ax in axes.flat:
        error_breakdown.draw(ax, rows, "albedo", error_breakdown.ROWS[0][3], annotate=True)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels = [text.get_window_extent(renderer) for text in axes[0, 0].texts]
    plt.close(figure)
    assert len(labels) == len(rows) and not overlapping(labels)


def test_titles_name_the_model_in_words_and_legends_stay_off_the_curves(run_dir, every_figure):
    name = open_run(run_dir).name
    assert name == f"energy-budget emulator (optical_budget), run {run_dir.name}"
    for path, figure in every_figure[1].items():
        assert "optical_budget (run)" not in texts(figure), path  # a folder's name was the model's
    assert name in figure_of(every_figure, "error_breakdown").get_suptitle()
    profile = figure_of(every_figure, "absorbed_profile")
    canvas = FigureCanvasAgg(profile)  # the figure was closed once saved
    canvas.draw()
    renderer = canvas.get_renderer()
    [legend] = profile.legends  # one, for both panels, outside them
    assert not [ax.get_legend() for ax in profile.axes if ax.get_legend() is not None]
    for ax in profile.axes[:2]:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_absorbed_profile_draws_the_samples_budget(run_dir, every_figure):
    figure = figure_of(every_figure, "absorbed_profile")
    per_layer, cumulative = figure.axes[:2]
    run = open_run(run_dir)
    sample = absorbed_profile.choose(run, "test")
    budget = sample_budget(run, sample)
    steps = [p for p in per_layer.patches if isinstance(p, matplotlib.patches.StepPatch)]
    assert [s.get_label() for s in steps] == ["TARTES (label)", "emulator"]
    for step, column in zip(steps, ("target", "prediction")):
        values, edges, _ = step.get_data()
        np.testing.assert_allclose(values, np.maximum(budget.layers[column], absorbed_profile.FLOOR) * budget.shortwave)
        np.testing.assert_allclose(edges[1:], budget.layers["bottom"])
    target_line, prediction_line = cumulative.lines[:2]
    np.testing.assert_allclose(target_line.get_xdata()[-1], budget.layers["target_w_m2"].sum())
    np.testing.assert_allclose(prediction_line.get_xdata()[-1], budget.layers["prediction_w_m2"].sum())
    assert per_layer.get_ylim()[0] > per_layer.get_ylim()[1] == 0  # depth grows downwards
    shown = texts(figure)
    assert f"albedo TARTES {budget.albedo_target:.4f}, emulator {budget.albedo_prediction:.4f}" in shown
    assert "W m⁻²" in per_layer.get_xlabel() and "depth" in per_layer.get_ylabel()


def test_layer_errors_bars_are_the_errors_by_layer(run_dir, every_figure):
    from plot.evaluation import layer_errors as errors_of

    figure = figure_of(every_figure, "layer_errors")
    errors = errors_of(run_dir)
    by_layer = errors["by_layer"][errors["by_layer"]["n"] > 0]
    left, right = figure.axes[0], figure.axes[1]
    np.testing.assert_allclose([b.get_height() for b in left.containers[0]], by_layer["mae"])
    assert left.containers[1][0].get_height() == pytest.approx(errors["soil"]["mae"].iloc[0])
    np.testing.assert_allclose([b.get_height() for b in right.containers[0]], errors["by_depth"]["mae"])
    assert "MAE of the absorbed fraction" in left.get_ylabel() and "(m)" in right.get_xlabel()


def test_top_layer_season_draws_daily_means_of_the_energy(run_dir, every_figure):
    figure = figure_of(every_figure, "top_layer_season")
    df = evaluation_set(run_dir)
    point = int(figure.get_suptitle().split("point ")[1].split(":")[0])
    samples = df[df["point"] == point]
    energy = samples["top_target"] * samples["shortwave"].astype(np.float64)
    daily = energy.groupby(samples["time"].dt.floor("D")).sum() / 24
    target, prediction = figure.axes[0].lines[:2]
    drawn = pd.Series(target.get_ydata(), index=pd.DatetimeIndex(target.get_xdata())).dropna()
    np.testing.assert_allclose(drawn.to_numpy(), daily.to_numpy(), rtol=1e-6)
    assert target.get_label() == "TARTES (label)" and prediction.get_label() == "emulator"
    assert "W m⁻²" in figure.axes[0].get_ylabel()


def test_deposition_from_profiles_is_at_most_the_forcing_deposition(run_dir, tmp_path):
    run = open_run(run_dir)
    info = evaluation_set(run)[["region", "season"]].iloc[0]
    pro_file, forcing_file = season_files(run, info["region"], info["season"])
    with xr.open_dataset(forcing_file) as forcing, xr.open_dataset(pro_file) as pro:
        fluxes = deposition.from_forcing(forcing, forcing_file, slice(None))
        gained = deposition.from_profiles(pro, pro_file, None)
    assert fluxes["hours"].sum() == gained["hours"].sum() == len(pd.DatetimeIndex(xr.open_dataset(pro_file).time))
    for name, n in deposition.IMPURITIES.items():
        deposited = fluxes[f"IMPWET{n}"].sum() + fluxes[f"IMPDRY{n}"].sum()
        # What the snow gains comes from what falls (minus what falls on bare ground or runs off).
        assert 0 < gained[name].sum() <= deposited * 1.001, name
    [path] = deposition.plot(run, tmp_path, source="profiles")
    assert path.name.endswith("_profiles.png")
    assert_image(path)


def test_command_lines_and_bad_selections(run_dir, tmp_path):
    path = albedo_distribution.main(["--run", str(run_dir), "--out", str(tmp_path), "--hours", "10", "11", "12",
                                     "--start", "2012-11-01"])
    assert path.parent == tmp_path
    assert_image(path)
    # A night-time snowpack: drawn from the PRO file, without albedos.
    df = evaluation_set(run_dir)
    deepest = df.loc[df["snow_depth"].idxmax()]
    night = (deepest["time"].floor("D") + pd.Timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
    path = snowpack.main(["--run", str(run_dir), "--out", str(tmp_path), "--point", str(deepest["point"]),
                          "--time", night])
    assert path.name == f"snowpack_point{deepest['point']}_{night[:10].replace('-', '')}02.png"
    assert_image(path)
    # The absorbed profile of a drawn wide-range profile, and of a chosen time; the hourly season.
    path = absorbed_profile.main(["--run", str(run_dir), "--out", str(tmp_path), "--split", "wide_range", "--row", "3"])
    assert path.name == "absorbed_profile_wide_range_sampled_point3.png"
    assert_image(path)
    when = deepest["time"].strftime("%Y-%m-%d %H:%M")
    path = absorbed_profile.main(["--run", str(run_dir), "--out", str(tmp_path), "--point", str(deepest["point"]),
                                  "--time", when])
    assert path.name == f"absorbed_profile_test_{deepest['region']}_point{deepest['point']}_{deepest['time']:%Y%m%d%H}.png"
    [path] = top_layer_season.main(["--run", str(run_dir), "--out", str(tmp_path), "--resolution", "hourly",
                                    "--point", str(deepest["point"]), "--start", "2012-11-20", "--end", "2012-11-27"])
    assert path.name.endswith("_hourly.png")
    assert_image(path)
    assert_image(layer_errors.main(["--run", str(run_dir), "--out", str(tmp_path), "--split", "wide_range"]))
    with pytest.raises(ValueError, match="no test sample matches massif -5"):
        albedo_distribution.plot(run_dir, tmp_path, massif=[-5])
    with pytest.raises(ValueError, match="no time 1999"):
        snowpack.plot(run_dir, tmp_path, point=0, time="1999-01-01 12:00")
    with pytest.raises(ValueError, match="choose a daylight time"):
        absorbed_profile.plot(run_dir, tmp_path, point=int(deepest["point"]), time=night)
    with pytest.raises(ValueError, match="--row 999: the test split has rows 0 to"):
        absorbed_profile.plot(run_dir, tmp_path, row=999)
