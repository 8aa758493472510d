"""The error of the absorbed profile layer by layer: the MAE of the fraction of the incident
shortwave absorbed in each layer (1 at the top) and by the soil, and by bins of the depth of the
layer's middle below the snow surface, over the split's samples, with the number of layers in each.
For models that give the energy budget.

    python -m plot.layer_errors [--run RUN] [--out runs/graphs/<run>/layer_errors/] [--split test]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from plot import cli, style
from plot.error_breakdown import bin_label
from plot.evaluation import layer_errors, resolve

KIND = "layer_errors"
MAE, COUNT = style.OKABE_ITO["bluish_green"], style.OKABE_ITO["sky_blue"]


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None) -> Path:
    style.use()
    run = resolve(run)
    errors = layer_errors(run, split, device=device)
    by_layer = errors["by_layer"][errors["by_layer"]["n"] > 0]
    by_depth, soil = errors["by_depth"], errors["soil"].iloc[0]

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), constrained_layout=True,
                                         gridspec_kw={"width_ratios": (1.6, 1)})
    x = by_layer.index.to_numpy()
    left.bar(x, by_layer["mae"], width=0.8, color=MAE, label="MAE, each layer")
    soil_x = x.max() + 2
    left.bar([soil_x], [soil["mae"]], width=0.8, color=style.OKABE_ITO["orange"], label="MAE, soil")
    left.set_yscale("log")
    left.set_xlabel("layer (1: top)")
    left.set_ylabel("MAE of the absorbed fraction of SW (-)")
    left.set_xticks([*x[::max(1, len(x) // 10)], soil_x], [*map(str, x[::max(1, len(x) // 10)]), "soil"])
    count = left.twinx()
    count.plot(x, by_layer["n"], color=COUNT, lw=1.5, label="samples with the layer")
    count.set_ylabel("samples with the layer")
    count.set_ylim(0, by_layer["n"].max() * 1.1)
    count.spines["right"].set_visible(True)
    count.grid(False)
    handles = [h for ax in (left, count) for h in ax.get_legend_handles_labels()[0]]
    left.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=9)
    left.set_title(f"by layer: top layer MAE {by_layer['mae'].iloc[0]:.5f} "
                   f"({by_layer['mae_w_m2'].iloc[0]:.2f} W m⁻²)", fontsize=11)

    positions = np.arange(len(by_depth))
    right.bar(positions, by_depth["mae"], width=0.7, color=MAE)
    for i, (mae, n) in enumerate(zip(by_depth["mae"], by_depth["n"])):
        if n:
            right.annotate(f"n={n:,}", (i, mae), xytext=(0, 3), textcoords="offset points", ha="center",
                           va="bottom", fontsize=8.5)
    right.set_yscale("log")
    right.set_xticks(positions, [bin_label(low, high, i == len(by_depth) - 1)
                                 for i, (low, high) in enumerate(zip(by_depth["low"], by_depth["high"]))],
                     fontsize=9, rotation=30)
    right.set_xlabel("depth of the layer's middle below the surface (m)")
    right.set_ylabel("MAE of the absorbed fraction of SW (-)")
    right.set_title("by depth (n: layers)", fontsize=11)
    for ax in (left, right):
        ax.grid(axis="x", visible=False)
    figure.suptitle(f"Error of the absorbed profile by layer, {split} samples\n{run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}_{split}.png")


def main(argv=None) -> Path:
    args = cli.parser(__doc__, KIND).parse_args(argv)
    return plot(args.run, args.out, args.split, args.device)


if __name__ == "__main__":
    main()
