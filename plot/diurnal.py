"""Diurnal cycle of the albedo at one point over one week: TARTES target, emulator, their
difference, and the illumination that drives the cycle (the illumination cosine on the slope,
which the albedo depends on, the horizontal cos_zenith and the direct fraction).

    python -m plot.diurnal [--run RUN] [--out runs/graphs/<run>/diurnal/] [--week 2014-02-10] [--point P | selection]
                           [--split test]

Without --week, the week starts on the day of the point's median sample time (mid-season); without
a point, the point of median number of samples is taken (as in plot.season).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from plot import cli, style
from plot.evaluation import error_summary, evaluation_set, resolve, select, selection_label, utc
from plot.season import one_point

KIND = "diurnal"


def plot(run=None, out: str | Path | None = None, week=None, split: str = "test", device=None, **criteria) -> Path:
    style.use()
    run = resolve(run)
    where = selection_label(criteria)
    samples = one_point(select(evaluation_set(run, split, device=device), **criteria), where)
    start = utc(week).floor("D") if week is not None else samples["time"].quantile(0.5).floor("D")
    end = start + pd.Timedelta(days=7)
    samples = samples[(samples["time"] >= start) & (samples["time"] < end)]
    first = samples.iloc[0] if len(samples) else None
    if first is None:
        raise ValueError(f"{run.path}: no {split} sample between {start} and {end} at the selected point "
                         f"({where or 'default point'})")
    # An hourly axis: NaN at night and without snow, so that each day is its own line.
    hourly = samples.set_index("time").reindex(pd.date_range(start, end, freq="h", inclusive="left"))

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, constrained_layout=True,
                                                 gridspec_kw={"height_ratios": (3, 1.5, 1.5)})
    top.plot(hourly.index, hourly["albedo_target"], "o-", ms=3, color=style.TARGET, lw=1.5, label="TARTES (target)")
    top.plot(hourly.index, hourly["albedo_prediction"], "s--", ms=3, color=style.PREDICTION, lw=1.3, label="emulator")
    top.set_ylabel("albedo (-)")
    top.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, borderaxespad=0.2)
    metrics = error_summary(samples["albedo_error"])
    top.set_title(f"{metrics['n']} hours: MAE {metrics['mae']:.4f}, bias {metrics['bias']:+.4f}", loc="right",
                  fontsize=10)
    middle.axhline(0, color="grey", lw=1)
    middle.plot(hourly.index, hourly["albedo_error"], "o-", ms=2.5, color=style.ERROR, lw=1.2)
    middle.set_ylabel("prediction -\ntarget (-)")
    bottom.plot(hourly.index, hourly["cos_illum"], color=style.OKABE_ITO["vermillion"], lw=1.5,
                label="cos(illumination angle) on the slope")
    bottom.plot(hourly.index, hourly["cos_zenith"], color=style.OKABE_ITO["orange"], lw=1.2, ls="--",
                label="cos(solar zenith angle)")
    bottom.plot(hourly.index, hourly["direct_fraction"], color=style.OKABE_ITO["bluish_green"], lw=1.5,
                label="direct fraction of shortwave")
    bottom.set_ylim(min(0, hourly["cos_illum"].min() - 0.05), 1.5)  # room above 1 for the legend
    bottom.set_yticks([0, 0.25, 0.5, 0.75, 1])
    bottom.set_ylabel("illumination (-)")
    bottom.legend(loc="upper left", ncols=3, fontsize=9)
    bottom.set_xlim(start, end)
    bottom.set_xlabel("time (UTC; each value stands for the hour ending at its time stamp)")
    bottom.xaxis.set_major_locator(mdates.DayLocator())
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b"))
    figure.suptitle(f"Diurnal cycle, point {first['point']}: {style.point_label(first)}, week of "
                    f"{start:%d %B %Y} ({split})\n{run.name}")
    name = f"{KIND}_{split}_point{first['point']}_{start:%Y%m%d}.png"
    return style.save(figure, style.folder(out, KIND) / name)


def main(argv=None) -> Path:
    p = cli.parser(__doc__, KIND)
    p.add_argument("--week", help="first day of the week, UTC (default: the point's median sample day)")
    cli.add_selection(p)
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.week, args.split, args.device, **cli.selection(args))


if __name__ == "__main__":
    main()
