import json
from pathlib import Path

import matplotlib.image
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import plot.all as plot_all
from plot import albedo_distribution, deposition, error_breakdown, snowpack, style
from tests.test_evaluation import tiny_run
from utils.evaluation import evaluation_set, open_run, season_files


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


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

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(style, "DPI", 50)
        patch.setattr(style, "save", keep)
        paths = plot_all.plot_all(run_dir, out, device="cpu")
    assert sorted(paths) == sorted(kept)
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
                     "snowpack", "error_breakdown"}
    assert len([p for p in figures if p.parent.name == "scatter"]) == 4
    for path in figures:
        assert path.is_file() and path.parent.parent == out
        assert_image(path)
    assert not list(out.rglob("tmp-*"))


def test_scatter_and_learning_curves_print_the_report_figures(run_dir, every_figure):
    overall = report(run_dir)["overall"]
    shown = texts(figure_of(every_figure, "scatter", "surface_dust"))
    assert f"n = {overall['n']:,}" in shown
    assert f"MAE = {overall['mae']:.4f}" in shown and f"RMSE = {overall['rmse']:.4f}" in shown
    assert f"bias = {overall['bias']:+.4f}" in shown
    assert f"test MAE of the selected model: {overall['mae']:.4f}" in texts(figure_of(every_figure, "learning_curves"))


def test_error_breakdown_bars_equal_the_test_report_bins(run_dir, every_figure):
    figure = figure_of(every_figure, "error_breakdown")
    axes = dict(zip(error_breakdown.QUANTITIES, figure.axes))
    for name, group in report(run_dir)["by"].items():
        mae_bars, bias_bars = axes[name].containers[:2]
        for bar_mae, bar_bias, expected in zip(mae_bars, bias_bars, group["bins"], strict=True):
            if expected["n"] == 0:
                assert np.isnan(bar_mae.get_height())
                continue
            assert bar_mae.get_height() == pytest.approx(expected["mae"], rel=1e-5, abs=1e-7)
            assert bar_bias.get_height() == pytest.approx(expected["bias"], rel=1e-5, abs=1e-7)
        assert f"n={group['bins'][0]['n']:,}" in texts(figure)


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
    with pytest.raises(ValueError, match="no test sample matches massif -5"):
        albedo_distribution.plot(run_dir, tmp_path, massif=[-5])
    with pytest.raises(ValueError, match="no time 1999"):
        snowpack.plot(run_dir, tmp_path, point=0, time="1999-01-01 12:00")
