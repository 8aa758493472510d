"""Emulator prediction against TARTES target, coloured by an input, with marginal histograms, the
1:1 line, and MAE, RMSE and bias on the figure.

    python -m plot.scatter [--run RUN] [--out graphs/scatter/] [--colour surface_ssa|surface_dust|cos_sza|snow_depth|...]
                           [--split test] [selection options]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize

from plot import style
from utils.report import error_metrics

KIND = "scatter"
# Colour scales of the inputs one may colour by: log where the values span orders of magnitude.
COLOURS = {"surface_ssa": "linear", "surface_dust": "log", "surface_soot": "log", "cos_sza": "linear",
           "snow_depth": "log", "direct_fraction": "linear", "surface_density": "linear", "n_layers": "linear"}
FLOORS = {"snow_depth": 1e-3}  # m: a log scale needs a positive floor


def plot(run=None, out: str | Path | None = None, colour: str = "surface_ssa", split: str = "test", device=None,
         **criteria) -> Path:
    if colour not in COLOURS:
        raise ValueError(f"colour {colour!r}: expected one of {sorted(COLOURS)}")
    style.use()
    run = style.resolve(run)
    df = style.selected_samples(run, split, device, criteria)
    # A random drawing order, so that no colour hides the others by coming last.
    df = df.iloc[np.random.default_rng(0).permutation(len(df))]
    values = df[colour].to_numpy(dtype=np.float64)
    if COLOURS[colour] == "log":
        values = style.log_values(values, colour) if colour in style.LOG_FLOORS else np.maximum(values, FLOORS[colour])
        norm = LogNorm(np.percentile(values, 1), values.max())
    else:
        norm = Normalize(np.percentile(values, 1), np.percentile(values, 99))

    figure = plt.figure(figsize=(8.4, 8), constrained_layout=True)
    grid = figure.add_gridspec(2, 3, width_ratios=(5, 1.2, 0.22), height_ratios=(1.2, 5))
    ax = figure.add_subplot(grid[1, 0])
    top = figure.add_subplot(grid[0, 0], sharex=ax)
    side = figure.add_subplot(grid[1, 1], sharey=ax)
    bar = figure.add_subplot(grid[1, 2])

    low = np.floor(min(df["target"].min(), df["prediction"].min()) * 20) / 20
    limits = (low, 1.0)
    points = ax.scatter(df["target"], df["prediction"], c=values, norm=norm, cmap=style.CONTINUOUS, s=4, alpha=0.7,
                        linewidths=0, rasterized=True)
    ax.plot(limits, limits, color="grey", lw=1.2, ls="--", label="1:1")
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.set_xlabel(style.LABELS["target"])
    ax.set_ylabel(style.LABELS["prediction"])
    ax.legend(loc="lower right")
    metrics = error_metrics(df["prediction"], df["target"])
    ax.text(0.03, 0.97, f"n = {metrics['n']:,}\nMAE = {metrics['mae']:.4f}\nRMSE = {metrics['rmse']:.4f}\n"
                        f"bias = {metrics['bias']:+.4f}", transform=ax.transAxes, va="top", ha="left",
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    colorbar = figure.colorbar(points, cax=bar)
    colorbar.set_label(style.LABELS[colour] + (" (zeros at the bottom)" if colour in style.LOG_FLOORS else ""))
    colorbar.solids.set_alpha(1)
    if COLOURS[colour] == "log":
        style.format_log(colorbar.ax.yaxis, norm.vmin, norm.vmax)

    edges = np.linspace(*limits, 81)
    top.hist(df["target"], bins=edges, color=style.TARGET)
    top.set_ylabel("samples")
    top.set_title("TARTES target", fontsize=10)
    top.tick_params(labelbottom=False)
    side.hist(df["prediction"], bins=edges, color=style.PREDICTION, orientation="horizontal")
    side.set_xlabel("samples")
    side.set_title("emulator", fontsize=10)
    side.tick_params(labelleft=False)
    where = style.selection_label(criteria)
    figure.suptitle(f"Emulator against TARTES, {split} seasons{', ' + where if where else ''}\n{run.name}, "
                    f"coloured by {style.LABELS[colour].split(' (')[0]}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}_{split}_{colour}.png")


def main(argv=None) -> Path:
    p = style.parser(__doc__, KIND)
    p.add_argument("--colour", default="surface_ssa", choices=sorted(COLOURS), help="input colouring the points")
    style.add_selection(p)
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.colour, args.split, args.device, **style.selection(args))


if __name__ == "__main__":
    main()
