"""Monthly deposition of black carbon and dust over a season, from the run's raw Crocus files.

With the FORCING deposition variables (IMPWET1/2, IMPDRY1/2, g m-2 s-1; 1 = black carbon,
2 = dust), the monthly wet and dry deposition: each hourly flux times its time step, summed per
month (the month of the middle of the hour ending at the time stamp). Without them, an estimate
from the PRO profiles: the column content sum(SNOWIMP * density * SNOWDZ) of each impurity, and
per month the sum of its hourly increases. That is a lower bound of the deposition: what falls on
bare ground, or leaves with melt water within the same hour, is not counted.

Values are the mean over the points (or over the points given). One figure per season of the split.

    python -m plot.deposition [--run RUN] [--out runs/graphs/<run>/deposition/] [--split test] [--point P ...]
                              [--source auto|forcing|profiles]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from plot import cli, style
from preprocessing.crocus_files import ABSENT, PATCH_DIMS, POINT, PRO_LAYERS, TIME
from preprocessing.shards import open_shard
from plot.evaluation import resolve, season_files

KIND = "deposition"
IMPURITIES = {"black carbon": "1", "dust": "2"}  # Crocus impurity numbers: SNOWIMP1, IMPWET1, ...
FORCING_VARIABLES = [f"IMP{kind}{n}" for n in IMPURITIES.values() for kind in ("WET", "DRY")]
POINT_BLOCK = 64  # points read at once from a PRO file
TIME_BLOCK = 24 * 31  # hours
UNITS = ((1.0, "g m⁻²"), (1e-3, "mg m⁻²"), (1e-6, "µg m⁻²"))


def hour_months(times: pd.DatetimeIndex, step: pd.Timedelta) -> pd.PeriodIndex:
    """The month of the middle of the step ending at each time stamp."""
    return (times - step / 2).to_period("M")


def read(ds: xr.Dataset, path: Path, name: str, times: slice, points) -> np.ndarray:
    """float64 (time, [layer,] point) of `name`, patch 0; fill values as NaN."""
    if name not in ds:
        raise KeyError(f"{path}: {name}: missing variable")
    var = ds[name]
    index = {d: 0 for d in var.dims if d in PATCH_DIMS}
    layer = [d for d in var.dims if d not in (TIME, POINT) and d not in PATCH_DIMS]
    values = var.isel({**index, TIME: times, POINT: points}).transpose(TIME, *layer, POINT).values.astype(np.float64)
    values[np.abs(values) >= ABSENT] = np.nan
    return values


def from_forcing(forcing: xr.Dataset, path: Path, points) -> pd.DataFrame:
    """Monthly mean-over-points deposition (g m-2) by impurity and wet/dry."""
    times = pd.DatetimeIndex(forcing[TIME].values)
    step = pd.Series(times).diff().bfill().to_numpy()
    seconds = step / np.timedelta64(1, "s")
    months = hour_months(times, pd.Timedelta(step[0]))
    table = {"hours": seconds / 3600}
    for name in FORCING_VARIABLES:
        flux = read(forcing, path, name, slice(None), points)
        if np.any(np.isnan(flux)):
            raise ValueError(f"{path}: {name}: missing values (fill) among the deposition fluxes")
        table[name] = (flux * seconds[:, None]).mean(axis=1)
    return pd.DataFrame(table, index=times).groupby(months).sum()


def column_content(pro: xr.Dataset, path: Path, times: slice, points) -> dict[str, np.ndarray]:
    """Per impurity, the (time, point) column content in g m-2 (0 without snow)."""
    density_name = next((n for n in PRO_LAYERS["density"] if n in pro), PRO_LAYERS["density"][0])
    snow = read(pro, path, "SNOWDZ", times, points) * read(pro, path, density_name, times, points)  # kg m-2
    return {name: 1e3 * np.nansum(read(pro, path, f"SNOWIMP{n}", times, points) * snow, axis=1)
            for name, n in IMPURITIES.items()}


def from_profiles(pro: xr.Dataset, path: Path, points) -> pd.DataFrame:
    """Monthly sums of the hourly increases of the column contents (g m-2), mean over points."""
    for n in IMPURITIES.values():
        if f"SNOWIMP{n}" not in pro:
            raise KeyError(f"{path}: SNOWIMP{n}: missing variable, and the FORCING has no deposition variables")
    times = pd.DatetimeIndex(pro[TIME].values)
    n_points = pro.sizes[POINT]
    points = np.arange(n_points) if points is None else np.atleast_1d(points)
    gains = {name: np.zeros(len(times)) for name in IMPURITIES}
    for p in range(0, len(points), POINT_BLOCK):
        block = points[p:p + POINT_BLOCK]
        previous = None
        for t in range(0, len(times), TIME_BLOCK):
            content = column_content(pro, path, slice(t, t + TIME_BLOCK), block)
            for name, values in content.items():
                before = values[:1] if previous is None else previous[name][-1:]
                gains[name][t:t + len(values)] += np.maximum(np.diff(values, axis=0, prepend=before), 0).sum(axis=1)
            previous = content
    step = pd.Timedelta(times[1] - times[0]) if len(times) > 1 else pd.Timedelta(hours=1)
    frame = pd.DataFrame({"hours": step / pd.Timedelta(hours=1), **{name: g / len(points) for name, g in gains.items()}},
                         index=times)
    return frame.groupby(hour_months(times, step)).sum()


def unit(values: np.ndarray) -> tuple[float, str]:
    """The largest of g, mg, µg m-2 in which the largest value is at least 1."""
    top = np.nanmax(values) if np.size(values) else 0.0
    return next(((scale, name) for scale, name in UNITS if top >= scale), UNITS[-1])


def plot(run=None, out: str | Path | None = None, split: str = "test", point=None, source: str = "auto") -> list[Path]:
    if source not in ("auto", "forcing", "profiles"):
        raise ValueError(f"source {source!r}: expected auto, forcing or profiles")
    style.use()
    run = resolve(run)
    seasons = []
    for path in run.splits[split]:
        info = open_shard(path).info
        if "pro_file" in info:  # shards of Crocus seasons (not of sampled profiles)
            seasons.append((info["region"], info["season"]))
    if not seasons:
        raise ValueError(f"{run.path}: the {split} split holds no Crocus season")
    paths = []
    for region, season in seasons:
        pro_file, forcing_file = season_files(run, region, season)
        with xr.open_dataset(forcing_file) as forcing, xr.open_dataset(pro_file) as pro:
            n_points = forcing.sizes[POINT]
            if point is not None and (np.min(point) < 0 or np.max(point) >= n_points):
                raise ValueError(f"{forcing_file}: points {point} not all within 0..{n_points - 1}")
            use_forcing = all(n in forcing for n in FORCING_VARIABLES) if source == "auto" else source == "forcing"
            if use_forcing:
                monthly = from_forcing(forcing, forcing_file, slice(None) if point is None else np.atleast_1d(point))
            else:
                monthly = from_profiles(pro, pro_file, point)
        label = (f"{'points ' + ', '.join(map(str, np.atleast_1d(point))) if point is not None else f'mean of {n_points} points'}")
        figure, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True, constrained_layout=True)
        x = np.arange(len(monthly))
        for ax, (name, n) in zip(axes, IMPURITIES.items()):
            if use_forcing:
                wet, dry = monthly[f"IMPWET{n}"].to_numpy(), monthly[f"IMPDRY{n}"].to_numpy()
                scale, unit_name = unit(wet + dry)
                ax.bar(x, wet / scale, color=style.WET, label="wet deposition (IMPWET1, IMPWET2)")
                ax.bar(x, dry / scale, bottom=wet / scale, color=style.DRY, label="dry deposition (IMPDRY1, IMPDRY2)")
            else:
                values = monthly[name].to_numpy()
                scale, unit_name = unit(values)
                ax.bar(x, values / scale, color=style.DUST if name == "dust" else style.SOOT)
            ax.set_ylabel(f"{name} deposition\n({unit_name} per month)")
            ax.set_title(name, loc="left")
            ax.grid(axis="x", visible=False)
        if use_forcing:
            figure.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
        # A month the season covers in part (its first or last) says so: its bar is not a month's worth.
        partial = monthly["hours"].to_numpy() < 0.9 * 24 * monthly.index.days_in_month.to_numpy()
        axes[-1].set_xticks(x, [m.strftime("%b\n%Y") + ("\n(part)" if cut else "") for m, cut in zip(monthly.index, partial)])
        axes[-1].set_xlabel("month (UTC)")
        how = ("FORCING deposition fluxes IMPWET/IMPDRY" if use_forcing else
               "increases of the PRO profiles' impurity content (a lower bound)")
        figure.suptitle(f"Monthly impurity deposition, {region} {style.season_label(season)} ({split}), {label}\n"
                        f"from the {how}")
        suffix = "" if point is None else "_point" + "-".join(map(str, np.atleast_1d(point)))
        name = f"{KIND}_{region}_{season}{suffix}{'' if use_forcing else '_profiles'}.png"
        paths.append(style.save(figure, style.folder(out, KIND) / name))
    return paths


def main(argv=None) -> list[Path]:
    p = cli.parser(__doc__, KIND)
    p.add_argument("--point", type=int, nargs="+", help="points to average (default all)")
    p.add_argument("--source", default="auto", choices=("auto", "forcing", "profiles"),
                   help="deposition from the FORCING fluxes or the profiles (auto: the FORCING when it has them)")
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.split, args.point, args.source)


if __name__ == "__main__":
    main()
