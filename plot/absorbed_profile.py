"""The absorbed energy profile of one sample: what the emulator puts in each layer against what
TARTES puts there, in W m-2 and as a fraction of the incident shortwave, against depth below the
snow surface (m); beside it, the energy absorbed from the surface down to each depth, and what
reaches the soil. For models that give the energy budget.

    python -m plot.absorbed_profile [--run RUN] [--out runs/graphs/<run>/absorbed_profile/] [--point P]
                                    [--region R] [--time "2014-03-15 12:00"] [--row N] [--split test]

The sample: with --row, row N of the split's evaluation set (any split, the wide-range profiles
included); else the sample of --point at --time (UTC time stamp of a daylight sample); without
--time, noon (the highest sun) of the day of deepest snow among the point's samples; without
--point, the point of median number of samples (as in plot.season and plot.snowpack).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from plot import cli, snowpack, style
from plot.evaluation import evaluation_set, is_budget, resolve, sample_budget, utc

KIND = "absorbed_profile"
FLOOR = 1e-7  # fraction of the incident shortwave: smaller absorptions are drawn at it (log axis)


def choose(run, split: str, region=None, point=None, time=None, row=None, device=None) -> pd.Series:
    """The evaluation-set row of the sample to draw (see the module's docstring)."""
    df = evaluation_set(run, split, device=device)
    if not is_budget(df):
        raise ValueError(f"{run.name} gives the albedo only: no absorbed profile")
    if row is not None:
        if not 0 <= row < len(df):
            raise ValueError(f"--row {row}: the {split} split has rows 0 to {len(df) - 1}")
        return df.iloc[row]
    where, when, sample = snowpack.choose(run, split, region, point, time, device)
    if sample is None:
        raise ValueError(f"{run.path}: no {split} sample at point {int(where['point'])} at {utc(time)} "
                         "(night, no snow or no shortwave): choose a daylight time")
    return sample


def describe(sample: pd.Series) -> str:
    """Where and when a sample is, in words."""
    if pd.isna(sample["time"]):
        return f"drawn profile {int(sample['point'])} of {sample['season']}"
    return (f"point {int(sample['point'])}: {style.point_label(sample)}, {sample['time']:%Y-%m-%d %H:%M} UTC")


def plot(run=None, out: str | Path | None = None, point: int | None = None, time=None, split: str = "test",
         device=None, region: str | None = None, row: int | None = None) -> Path:
    style.use()
    run = resolve(run)
    sample = choose(run, split, region, point, time, row, device)
    budget = sample_budget(run, sample, device)
    layers, sw = budget.layers, budget.shortwave
    edges = np.concatenate([[0.0], layers["bottom"].to_numpy()])

    figure, (per_layer, cumulative) = plt.subplots(1, 2, figsize=(12, 6.8), sharey=True, constrained_layout=True)
    for column, colour, label, ls in (("target", style.TARGET, "TARTES (label)", "-"),
                                      ("prediction", style.PREDICTION, "emulator", "--")):
        fraction = layers[column].to_numpy()
        per_layer.stairs(np.maximum(fraction, FLOOR) * sw, edges, orientation="horizontal", color=colour, lw=1.8,
                         ls=ls, baseline=None, label=label)
        cumulative.plot(np.concatenate([[0.0], np.cumsum(fraction)]) * sw, edges, "o" + ls, ms=3, color=colour,
                        lw=1.6, label=label)
    per_layer.set_xscale("log")
    per_layer.set_ylim(edges[-1] * 1.02, 0)  # depth downwards
    per_layer.set_ylabel(style.LABELS["depth"])
    per_layer.set_xlabel(f"absorbed in each layer (W m⁻²; below {FLOOR:g} of SW drawn at it)")
    per_layer.set_title(f"{len(layers)} layers", fontsize=11)
    cumulative.set_xlabel("absorbed from the surface down to the depth (W m⁻²)")
    cumulative.set_title("cumulative; the soil gets the rest of the absorbed energy", fontsize=11)
    cumulative.axhline(edges[-1], color="grey", lw=1)
    cumulative.annotate(f"soil: TARTES {budget.soil_target * sw:.1f} W m⁻², emulator "
                        f"{budget.soil_prediction * sw:.1f} W m⁻²", (0.02, edges[-1]), xycoords=("axes fraction", "data"),
                        xytext=(0, -4), textcoords="offset points", va="top", fontsize=9)
    # one legend for both panels, below them: inside, it covered the curves of some profiles
    figure.legend(*per_layer.get_legend_handles_labels(), loc="outside lower center", ncols=2)
    for ax in (per_layer, cumulative):  # the same energies as fractions of the incident shortwave
        secondary = ax.secondary_xaxis("top", functions=(lambda w: w / sw, lambda f: f * sw))
        secondary.set_xlabel(style.LABELS["absorbed"])
    error = np.abs(layers["prediction"] - layers["target"]).sum() + abs(budget.soil_prediction - budget.soil_target)
    figure.suptitle(
        f"Absorbed shortwave profile, {describe(sample)} ({split})\n"
        f"SW {sw:.0f} W m⁻², direct fraction {budget.direct_fraction:.2f}, cos_illum {budget.cos_illum:.2f}; "
        f"albedo TARTES {budget.albedo_target:.4f}, emulator {budget.albedo_prediction:.4f}; "
        f"profile error {error:.4f}\n{run.name}")
    stamp = "" if pd.isna(sample["time"]) else f"_{sample['time']:%Y%m%d%H}"
    name = f"{KIND}_{split}_{sample['region']}_point{int(sample['point'])}{stamp}.png"
    return style.save(figure, style.folder(out, KIND) / name)


def main(argv=None) -> Path:
    p = cli.parser(__doc__, KIND)
    cli.add_sample(p, "UTC time stamp of a daylight sample, e.g. '2014-03-15 12:00'")
    p.add_argument("--row", type=int, help="row of the split's evaluation set instead of a point and time")
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.point, args.time, args.split, args.device, args.region, args.row)


if __name__ == "__main__":
    main()
