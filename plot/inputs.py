"""Distributions of the emulator's inputs (and of its targets) in the splits of a run: per layer
dz, SSA, density, black carbon and dust (present layers only), per profile the number of layers,
snow depth, the illumination cosine on the slope (cos_illum, what the labels depend on) and the
horizontal cos_zenith (none for drawn profiles), direct and diffuse shortwave, direct fraction, and
the TARTES labels: albedo, fraction of the incident shortwave absorbed in the top layer, in the
whole pack and by the soil.

Heavy-tailed quantities (dz, SSA, impurities, snow depth) are drawn on log axes; exact zeros of the
impurities, which a log axis cannot show, are counted in the legend. Histograms are accumulated
shard by shard on fixed bins, so any size of data fits in memory.

    python -m plot.inputs [--run RUN] [--out runs/graphs/<run>/inputs/] [--splits train validation test]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from dataset import ShardDataset
from plot import cli, style
from plot.evaluation import input_columns, resolve
from utils.schema import LAYER_VARIABLES

KIND = "inputs"
# Fixed bins (and whether the axis is logarithmic) of each quantity, in its unit.
BINS = {
    "dz": (np.logspace(-6, 0.5, 79), True),
    "ssa": (np.logspace(0, 2.5, 61), True),
    "density": (np.linspace(0, 950, 58), False),
    "soot": (np.logspace(-14, -2, 73), True),
    "dust": (np.logspace(-12, 0, 73), True),
    "n_layers": (np.arange(0.5, 51), False),
    "snow_depth": (np.logspace(-5, 1.5, 79), True),
    "cos_illum": (np.linspace(-1, 1, 101), False),  # negative: the sun behind the slope
    "cos_zenith": (np.linspace(0, 1, 51), False),
    "direct_sw": (np.linspace(0, 1400, 71), False),
    "diffuse_sw": (np.linspace(0, 1400, 141), False),
    "direct_fraction": (np.linspace(0, 1, 51), False),
    "albedo": (np.linspace(0, 1, 101), False),
    "top": (np.linspace(0, 1, 101), False),
    "pack": (np.linspace(0, 1, 101), False),
    "soil": (np.linspace(0, 1, 101), False),
}
TITLES = {"albedo": "TARTES albedo (label, -)", "top": "absorbed, top layer (label, fraction of SW)",
          "pack": "absorbed, whole pack (label, fraction of SW)", "soil": "absorbed, soil (label, fraction of SW)"}
PROFILE = ("n_layers", "snow_depth", "cos_illum", "cos_zenith")  # of ShardDataset.report_columns
ILLUMINATION = ("direct_sw", "diffuse_sw", "direct_fraction")  # of plot.evaluation.input_columns
LAYERED = ("dz", "ssa", "density", "soot", "dust")
SPLIT_COLOURS = {"train": style.TRAIN, "validation": style.VALIDATION, "test": style.OKABE_ITO["blue"],
                 "wide_range": style.OKABE_ITO["reddish_purple"]}


class Histograms:
    """Counts on the fixed BINS, plus zeros, values below and above the bins, and totals."""

    def __init__(self):
        self.counts = {name: np.zeros(len(edges) - 1, dtype=np.int64) for name, (edges, _) in BINS.items()}
        self.zeros = dict.fromkeys(BINS, 0)
        self.below = dict.fromkeys(BINS, 0)
        self.above = dict.fromkeys(BINS, 0)
        self.total = dict.fromkeys(BINS, 0)

    def add(self, name: str, values: np.ndarray) -> None:
        """Count the values; NaN (cos_zenith of drawn profiles) are not counted at all."""
        edges, _ = BINS[name]
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[~np.isnan(values)]
        self.counts[name] += np.histogram(values, edges)[0]
        self.zeros[name] += int(np.sum(values == 0))
        self.below[name] += int(np.sum((values < edges[0]) & (values != 0)))
        self.above[name] += int(np.sum(values > edges[-1]))
        self.total[name] += len(values)


def accumulate(paths: list[Path], desc: str) -> Histograms:
    histograms = Histograms()
    for path in tqdm(paths, desc=desc, unit="shard", leave=False):
        shard = ShardDataset([path])
        profiles = shard.report_columns(truncation=False)
        for name in PROFILE:
            histograms.add(name, profiles[name])
        for rows in shard.chunks():
            for i, name in enumerate(LAYER_VARIABLES):
                histograms.add(name, rows["layers"][:, i][rows["mask"]])
            illumination = input_columns(rows)
            for name in ILLUMINATION:
                histograms.add(name, illumination[name])
            histograms.add("albedo", rows["albedo"])
            histograms.add("top", rows["absorbed"][:, 0])
            histograms.add("pack", rows["absorbed"].sum(axis=1, dtype=np.float64))
            histograms.add("soil", rows["soil"])
    return histograms


def plot(run=None, out: str | Path | None = None, splits: tuple[str, ...] = ("train", "validation", "test")) -> Path:
    style.use()
    run = resolve(run)
    unknown = [s for s in splits if s not in run.splits]
    if unknown:
        raise ValueError(f"{run.path}: no split {unknown}; splits: {sorted(run.splits)}")
    splits = [s for s in splits if run.splits[s]]
    histograms = {split: accumulate(run.splits[split], f"histograms of {split}") for split in splits}

    figure, axes = plt.subplots(4, 4, figsize=(15, 13), constrained_layout=True)
    for ax, name in zip(axes.flat, BINS):
        edges, log = BINS[name]
        # The axis spans the bins holding data (the fixed bins are wide enough for any plausible run).
        used = np.flatnonzero(sum(histograms[s].counts[name] for s in splits))
        if len(used):
            ax.set_xlim(edges[max(used[0] - 1, 0)], edges[min(used[-1] + 2, len(edges) - 1)])
        noted = False
        for split in splits:
            h = histograms[split]
            if h.total[name] == 0:
                continue
            notes = []
            if log and h.zeros[name]:
                notes.append(f"{100 * h.zeros[name] / h.total[name]:.2g} % zeros")
            outside = h.below[name] + h.above[name]
            if outside:
                notes.append(f"{100 * outside / h.total[name]:.2g} % beyond the bins")
            noted |= bool(notes)
            ax.stairs(h.counts[name] / h.total[name], edges, color=SPLIT_COLOURS.get(split, style.ERROR), lw=1.5,
                      label=f"{split}{': ' + ', '.join(notes) if notes else ''}")
        if log:
            style.log_axis(ax, "x")
        ax.set_xlabel(TITLES.get(name) or style.LABELS[name])
        ax.set_ylabel(f"fraction of {'layers' if name in LAYERED else 'profiles'} per bin")
        if noted:
            ax.legend(fontsize=8, loc="best")
    handles = [plt.Line2D([], [], color=SPLIT_COLOURS.get(s, style.ERROR), lw=2) for s in splits]
    sizes = {s: histograms[s].total["albedo"] for s in splits}
    figure.legend(handles, [f"{s} ({sizes[s]:,} profiles)" for s in splits], loc="outside lower center", ncols=len(splits))
    figure.suptitle(f"Inputs of the emulator by split: {run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}.png")


def main(argv=None) -> Path:
    p = cli.parser(__doc__, KIND, split=False)
    p.add_argument("--splits", nargs="+", default=["train", "validation", "test"], help="splits to compare")
    args = p.parse_args(argv)
    return plot(args.run, args.out, tuple(args.splits))


if __name__ == "__main__":
    main()
