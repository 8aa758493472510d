"""The season of the energy absorbed in the top snow layer at one point: TARTES against the
emulator (W m-2), their difference, and the incident shortwave. For models that give the energy budget.

Daily (the default): the mean over the 24 hours of each UTC day, hours without a sample (night,
no snow, no shortwave) counted as 0, each sample standing for the hour ending at its time stamp.
Hourly: every sample, lines broken where there is none. One figure per season of the split.

    python -m plot.top_layer_season [--run RUN] [--out runs/graphs/<run>/top_layer_season/] [--resolution daily|hourly]
                                    [--point P | selection] [--start DATE --end DATE] [--split test]

Without a point or a selection naming one point, the point of median number of samples is taken.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from plot import cli, style
from plot.evaluation import error_summary, evaluation_set, is_budget, resolve, select, selection_label
from plot.season import one_point

KIND = "top_layer_season"
RESOLUTIONS = ("daily", "hourly")


def energies(samples: pd.DataFrame) -> pd.DataFrame:
    """Per sample, in W m-2: the incident shortwave and the energy absorbed in the top layer by
    TARTES (target) and the emulator (prediction), and their difference."""
    shortwave = samples["shortwave"].astype("float64")
    out = pd.DataFrame({"time": samples["time"], "shortwave": shortwave,
                        "target": samples["top_target"] * shortwave, "prediction": samples["top_prediction"] * shortwave})
    out["error"] = out["prediction"] - out["target"]
    return out


def daily_means(hourly: pd.DataFrame) -> pd.DataFrame:
    """Mean over each UTC day of 24 hours (hours without a sample count as 0), on a daily axis
    from the first to the last day with a sample; days without any sample are NaN."""
    day = hourly["time"].dt.floor("D")
    sums = hourly.drop(columns="time").groupby(day).sum() / 24
    return sums.reindex(pd.date_range(sums.index.min(), sums.index.max(), freq="D"))


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None, resolution: str = "daily",
         **criteria) -> list[Path]:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r}: expected one of {', '.join(RESOLUTIONS)}")
    style.use()
    run = resolve(run)
    df = evaluation_set(run, split, device=device)
    if not is_budget(df):
        raise ValueError(f"{run.name} gives the albedo only: no absorbed energy")
    where = selection_label(criteria)
    df = one_point(select(df, **criteria), where)
    paths = []
    for season, samples in df.groupby("season", observed=True):
        first = samples.iloc[0]
        hourly = energies(samples.sort_values("time"))
        if resolution == "daily":
            values = daily_means(hourly)
        else:
            values = hourly.set_index("time")
            values = values.reindex(pd.date_range(values.index.min(), values.index.max(), freq="h"))
        figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, constrained_layout=True,
                                                     gridspec_kw={"height_ratios": (3, 1.6, 1.4)})
        marker = {} if resolution == "daily" else {"marker": ".", "ms": 3}
        top.plot(values.index, values["target"], color=style.TARGET, lw=1.6, label="TARTES (label)", **marker)
        top.plot(values.index, values["prediction"], color=style.PREDICTION, lw=1.3, ls="--", label="emulator",
                 **marker)
        mean = "daily mean" if resolution == "daily" else "hourly"
        top.set_ylabel(f"absorbed in the top layer,\n{mean} (W m⁻²)")
        top.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, borderaxespad=0.2)
        metrics = error_summary(hourly["error"])
        top.set_title(f"{metrics['n']} hourly samples: MAE {metrics['mae']:.2f} W m⁻², bias {metrics['bias']:+.2f} "
                      "W m⁻²", loc="right", fontsize=10)
        middle.axhline(0, color="grey", lw=1)
        middle.plot(values.index, values["error"], color=style.ERROR, lw=1.2, **marker)
        middle.set_ylabel("emulator -\nTARTES (W m⁻²)")
        bottom.fill_between(values.index, values["shortwave"].fillna(0), color=style.OKABE_ITO["yellow"], lw=0,
                            step="mid" if resolution == "hourly" else None)
        bottom.set_ylabel(f"incident SW on snow,\n{mean} (W m⁻²)")
        whole = resolution == "daily" and not {"start", "end"} & set(criteria)  # else the samples' span
        style.season_axis(bottom, season if whole else None)
        figure.suptitle(f"Shortwave absorbed in the top layer ({mean}), season {style.season_label(season)} ({split})\n"
                        f"point {first['point']}: {style.point_label(first)}; {run.name}")
        name = f"{KIND}_{split}_point{first['point']}_{season}{'' if resolution == 'daily' else '_hourly'}.png"
        paths.append(style.save(figure, style.folder(out, KIND) / name))
    return paths


def main(argv=None) -> list[Path]:
    p = cli.parser(__doc__, KIND)
    p.add_argument("--resolution", default="daily", choices=RESOLUTIONS, help="daily means or every hourly sample")
    cli.add_selection(p)
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.split, args.device, args.resolution, **cli.selection(args))


if __name__ == "__main__":
    main()
