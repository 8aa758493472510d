"""Error breakdown: MAE and bias of the emulator by bins of cos_sza, snow depth, surface SSA and
surface dust, with the number of samples in each bin.

The bins of cos_sza, snow depth and surface dust are those of the test report (utils/report.py),
so the bars equal its tables.

    python -m plot.error_breakdown [--run RUN] [--out graphs/error_breakdown/] [--split test] [selection options]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from plot import style
from utils.report import BINS, error_metrics

KIND = "error_breakdown"
QUANTITIES = ("cos_sza", "snow_depth", "surface_ssa", "surface_dust")
EDGES = {**{name: edges for name, (edges, _) in BINS.items()},
         "surface_ssa": [0.0, 5.0, 10.0, 20.0, 40.0, 80.0, np.inf]}  # m2 kg-1: old, aged, recent, fresh snow
MAE, BIAS = style.OKABE_ITO["bluish_green"], style.OKABE_ITO["reddish_purple"]


def breakdown(df: pd.DataFrame, name: str) -> list[dict]:
    """error_metrics of the samples in each bin of `name`, [low, high), the last bin closed."""
    edges, values = EDGES[name], df[name].to_numpy(dtype=np.float64)
    rows = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (values >= low) & ((values <= high) if i == len(edges) - 2 else (values < high))
        rows.append({"low": low, "high": high, **error_metrics(df["prediction"][inside], df["target"][inside])})
    return rows


def number(value: float) -> str:
    return f"{value:.0e}" if 0 < value < 1e-3 else f"{value:g}"


def bin_label(low: float, high: float, last: bool) -> str:
    if np.isinf(high):
        return f"≥ {number(low)}"
    return f"[{number(low)}, {number(high)}{']' if last else ')'}"


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None, **criteria) -> Path:
    style.use()
    run = style.resolve(run)
    df = style.selected_samples(run, split, device, criteria)
    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    for ax, name in zip(axes.flat, QUANTITIES):
        rows = breakdown(df, name)
        x = np.arange(len(rows))
        mae = [np.nan if r["n"] == 0 else r["mae"] for r in rows]
        bias = [np.nan if r["n"] == 0 else r["bias"] for r in rows]
        ax.bar(x - 0.2, mae, width=0.4, color=MAE, label="MAE")
        ax.bar(x + 0.2, bias, width=0.4, color=BIAS, label="bias (prediction - target)")
        ax.axhline(0, color="grey", lw=1)
        top = np.nanmax(np.abs(mae + bias)) if np.any(np.isfinite(mae)) else 1.0
        for i, r in enumerate(rows):
            ax.annotate(f"n={r['n']:,}", (i, max(np.nan_to_num(mae[i]), np.nan_to_num(bias[i]), 0)),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8.5)
        ax.set_ylim(min(0, np.nanmin(bias) * 1.15) if np.any(np.isfinite(bias)) else 0, top * 1.2)
        ax.set_xticks(x, [bin_label(r["low"], r["high"], i == len(rows) - 1) for i, r in enumerate(rows)], fontsize=9)
        ax.set_xlabel(style.LABELS[name])
        ax.set_ylabel("albedo error (-)")
        ax.grid(axis="x", visible=False)
    figure.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    overall = error_metrics(df["prediction"], df["target"])
    where = style.selection_label(criteria)
    figure.suptitle(f"Error by bins of the inputs, {len(df):,} {split} samples{', ' + where if where else ''} "
                    f"(overall MAE {overall['mae']:.4f}, bias {overall['bias']:+.4f})\n{run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}_{split}.png")


def main(argv=None) -> Path:
    return style.selected_samples_main(__doc__, KIND, plot, argv)


if __name__ == "__main__":
    main()
