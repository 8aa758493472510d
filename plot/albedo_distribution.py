"""Distribution of the broadband albedo: TARTES target against the emulator, and of their difference.

    python -m plot.albedo_distribution [--run RUN] [--out runs/graphs/<run>/albedo_distribution/] [--split test]
                                       [selection options, e.g. --massif 3 --hours 11 12]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from plot import cli, style
from plot.evaluation import error_summary, resolve, selected_samples, selection_label

KIND = "albedo_distribution"


def plot(run=None, out: str | Path | None = None, split: str = "test", device=None, **criteria) -> Path:
    style.use()
    run = resolve(run)
    df = selected_samples(run, split, device, criteria)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    low = min(df["albedo_target"].min(), df["albedo_prediction"].min())
    edges = np.arange(np.floor(low * 50) / 50, 1.0 + 1e-9, 0.01)
    for column, colour, label in (("albedo_target", style.TARGET, "TARTES (target)"),
                                  ("albedo_prediction", style.PREDICTION, "emulator (prediction)")):
        left.hist(df[column], bins=edges, histtype="step", lw=1.6, color=colour, label=label)
    left.set_xlabel(style.LABELS["albedo"])
    left.set_ylabel(f"samples per bin of {edges[1] - edges[0]:.3f}")
    left.legend(loc="upper left")
    left.set_title("albedo")

    metrics = error_summary(df["albedo_error"])
    limit = max(np.percentile(np.abs(df["albedo_error"]), 99.9), 1e-3)
    right.hist(df["albedo_error"].clip(-limit, limit), bins=np.linspace(-limit, limit, 81), color=style.ERROR, alpha=0.75)
    right.axvline(0, color="grey", lw=1)
    right.set_yscale("log")
    right.set_xlabel(style.LABELS["albedo_error"])
    right.set_ylabel("samples per bin")
    right.set_title(f"error (|error| > {limit:.2f}, 0.1 % of samples: in the end bins)")
    right.text(0.02, 0.97, f"MAE {metrics['mae']:.4f}\nbias {metrics['bias']:+.4f}\nRMSE {metrics['rmse']:.4f}",
               transform=right.transAxes, va="top", ha="left")
    where = selection_label(criteria)
    figure.suptitle(f"Albedo of {len(df):,} {split} samples{', ' + where if where else ''}: {run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}_{split}.png")


def main(argv=None) -> Path:
    return cli.selected_samples_main(__doc__, KIND, plot, argv)


if __name__ == "__main__":
    main()
