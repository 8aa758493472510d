"""The emulator inside the snowpack model: whole seasons run hour by hour with the shortwave of TARTES
(the labeller), of the emulator and of Gardner and Sharp's albedo, from the same state under the
same forcing, and how far the emulator's run goes from TARTES's beside how far Gardner's goes.

    python -m benchmarks.online --out FILE [--model data/emulator.pt] [--seasons 4] [--points 24]
                                [--region Alpes] [--seed 0] [--start-day D --days N]

The seasons and points are those of the embedded generator (preprocessing/synthetic.py, seeded):
its virtual points with their soil albedo ALB_SOIL (and points whose forcing has no diffuse
light), its forcing, Crocus's light of each hour, and its initial state (bare ground at the first
day's mean air temperature, at least 0 degC). Each season is run three times by
preprocessing.snowpack.Snowpack, which differ only in the radiation: `tartes`, `emulator` (the
model file, through emulator_radiation) and `gardner`.

Figures of the emulator's run against the tartes run (and, under `reference_signal`, the same of
the gardner run: a physical difference of radiation to set the emulator's against):
- melt_out_hours: melt-out is the first hour after the season's peak SWE when the SWE falls below
  1 kg m-2; |difference| in hours over the point-seasons where both runs have one, the others
  counted in `excluded`;
- peak_swe_percent: |peak SWE - the tartes run's| in % of the tartes run's, over the point-seasons
  whose tartes peak is at least 1 kg m-2;
- snow_depth_rmse_m, surface_temperature_rmse_K: over the hours when either run has snow (the
  surface temperature is the soil's where a run has none);
- albedo_mae: over the sunlit hours with snow of the run, its albedo against the labeller's on the
  same pack and light (the run's own states: the labeller is called beside the radiation, outside
  the run's timing);
- diverged: point-seasons with a non-finite state or shortwave, left out of the other figures (a
  run that stops on a state the radiation refuses counts all its season's points);
- seconds: the runs' time, summed over the seasons (the labeller called beside them excluded);
- per_point: each point-season's melt-outs (ISO times, UTC), peak SWEs and errors.

FILE gets these figures as JSON; beside it, FILE with the suffix .npz gets the runs' hourly SWE and
snow depth (what plot/online.py draws). Bars (issue 24): melt-out mean |difference| <= 24 h (goal
3 h), max <= 72 h, peak SWE mean |difference| <= 1 % (goal 0.2 %), diverged 0.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from preprocessing import synthetic
from preprocessing.snowpack import RADIATION_OUTPUTS, RADIATIONS, Snowpack
from preprocessing.tartes_labels import broadband_albedo
from utils.files import save_json, written
from utils.profiles import EnergyBudget
from utils.solar import CrocusLight

RUNS = ("tartes", "emulator", "gardner")
REFERENCE, CANDIDATE, SIGNAL = RUNS
MELTED_SWE = 1.0  # kg m-2: below it after the peak, the snow has melted out
# The hourly series kept of each run: SWE, snow depth, surface temperature, the shortwave budget.
SERIES = ("WSN_T_ISBA", "DSN_T_ISBA", "TS_ISBA") + RADIATION_OUTPUTS
FIGURE_SERIES = ("WSN_T_ISBA", "DSN_T_ISBA")  # what the .npz beside the JSON keeps for plot/online.py


def emulator_radiation(emulator):
    """The snowpack's radiation (preprocessing.snowpack: radiation(layers, light) -> EnergyBudget)
    from an emulator: models.Emulator, or any object with the labeller's energy_budget(dz, ssa,
    density, soot, dust, cos_illum, direct_sw, diffuse_sw, *, soil_albedo, cos_zenith), which gets
    the pack and Crocus's light as the labeller does."""

    def radiation(layers: dict, light: dict) -> EnergyBudget:
        return emulator.energy_budget(**layers, **light)

    return radiation


class AlbedoCheck:
    """A radiation that also compares its albedo with the labeller's on the same pack and light,
    each call: the labeller's time is kept apart (`seconds`) from the run's."""

    def __init__(self, radiation):
        self.radiation = radiation
        self.errors: list[np.ndarray] = []
        self.seconds = 0.0

    def __call__(self, layers: dict, light: dict) -> EnergyBudget:
        budget = self.radiation(layers, light)
        start = time.perf_counter()
        self.errors.append(np.abs(budget.albedo - broadband_albedo(**layers, **light)))
        self.seconds += time.perf_counter() - start
        return budget


def melt_out(swe: np.ndarray) -> int | None:
    """The hour index of melt-out in a season's SWE series (kg m-2): the first hour after the peak
    (its first hour) when the SWE is below MELTED_SWE; None without (a peak below it, or snow left
    at the end)."""
    peak = int(np.argmax(swe))
    if swe[peak] < MELTED_SWE:
        return None
    below = np.flatnonzero(swe[peak + 1:] < MELTED_SWE)
    return peak + 1 + int(below[0]) if len(below) else None


def season_inputs(real: synthetic.RealYear, points: pd.DataFrame, season: synthetic.SeasonPlan):
    """What the three runs of a season share: the snowpack forcing, Crocus's light and the initial
    soil temperature, as preprocessing.synthetic.write_season makes them."""
    forcing = synthetic.season_forcing(real, points, season, slice(None))
    light = synthetic.chunk_light(season.times, 0, len(season.times), forcing, None, points)
    return synthetic.snowpack_forcing(forcing), light, synthetic.initial_soil_temperature(real, points, season)


def run_season(drive: np.ndarray, light: CrocusLight, soil_temp: np.ndarray, soil_albedo: np.ndarray,
               radiation) -> dict[str, np.ndarray]:
    """The SERIES (hours, points) of one run of a season, from bare ground; the hours go through
    Snowpack.run in chunks of synthetic.CHUNK_SAMPLES hours x points (bounded memory)."""
    pack = Snowpack.bare(soil_temp, soil_albedo)
    n_hours, n_points = drive.shape[:2]
    series = {name: np.empty((n_hours, n_points)) for name in SERIES}
    step = max(2, synthetic.CHUNK_SAMPLES // n_points)
    for begin in range(0, n_hours, step):
        rows = slice(begin, begin + step)
        out = pack.run(drive[rows], CrocusLight(*(a[rows] for a in light)), radiation)
        for name in SERIES:
            series[name][rows] = out[name]
    return series


def diverged(series: dict[str, np.ndarray]) -> np.ndarray:
    """(points,) bool: a non-finite SWE, depth, surface temperature or shortwave at some hour."""
    return ~np.logical_and.reduce([np.isfinite(a).all(axis=0) for a in series.values()])


def _iso(times: pd.DatetimeIndex, hour: int | None) -> str | None:
    return None if hour is None else times[hour].isoformat()


def _mean_max(values: list[float]) -> dict[str, float | None]:
    values = np.abs(np.asarray(values, dtype=np.float64))
    return {"mean_abs": float(values.mean()) if len(values) else None,
            "max_abs": float(values.max()) if len(values) else None}


def compare(seasons: list[dict], name: str) -> dict:
    """The figures of run `name` against the tartes run (module docstring), from seasons of
    {"name", "times", "runs": {run: SERIES}, "albedo_errors": {run: [arrays]}}, but `seconds`."""
    rows, melt_differences, peak_percents = [], [], []
    depth_squares, surface_squares, excluded = [], [], 0
    for season in seasons:
        reference, other = season["runs"][REFERENCE], season["runs"][name]
        bad = diverged(reference) | diverged(other)
        for p in range(reference["WSN_T_ISBA"].shape[1]):
            row = {"point": p, "season": season["name"], "diverged": bool(bad[p])}
            rows.append(row)
            if bad[p]:
                continue
            swe = {run: series["WSN_T_ISBA"][:, p] for run, series in ((REFERENCE, reference), (name, other))}
            melts = {run: melt_out(values) for run, values in swe.items()}
            row.update({f"melt_out_{run}": _iso(season["times"], hour) for run, hour in melts.items()})
            if None in melts.values():
                excluded += 1
                row["melt_out_hours"] = None
            else:
                row["melt_out_hours"] = melts[name] - melts[REFERENCE]
                melt_differences.append(row["melt_out_hours"])
            peaks = {run: float(values.max()) for run, values in swe.items()}
            row.update({f"peak_swe_{run}": peak for run, peak in peaks.items()})
            row["peak_swe_percent"] = (100.0 * (peaks[name] - peaks[REFERENCE]) / peaks[REFERENCE]
                                       if peaks[REFERENCE] >= MELTED_SWE else None)
            if row["peak_swe_percent"] is not None:
                peak_percents.append(row["peak_swe_percent"])
            snow = (swe[REFERENCE] > 0) | (swe[name] > 0)
            depth = (other["DSN_T_ISBA"][snow, p] - reference["DSN_T_ISBA"][snow, p]) ** 2
            surface = (other["TS_ISBA"][snow, p] - reference["TS_ISBA"][snow, p]) ** 2
            depth_squares.append(depth)
            surface_squares.append(surface)
            row["snow_depth_rmse_m"] = float(np.sqrt(depth.mean())) if snow.any() else None
            row["surface_temperature_rmse_K"] = float(np.sqrt(surface.mean())) if snow.any() else None
    rmse = lambda squares: float(np.sqrt(np.concatenate(squares).mean())) if sum(map(len, squares)) else None
    errors = [e for season in seasons for e in season["albedo_errors"][name]]
    return {"points": seasons[0]["runs"][REFERENCE]["WSN_T_ISBA"].shape[1] if seasons else 0,
            "seasons": len(seasons),
            "melt_out_hours": {**_mean_max(melt_differences), "excluded": excluded},
            "peak_swe_percent": _mean_max(peak_percents),
            "snow_depth_rmse_m": rmse(depth_squares),
            "surface_temperature_rmse_K": rmse(surface_squares),
            "albedo_mae": float(np.concatenate(errors).mean()) if errors else None,
            "diverged": int(sum(row["diverged"] for row in rows)),
            "per_point": rows}


def online(emulator, seasons: int = 4, points: int = 24, region: str = "Alpes", seed: int = 0, start_day: int = 0,
           days: int | None = None, quiet: bool = False) -> tuple[dict, dict]:
    """Run the seasons with the three radiations; returns (the JSON's figures, the series the
    figure draws: {"times": (seasons, hours) datetime64, "<run>_<SERIES name>": (seasons, hours,
    points) float32, the points' "ZS", "slope", "aspect", "massif_number", "season" names})."""
    real = synthetic.RealYear.load()
    table = synthetic.virtual_points(region, points, seed)
    soil_albedo = table.ALB_SOIL.to_numpy()
    seconds = dict.fromkeys(RUNS, 0.0)
    results, caught = [], []
    for k in range(seasons):
        plan = synthetic.plan_season(real, k, seed, start_day, days)
        drive, light, soil_temp = season_inputs(real, table, plan)
        radiations = {REFERENCE: "tartes", CANDIDATE: AlbedoCheck(emulator_radiation(emulator)),
                      SIGNAL: AlbedoCheck(RADIATIONS["gardner"])}
        runs = {}
        for run, radiation in radiations.items():
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always")
                try:
                    runs[run] = run_season(drive, light, soil_temp, soil_albedo, radiation)
                except ValueError as e:  # a state the radiation refuses (utils.profiles.validate_inputs)
                    print(f"season {k + 1}/{seasons}, {run}: {e}: all its points diverged", flush=True)
                    runs[run] = {name: np.full(drive.shape[:2], np.nan) for name in SERIES}
            caught += [(run, str(r.message)) for r in records]
            seconds[run] += time.perf_counter() - start - getattr(radiation, "seconds", 0.0)
            if not quiet:
                print(f"season {k + 1}/{seasons}, {run}: {seconds[run]:.1f} s so far", flush=True)
        results.append({"name": synthetic.season_name(plan), "times": plan.times, "runs": runs,
                        "albedo_errors": {run: r.errors for run, r in radiations.items() if isinstance(r, AlbedoCheck)}})
    if caught and not quiet:
        print(f"{len(caught)} warnings during the runs, e.g. ({caught[0][0]}) {caught[0][1]}")
    figures = compare(results, CANDIDATE)
    per_point = figures.pop("per_point")
    signal = compare(results, SIGNAL)
    signal_rows = signal.pop("per_point")
    report = {**figures, "seconds": {run: round(s, 2) for run, s in seconds.items()}, "per_point": per_point,
              "reference_signal": {**signal, "per_point": signal_rows}}
    return report, figure_series(results, table)


def figure_series(results: list[dict], table: pd.DataFrame) -> dict[str, np.ndarray]:
    """What plot/online.py draws, seasons padded to the longest (NaT, NaN): "times" (seasons, hours),
    "<run>_<FIGURE_SERIES name>" (seasons, hours, points) float32, "melt_out_<run>" (seasons,
    points) hour index or -1, "runs", "season" names, and the points' "ZS", "slope", "aspect", "massif"."""
    hours = max(len(r["times"]) for r in results)
    pad = lambda a, fill: np.pad(a, [(0, hours - len(a))] + [(0, 0)] * (a.ndim - 1), constant_values=fill)
    series = {"times": np.stack([pad(r["times"].values, np.datetime64("NaT")) for r in results]),
              "runs": np.array(RUNS), "season": np.array([r["name"] for r in results]),
              "massif": table["massif_number"].to_numpy(),
              **{name: table[name].to_numpy() for name in ("ZS", "slope", "aspect")}}
    for run in RUNS:
        for name in FIGURE_SERIES:
            series[f"{run}_{name}"] = np.stack([pad(r["runs"][run][name], np.nan) for r in results]).astype(np.float32)
        series[f"melt_out_{run}"] = np.array([[-1 if hour is None else hour for hour in map(melt_out, swe.T)]
                                              for swe in (r["runs"][run]["WSN_T_ISBA"] for r in results)])
    return series


def table_lines(report: dict) -> list[str]:
    """The printed table: each figure of the emulator and of gardner against tartes, with the bars."""
    signal = report["reference_signal"]
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    rows = [("melt-out |difference|, mean (h)", report["melt_out_hours"]["mean_abs"],
             signal["melt_out_hours"]["mean_abs"], ".1f", "<= 24 (goal 3)"),
            ("melt-out |difference|, max (h)", report["melt_out_hours"]["max_abs"],
             signal["melt_out_hours"]["max_abs"], ".0f", "<= 72"),
            ("melt-out excluded (point-seasons)", report["melt_out_hours"]["excluded"],
             signal["melt_out_hours"]["excluded"], "d", ""),
            ("peak SWE |difference|, mean (%)", report["peak_swe_percent"]["mean_abs"],
             signal["peak_swe_percent"]["mean_abs"], ".2f", "<= 1 (goal 0.2)"),
            ("peak SWE |difference|, max (%)", report["peak_swe_percent"]["max_abs"],
             signal["peak_swe_percent"]["max_abs"], ".2f", ""),
            ("snow depth RMSE (m)", report["snow_depth_rmse_m"], signal["snow_depth_rmse_m"], ".4f", ""),
            ("surface temperature RMSE (K)", report["surface_temperature_rmse_K"],
             signal["surface_temperature_rmse_K"], ".3f", ""),
            ("albedo MAE vs the labeller (-)", report["albedo_mae"], signal["albedo_mae"], ".4f", ""),
            ("diverged (point-seasons)", report["diverged"], signal["diverged"], "d", "0")]
    lines = [f"{report['points']} points x {report['seasons']} seasons; against the tartes run:",
             f"{'':36s} {'emulator':>10s} {'gardner':>10s}   bar (emulator)"]
    lines += [f"{label:36s} {fmt(a, spec):>10s} {fmt(b, spec):>10s}   {bar}" for label, a, b, spec, bar in rows]
    lines.append("seconds: " + ", ".join(f"{run} {s:.1f}" for run, s in report["seconds"].items()))
    return lines


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.online", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="the JSON file of the figures (the series go "
                                                                 "beside it, with the suffix .npz)")
    parser.add_argument("--model", type=Path, default=Path("data/emulator.pt"), help="the emulator file")
    parser.add_argument("--seasons", type=int, default=4, help="seasons of the embedded generator")
    parser.add_argument("--points", type=int, default=24, help="its virtual points")
    parser.add_argument("--region", default="Alpes", choices=sorted(synthetic.REGIONS))
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed")
    parser.add_argument("--start-day", type=int, default=0, help="first day of each season run (0: Aug 1)")
    parser.add_argument("--days", type=int, default=None, help="days per season (default: the whole year)")
    args = parser.parse_args(argv)
    if args.seasons < 1 or args.points < 1:
        parser.error(f"--seasons {args.seasons} --points {args.points}: at least one of each")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: no folder {args.out.parent}")
    from models import Emulator  # torch, only once the arguments are good

    try:
        emulator = Emulator.load(args.model)
    except (FileNotFoundError, ValueError) as e:
        parser.error(f"--model {e}")
    if not emulator.model.BUDGET:
        parser.error(f"--model {args.model}: model {emulator.model_name!r} gives the albedo only; the snowpack "
                     "needs the energy budget (optical_budget)")
    report, series = online(emulator, args.seasons, args.points, args.region, args.seed, args.start_day, args.days)
    save_json(report, args.out)
    series_path = args.out.with_suffix(".npz")
    with written(series_path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, model=str(args.model), **series)
    print("\n".join(table_lines(report)))
    print(f"wrote {args.out} and {series_path}")
    return report


if __name__ == "__main__":
    main()
