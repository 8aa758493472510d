"""The emulator inside the snowpack model (benchmarks/online.py): a model that gives the labeller's
outputs runs exactly as TARTES; every run conserves the shortwave every hour; the figures follow
their definitions; the JSON has the issue's keys; the figure draws the series (tiny seasons)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import online
from plot import online as plot_online
from plot import style
from preprocessing import snowpack, synthetic
from preprocessing.tartes_labels import energy_budget
from tests.conftest import TINY_BUDGET, make_emulator

# Two points-weeks of the generator's first season from Nov 29 (snow falls; the sixth point's
# forcing has no diffuse light), as tests/test_synthetic.py's TINY.
TINY = dict(region="Alpes", points=6, seed=0, start_day=120, days=12)
FIGURES = {"points", "seasons", "melt_out_hours", "peak_swe_percent", "snow_depth_rmse_m",
           "surface_temperature_rmse_K", "albedo_mae", "diverged"}


class LabellerEmulator:
    """A stand-in with the Emulator's energy_budget that returns the labeller's outputs."""

    def energy_budget(self, dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *, soil_albedo=0.2,
                      cos_zenith=None, device=None, batch_size=4096):
        return energy_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw,
                             soil_albedo=soil_albedo, cos_zenith=cos_zenith)


@pytest.fixture(scope="module")
def season():
    real = synthetic.RealYear.load()
    points = synthetic.virtual_points(TINY["region"], TINY["points"], TINY["seed"])
    plan = synthetic.plan_season(real, 0, TINY["seed"], TINY["start_day"], TINY["days"])
    return (*online.season_inputs(real, points, plan), points.ALB_SOIL.to_numpy())


@pytest.fixture(scope="module")
def tiny_emulator(tmp_path_factory):
    path = tmp_path_factory.mktemp("online") / "emulator.pt"
    make_emulator(TINY_BUDGET, path)
    return path


def test_an_emulator_giving_the_labellers_outputs_runs_exactly_as_tartes(season):
    drive, light, soil_temp, soil_albedo = season
    runs = [snowpack.Snowpack.bare(soil_temp, soil_albedo).run(drive, light, radiation)
            for radiation in ("tartes", online.emulator_radiation(LabellerEmulator()))]
    assert runs[0].keys() == runs[1].keys()
    for name in runs[0]:
        np.testing.assert_array_equal(runs[1][name], runs[0][name], err_msg=name)
    assert (runs[0]["WSN_T_ISBA"][-1] > 10).sum() >= 3  # a real test: snow on most points


@pytest.mark.filterwarnings("ignore:.*outside the input domain")  # an untrained emulator on a season's packs
def test_every_run_conserves_the_shortwave_every_hour(season, tiny_emulator):
    from models import Emulator

    drive, light, soil_temp, soil_albedo = season
    radiations = {"tartes": "tartes", "emulator": online.emulator_radiation(Emulator.load(tiny_emulator)),
                  "gardner": "gardner"}
    for name, radiation in radiations.items():
        series = online.run_season(drive, light, soil_temp, soil_albedo, radiation)
        assert not online.diverged(series).any(), name
        residual = series["SW_IN"] - series["SW_REFLECTED"] - series["SW_SNOW"] - series["SW_GROUND"]
        # the emulator's fractions sum to 1 to float32 rounding, the labeller's and Gardner's to float64's
        tolerance = 1e-6 if name == "emulator" else 1e-9
        assert np.abs(residual).max() <= tolerance * series["SW_IN"].max(), name
        for part in ("SW_REFLECTED", "SW_SNOW", "SW_GROUND"):
            assert (series[part] >= -tolerance * series["SW_IN"].max()).all(), (name, part)
        snow = (series["WSN_T_ISBA"] > 0) & light.daylight
        assert snow.sum() > 100 and (series["SW_SNOW"][snow] > 0).mean() > 0.9, name


def test_a_point_whose_radiation_fails_diverges_alone(season):
    """A radiation that gives NaN for one point (found by its soil albedo) makes that point's state
    non-finite, and only that point's."""
    drive, light, soil_temp, soil_albedo = season

    def failing(layers, light_rows):
        budget = snowpack.tartes_radiation(layers, light_rows)
        budget.albedo[light_rows["soil_albedo"] == soil_albedo[2]] = np.nan
        return budget

    np.testing.assert_array_equal(online.diverged(online.run_season(drive, light, soil_temp, soil_albedo, failing)),
                                  np.arange(len(soil_albedo)) == 2)


class RefusedEmulator(LabellerEmulator):
    def energy_budget(self, dz, *args, **kwargs):
        if np.nanmax(dz) > 0.02:
            raise ValueError("dz: row 0, layer 0: a state the emulator refuses")
        return super().energy_budget(dz, *args, **kwargs)


def test_a_run_that_stops_counts_its_points_as_diverged(capsys):
    report, _ = online.online(RefusedEmulator(), seasons=1, **TINY)
    assert report["diverged"] == TINY["points"] and report["reference_signal"]["diverged"] == 0
    assert all(row["diverged"] for row in report["per_point"])
    assert "season 1/1, emulator: dz: row 0, layer 0: a state the emulator refuses: all its points diverged" \
        in capsys.readouterr().out


def test_the_run_of_a_season_does_not_depend_on_its_chunks(season, monkeypatch):
    drive, light, soil_temp, soil_albedo = season
    whole = online.run_season(drive, light, soil_temp, soil_albedo, "gardner")
    monkeypatch.setattr(synthetic, "CHUNK_SAMPLES", 5 * drive.shape[1])  # 5 hours a chunk
    chunked = online.run_season(drive, light, soil_temp, soil_albedo, "gardner")
    for name in online.SERIES:
        np.testing.assert_array_equal(chunked[name], whole[name], err_msg=name)


@pytest.mark.parametrize("swe, expected", [
    ([0, 5, 10, 3, 0.5, 2, 0.2], 4),  # the first hour below 1 kg m-2 after the peak
    ([2, 0.5, 8, 8, 0.9, 0], 4),  # melting before the peak does not count; the first hour of the peak
    ([0, 3, 1.0, 0.99], 3),  # 1 kg m-2 is not below
    ([0, 5, 10, 3], None),  # snow left at the end
    ([0, 0.5, 0.2, 0], None),  # never 1 kg m-2 of snow
    ([0, 0, 0], None),
])
def test_melt_out_is_the_first_hour_below_1_kg_after_the_peak(swe, expected):
    assert online.melt_out(np.array(swe, dtype=np.float64)) == expected


def hand_made_season(hours=100):
    """Three points: the emulator melts out 5 h late at point 0 with 2 % more snow and 0.1 m more
    depth while both have snow; point 1 never melts out; point 2 diverges in the emulator's run."""
    times = pd.date_range("2011-01-01", periods=hours, freq="h")
    t = np.arange(hours, dtype=np.float64)
    swe = np.where(t < 60, np.minimum(t, 50.0) * (1 - np.maximum(t - 50, 0) / 10), 0.0)  # peak 50 at h 50, gone at 60
    reference = {name: np.zeros((hours, 3)) for name in online.SERIES}
    reference["WSN_T_ISBA"][:, 0] = swe
    reference["WSN_T_ISBA"][:, 1] = 20.0
    reference["WSN_T_ISBA"][:, 2] = swe
    reference["TS_ISBA"][:] = 270.0
    other = {name: a.copy() for name, a in reference.items()}
    later = np.where(t < 65, np.minimum(t, 51.0) * (1 - np.maximum(t - 55, 0) / 10), 0.0)  # peak 51 at h 51
    other["WSN_T_ISBA"][:, 0] = later
    other["DSN_T_ISBA"][:, 0] = np.where(later > 0, 0.1, 0.0)
    other["TS_ISBA"][:, 0] = np.where(later > 0, 271.0, 270.0)
    other["SW_IN"][7, 2] = np.nan
    return {"name": "2010080106_2011080106", "times": times, "runs": {"tartes": reference, "emulator": other},
            "albedo_errors": {"emulator": [np.array([0.01, 0.03]), np.array([0.02])]}}


def test_the_figures_follow_their_definitions():
    figures = online.compare([hand_made_season()], "emulator")
    # melt-out: hours 60 and 65 at point 0 (the first with SWE below 1 kg m-2); none at point 1
    assert figures["melt_out_hours"] == {"mean_abs": 5, "max_abs": 5, "excluded": 1}
    # peaks 51 against 50 at point 0, equal at point 1
    assert figures["peak_swe_percent"] == {"mean_abs": pytest.approx(1.0), "max_abs": pytest.approx(2.0)}
    # over the hours when either run has snow: point 0's 1..64 and point 1's 100 hours
    either = 64 + 100
    with_depth = 64 - 0  # the emulator's 0.1 m at point 0 while it has snow
    assert figures["snow_depth_rmse_m"] == pytest.approx(np.sqrt(with_depth * 0.01 / either))
    assert figures["surface_temperature_rmse_K"] == pytest.approx(np.sqrt(with_depth / either))
    assert figures["albedo_mae"] == pytest.approx(0.02)
    assert figures["diverged"] == 1
    rows = figures["per_point"]
    assert rows[0]["melt_out_tartes"] == "2011-01-03T12:00:00" and rows[0]["melt_out_emulator"] == "2011-01-03T17:00:00"
    assert rows[0]["melt_out_hours"] == 5 and rows[0]["peak_swe_percent"] == pytest.approx(2.0)
    assert rows[1]["melt_out_tartes"] is None and rows[1]["melt_out_hours"] is None
    assert rows[2] == {"point": 2, "season": "2010080106_2011080106", "diverged": True}


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory, tiny_emulator):
    """The command line on two tiny seasons with an untrained emulator (its warnings are caught and counted)."""
    out = tmp_path_factory.mktemp("benchmark") / "online.json"
    online.main(["--out", str(out), "--model", str(tiny_emulator), "--seasons", "2", "--points", str(TINY["points"]),
                 "--start-day", str(TINY["start_day"]), "--days", str(TINY["days"])])
    return out


def test_the_json_has_the_issues_keys(benchmark_run, capsys):
    report = json.loads(benchmark_run.read_text())
    assert set(report) == FIGURES | {"seconds", "per_point", "reference_signal"}
    assert set(report["reference_signal"]) == FIGURES | {"per_point"}
    assert (report["points"], report["seasons"]) == (TINY["points"], 2)
    assert set(report["melt_out_hours"]) == {"mean_abs", "max_abs", "excluded"}
    assert set(report["peak_swe_percent"]) == {"mean_abs", "max_abs"}
    assert set(report["seconds"]) == {"tartes", "emulator", "gardner"} and min(report["seconds"].values()) > 0
    assert report["diverged"] == 0 and report["reference_signal"]["diverged"] == 0
    assert len(report["per_point"]) == 2 * TINY["points"]
    for rows, run in ((report["per_point"], "emulator"), (report["reference_signal"]["per_point"], "gardner")):
        assert set(rows[0]) == {"point", "season", "diverged", "melt_out_tartes", f"melt_out_{run}", "melt_out_hours",
                                "peak_swe_tartes", f"peak_swe_{run}", "peak_swe_percent", "snow_depth_rmse_m",
                                "surface_temperature_rmse_K"}
    # Snow fell and was compared; Gardner's albedo is not TARTES's, the untrained emulator's neither.
    assert report["snow_depth_rmse_m"] > 0 and report["reference_signal"]["albedo_mae"] > 0.005
    assert 0 < report["albedo_mae"] < 1
    assert not list(benchmark_run.parent.glob("*.tmp-*"))


def test_the_figure_draws_the_series(benchmark_run, tmp_path, monkeypatch):
    monkeypatch.setattr(style, "DPI", 50)
    series = benchmark_run.with_suffix(".npz")
    with np.load(series) as data:
        assert data["emulator_WSN_T_ISBA"].shape == (2, TINY["days"] * 24 + 1, TINY["points"])
    path = plot_online.main(["--series", str(series), "--out", str(tmp_path), "--season", "1", "--points", "0", "3"])
    assert path.parent == tmp_path and path.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        plot_online.main(["--series", str(series), "--out", str(tmp_path), "--points", str(TINY["points"])])
