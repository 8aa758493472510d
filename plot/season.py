"""Evolution over the season of the noon albedo at one point: TARTES target, emulator, their
difference, and the snow depth.

"Noon" is, each day, the sample of the highest sun (largest cos_zenith, the horizontal cosine), i.e.
solar noon to within the hour. One figure per season of the split.

    python -m plot.season [--run RUN] [--out runs/graphs/<run>/season/] [--point P | --massif M --altitude LOW HIGH
                          --slope S --aspect A] [--season SEASON] [--start DATE --end DATE] [--split test]

Without a point or a selection naming one point, the point of median number of samples is taken.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from plot import cli, style
from plot.evaluation import error_summary, evaluation_set, resolve, select, selection_label

KIND = "season"


def one_point(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """The samples of one point (region and point number) of `df`: when the selection left several,
    a typical one, the point of median number of samples (the best-sampled points keep snow all
    year). Samples without a time (wide-domain profiles) are not points."""
    df = df[df["time"].notna()]
    if df.empty:
        raise ValueError(f"no sample of a Crocus point matches {where or 'the split'}")
    counts = df.groupby(["region", "point"], observed=True).size().sort_values(kind="stable")
    region, point = counts.index[(len(counts) - 1) // 2]
    return df[(df["region"] == region) & (df["point"] == point)]


def noon(df: pd.DataFrame) -> pd.DataFrame:
    """Per day (UTC date), the sample of the largest cos_zenith, on a daily axis (NaN rows for days
    without a sample, so that lines break across them)."""
    day = df["time"].dt.floor("D")
    rows = df.loc[df.groupby(day)["cos_zenith"].idxmax()]
    rows.index = rows["time"].dt.floor("D")
    days = pd.date_range(rows.index.min(), rows.index.max(), freq="D")
    return rows.reindex(days)


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None, **criteria) -> list[Path]:
    style.use()
    run = resolve(run)
    where = selection_label(criteria)
    df = one_point(select(evaluation_set(run, split, device=device), **criteria), where)
    paths = []
    for season, samples in df.groupby("season", observed=True):
        daily = noon(samples)
        first = samples.iloc[0]
        figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, constrained_layout=True,
                                                     gridspec_kw={"height_ratios": (3, 1.6, 1.2)})
        top.plot(daily.index, daily["albedo_target"], color=style.TARGET, lw=1.6, label="TARTES (target)")
        top.plot(daily.index, daily["albedo_prediction"], color=style.PREDICTION, lw=1.4, ls="--", label="emulator")
        top.set_ylabel("noon albedo (-)")
        top.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, borderaxespad=0.2)
        metrics = error_summary(daily["albedo_error"])
        top.set_title(f"{metrics['n']} days: MAE {metrics['mae']:.4f}, bias {metrics['bias']:+.4f}",
                      loc="right", fontsize=10)
        middle.axhline(0, color="grey", lw=1)
        middle.plot(daily.index, daily["albedo_error"], color=style.ERROR, lw=1.2)
        middle.set_ylabel("prediction -\ntarget (-)")
        bottom.fill_between(daily.index, daily["snow_depth"], color=style.OKABE_ITO["sky_blue"], lw=0)
        bottom.set_ylabel("snow depth (m)")
        style.season_axis(bottom, season)
        figure.suptitle(f"Noon albedo, point {first['point']}: {style.point_label(first)}, "
                        f"season {style.season_label(season)} ({split})\n{run.name}")
        name = f"{KIND}_{split}_point{first['point']}_{season}.png"
        paths.append(style.save(figure, style.folder(out, KIND) / name))
    return paths


def main(argv=None) -> list[Path]:
    return cli.selected_samples_main(__doc__, KIND, plot, argv)


if __name__ == "__main__":
    main()
