"""Error breakdown: the emulator's errors by bins of the illumination cosine, snow depth, number of
layers, surface dust and soil albedo, with the number of samples in each bin: albedo MAE and bias; for an
energy-budget model also the MAE and bias of the absorbed fraction of the top layer and the mean
profile error (sum over layers and soil of |absorbed error|).

The bins are those of the test report, utils.report.BINS, binned by utils.report.bin_index and
summed up by utils.report.error_metrics, so the bars are its tables.

    python -m plot.error_breakdown [--run RUN] [--out runs/graphs/<run>/error_breakdown/] [--split test]
                                   [selection options]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from plot import cli, style
from plot.evaluation import is_budget, resolve, selected_samples, selection_label
from utils.report import BINS, bin_index, error_metrics

KIND = "error_breakdown"
QUANTITIES = tuple(BINS)  # cos_illum, snow_depth, n_layers, surface_dust, soil_albedo
PANEL = (4.0, 3.6)  # inches per panel: the count labels of 6 bins stay apart
MAE, BIAS = style.OKABE_ITO["bluish_green"], style.OKABE_ITO["reddish_purple"]
# Rows of the figure: (name in error_metrics, evaluation-set column, y label, bars: (statistic, label, colour))
ROWS = (("albedo", "albedo_error", "albedo error (-)", (("mae", "MAE", MAE), ("bias", "bias (prediction - target)", BIAS))),
        ("top_layer", "top_error", "top-layer absorbed\nfraction error (-)",
         (("mae", "MAE", MAE), ("bias", "bias (prediction - target)", BIAS))),
        ("profile", "profile_error", "profile error (-)", (("mean", "mean profile error", style.OKABE_ITO["blue"]),)))


def errors_of(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The per-sample errors of an evaluation set under the names of utils.report.profile_errors."""
    budget = is_budget(df)
    return {name: df[column].to_numpy(dtype=np.float64) for name, column, _, _ in ROWS if budget or name == "albedo"}


def breakdown(df: pd.DataFrame, name: str) -> list[dict]:
    """error_metrics of the samples in each bin of BINS[name], [low, high), the last bin closed."""
    edges, _ = BINS[name]
    index = bin_index(df[name].to_numpy(dtype=np.float64), edges)
    errors = errors_of(df)
    return [{"low": low, "high": high, **error_metrics({k: e[index == i] for k, e in errors.items()})}
            for i, (low, high) in enumerate(zip(edges[:-1], edges[1:]))]


def number(value: float) -> str:
    return f"{value:.0e}" if 0 < value < 1e-3 else f"{value:g}"


def count(n: int) -> str:
    """A sample count in at most 6 characters ('n=950', 'n=12k', 'n=1.2M'): the labels of
    neighbouring bins then never overlap."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if n >= 0.9995 * size:  # 999,500 is 1.0M, not 1000k
            value = n / size
            return f"n={value:.1f}{suffix}" if value < 9.95 else f"n={value:.0f}{suffix}"
    return f"n={n}"


def bin_label(low: float, high: float, last: bool) -> str:
    if np.isinf(high):
        return f"≥ {number(low)}"
    return f"[{number(low)}, {number(high)}{']' if last else ')'}"


def draw(ax, rows: list[dict], name: str, bars, annotate: bool) -> None:
    """Bars of `bars` (statistic, label, colour) of error_metrics' `name` in each bin."""
    x = np.arange(len(rows))
    width = 0.8 / len(bars)
    heights = []
    for k, (statistic, label, colour) in enumerate(bars):
        values = [np.nan if r["n"] == 0 else r[name][statistic] for r in rows]
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, values, width=width, color=colour, label=label)
        heights.append(values)
    ax.axhline(0, color="grey", lw=1)
    heights = np.array(heights, dtype=np.float64)
    if np.any(np.isfinite(heights)):
        ax.set_ylim(min(0, np.nanmin(heights) * 1.15), max(np.nanmax(np.abs(heights)), 1e-12) * 1.25)
    if annotate:
        for i, r in enumerate(rows):
            top = np.nanmax(np.append(heights[:, i], 0))
            ax.annotate(count(r["n"]), (i, top), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=8.5)
    ax.set_xticks(x, [bin_label(r["low"], r["high"], i == len(rows) - 1) for i, r in enumerate(rows)], fontsize=8.5,
                  rotation=25)
    ax.grid(axis="x", visible=False)


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None, **criteria) -> Path:
    style.use()
    run = resolve(run)
    df = selected_samples(run, split, device, criteria)
    rows = ROWS if is_budget(df) else ROWS[:1]
    width, height = PANEL
    figure, axes = plt.subplots(len(rows), len(QUANTITIES), figsize=(width * len(QUANTITIES), height * len(rows) + 1),
                                squeeze=False, constrained_layout=True)
    for column, quantity in enumerate(QUANTITIES):
        table = breakdown(df, quantity)
        for row, (name, _, ylabel, bars) in enumerate(rows):
            ax = axes[row, column]
            draw(ax, table, name, bars, annotate=row == 0)
            ax.set_xlabel(f"{style.LABELS[quantity]}" if row == len(rows) - 1 else "")
            if column == 0:
                ax.set_ylabel(ylabel)
    handles = {}
    for ax in axes[:, 0]:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles))
    overall = error_metrics(errors_of(df))
    where = selection_label(criteria)
    summary = f"overall albedo MAE {overall['albedo']['mae']:.4f}, bias {overall['albedo']['bias']:+.4f}"
    if "profile" in overall:
        summary += (f"; top layer MAE {overall['top_layer']['mae']:.4f}; mean profile error "
                    f"{overall['profile']['mean']:.4f}")
    figure.suptitle(f"Errors by bins of the test report, {len(df):,} {split} samples{', ' + where if where else ''} "
                    f"({summary})\n{run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}_{split}.png")


def main(argv=None) -> Path:
    return cli.selected_samples_main(__doc__, KIND, plot, argv)


if __name__ == "__main__":
    main()
