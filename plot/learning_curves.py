"""Learning curves of a run from its metrics CSV: training and validation albedo MAE per epoch
(and, for energy-budget models, the validation errors of the top layer's absorbed fraction and of
the absorbed profile), the selected epoch (best validation loss) and the test errors of the
selected model, and the learning rate.

    python -m plot.learning_curves [--run RUN] [--out runs/graphs/<run>/learning_curves/]
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from plot import cli, style
from plot.evaluation import resolve

KIND = "learning_curves"


def plot(run=None, out: str | Path | None = None) -> Path:
    style.use()
    run = resolve(run)
    if run.metrics_file is None:
        raise FileNotFoundError(f"{run.path}: no metrics CSV (metrics.csv in a run directory, "
                                "emulator_metrics.csv next to a shipped model)")
    metrics = pd.read_csv(run.metrics_file)
    missing = {"epoch", "train_mae", "val_mae", "lr"} - set(metrics.columns)
    if missing or metrics.empty:
        raise ValueError(f"{run.metrics_file}: {'no epoch' if metrics.empty else f'no column {sorted(missing)}'}")
    best = metrics.loc[metrics["val_loss"].idxmin()] if "val_loss" in metrics else metrics.loc[metrics["val_mae"].idxmin()]
    budget = "val_profile_error" in metrics and metrics["val_profile_error"].notna().any()

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True,
                                         gridspec_kw={"width_ratios": (1.6, 1)})
    left.plot(metrics["epoch"], metrics["train_mae"], "o-", ms=4, color=style.TRAIN, label="training (mean over the epoch)")
    left.plot(metrics["epoch"], metrics["val_mae"], "o-", ms=4, color=style.VALIDATION, label="validation")
    if budget:
        left.plot(metrics["epoch"], metrics["val_top_mae"], "s--", ms=3, color=style.VALIDATION, alpha=0.7,
                  label="validation: top layer's absorbed fraction, MAE")
        left.plot(metrics["epoch"], metrics["val_profile_error"], "^:", ms=3, color=style.VALIDATION, alpha=0.7,
                  label="validation: profile error (sum over layers and soil)")
    left.axvline(best["epoch"], color="grey", ls="--", lw=1,
                 label=f"selected: epoch {best['epoch']:g}, validation albedo MAE {best['val_mae']:.5f}")
    if run.report_file is not None:
        test = json.loads(run.report_file.read_text())["test"]["overall"]
        left.plot([best["epoch"]], [test["albedo"]["mae"]], "D", ms=8, color=style.PREDICTION,
                  label=f"test albedo MAE of the selected model: {test['albedo']['mae']:.5f}")
        if "profile" in test:
            left.plot([best["epoch"]], [test["profile"]["mean"]], "^", ms=8, color=style.PREDICTION,
                      label=f"test profile error: {test['profile']['mean']:.5f}")
    left.set_xlabel("epoch")
    left.set_ylabel("error (fraction of the incident shortwave)")
    style.log_axis(left, "y")
    figure.legend(loc="outside lower center", ncols=2, fontsize=9)
    left.set_title("errors")
    right.plot(metrics["epoch"], metrics["lr"], "o-", ms=4, color=style.OKABE_ITO["blue"])
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("learning rate (-)")
    right.set_title("learning rate at each epoch's last step", fontsize=11)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"Learning curves: {run.name}")
    return style.save(figure, style.folder(out, KIND) / f"{KIND}.png")


def main(argv=None) -> Path:
    args = cli.parser(__doc__, KIND, split=False).parse_args(argv)
    return plot(args.run, args.out)


if __name__ == "__main__":
    main()
