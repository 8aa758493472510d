"""Emulator prediction against TARTES target, coloured by an input, with marginal histograms, the
1:1 line, and MAE, RMSE and bias on the figure: of the albedo, or for an energy-budget model of the
fraction of the incident shortwave absorbed in the top layer (--quantity top) or by the soil (soil).

    python -m plot.scatter [--run RUN] [--out runs/graphs/<run>/scatter/] [--quantity albedo|top|soil]
                           [--colour surface_ssa|surface_dust|cos_illum|snow_depth|...] [--split test] [selection options]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize

from plot import cli, style
from plot.evaluation import error_summary, is_budget, resolve, selected_samples, selection_label

KIND = "scatter"
# Colour scales of the inputs one may colour by: log where the values span orders of magnitude.
COLOURS = {"surface_ssa": "linear", "surface_dust": "log", "surface_soot": "log", "cos_illum": "linear", "cos_zenith": "linear",
           "snow_depth": "log", "direct_fraction": "linear", "surface_density": "linear", "n_layers": "linear"}
FLOORS = {"snow_depth": 1e-3}  # m: a log scale needs a positive floor


def plot(run=None, out: str | Path | None = None, colour: str = "surface_ssa", split: str = "test", device=None,
         quantity: str = "albedo", **criteria) -> Path:
    if colour not in COLOURS:
        raise ValueError(f"colour {colour!r}: expected one of {sorted(COLOURS)}")
    if quantity not in style.QUANTITIES:
        raise ValueError(f"quantity {quantity!r}: expected one of {sorted(style.QUANTITIES)}")
    style.use()
    run = resolve(run)
    df = selected_samples(run, split, device, criteria)
    if quantity != "albedo" and not is_budget(df):
        raise ValueError(f"{run.name} gives the albedo only: no {style.QUANTITIES[quantity]}")
    target, prediction = df[f"{quantity}_target"], df[f"{quantity}_prediction"]
    values = df[colour].to_numpy(dtype=np.float64)
    if np.isnan(values).all():
        raise ValueError(f"{run.path}: no {colour} in the selected {split} samples (drawn profiles have no cos_zenith)")
    # A random drawing order, so that no colour hides the others by coming last.
    order = np.random.default_rng(0).permutation(len(df))
    target, prediction, values = target.to_numpy()[order], prediction.to_numpy()[order], values[order]
    if COLOURS[colour] == "log":
        values = style.log_values(values, colour) if colour in style.LOG_FLOORS else np.maximum(values, FLOORS[colour])
        norm = LogNorm(np.nanpercentile(values, 1), np.nanmax(values))
    else:
        norm = Normalize(np.nanpercentile(values, 1), np.nanpercentile(values, 99))

    figure = plt.figure(figsize=(8.4, 8), constrained_layout=True)
    grid = figure.add_gridspec(2, 3, width_ratios=(5, 1.2, 0.22), height_ratios=(1.2, 5))
    ax = figure.add_subplot(grid[1, 0])
    top = figure.add_subplot(grid[0, 0], sharex=ax)
    side = figure.add_subplot(grid[1, 1], sharey=ax)
    bar = figure.add_subplot(grid[1, 2])

    if quantity == "albedo":
        limits = (np.floor(min(target.min(), prediction.min()) * 20) / 20, 1.0)
    else:  # fractions of the incident shortwave, most of them small
        limits = (0.0, np.ceil(max(target.max(), prediction.max()) * 20) / 20)
    points = ax.scatter(target, prediction, c=values, norm=norm, cmap=style.CONTINUOUS, s=4, alpha=0.7,
                        linewidths=0, rasterized=True)
    ax.plot(limits, limits, color="grey", lw=1.2, ls="--", label="1:1")
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.set_xlabel(style.LABELS[f"{quantity}_target"])
    ax.set_ylabel(style.LABELS[f"{quantity}_prediction"])
    ax.legend(loc="lower right")
    metrics = error_summary(prediction - target)
    ax.text(0.03, 0.97, f"n = {metrics['n']:,}\nMAE = {metrics['mae']:.4f}\nRMSE = {metrics['rmse']:.4f}\n"
                        f"bias = {metrics['bias']:+.4f}", transform=ax.transAxes, va="top", ha="left",
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    colorbar = figure.colorbar(points, cax=bar)
    colorbar.set_label(style.LABELS[colour] + (" (zeros at the bottom)" if colour in style.LOG_FLOORS else ""))
    colorbar.solids.set_alpha(1)
    if COLOURS[colour] == "log":
        style.format_log(colorbar.ax.yaxis, norm.vmin, norm.vmax)

    edges = np.linspace(*limits, 81)
    top.hist(target, bins=edges, color=style.TARGET)
    top.set_ylabel("samples")
    top.set_title("TARTES target", fontsize=10)
    top.tick_params(labelbottom=False)
    side.hist(prediction, bins=edges, color=style.PREDICTION, orientation="horizontal")
    side.set_xlabel("samples")
    side.set_title("emulator", fontsize=10)
    side.tick_params(labelleft=False)
    where = selection_label(criteria)
    figure.suptitle(f"Emulator against TARTES: {style.QUANTITIES[quantity]}, {split} samples"
                    f"{', ' + where if where else ''}\n{run.name}, coloured by {style.LABELS[colour].split(' (')[0]}")
    name = f"{KIND}_{split}_{colour}.png" if quantity == "albedo" else f"{KIND}_{split}_{quantity}_{colour}.png"
    return style.save(figure, style.folder(out, KIND) / name)


def main(argv=None) -> Path:
    p = cli.parser(__doc__, KIND)
    p.add_argument("--colour", default="surface_ssa", choices=sorted(COLOURS), help="input colouring the points")
    p.add_argument("--quantity", default="albedo", choices=list(style.QUANTITIES),
                   help="albedo, or for an energy-budget model the absorbed fraction of the top layer or of the soil")
    cli.add_selection(p)
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.colour, args.split, args.device, args.quantity, **cli.selection(args))


if __name__ == "__main__":
    main()
