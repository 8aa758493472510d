"""Every figure of a run, with the scripts' defaults, under <out>/<kind>/ (default runs/graphs/<run>/,
a folder per run: the run directory's name, or for a shipped model its folder's and its hash).

    python -m plot.all [--run RUN] [--out runs/graphs/<run>/] [--device auto]
    python -m plot.all --out graphs        regenerates the figures committed in graphs/

For a model that gives the energy budget (optical_budget) also the figures of the absorbed
shortwave: the top layer's absorbed fraction against TARTES (scatter), the absorbed profile of one
sample (absorbed_profile), the error by layer and depth (layer_errors) and the season of the energy
absorbed in the top layer at one point (top_layer_season).

The default run is the one of the shipped model data/emulator.pt (the run directory that shipped it
with `python main.py --ship true`, when it is still here, else data/ itself). The figures need the
run's data, the shards that main.py caches under cache/: on a fresh clone, build those of the shipped
model first with `python main.py --data_only` and the data options of its configuration (no
training), which plot.all prints when they are missing.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from plot import (absorbed_profile, albedo_distribution, cli, deposition, diurnal, error_breakdown, inputs,
                  layer_errors, learning_curves, scatter, season, snowpack, top_layer_season)
from plot.evaluation import REPO, Run, evaluation_set, is_budget, resolve
from preprocessing.shards import is_complete
from utils.config import Config
from utils.devices import device_argument

# The configuration keys that decide a run's data (main.prepare_data): what `main.py --data_only` needs.
DATA_KEYS = ("crocus_dir", "shard_dir", "embedded", "embedded_region", "embedded_seasons", "embedded_points",
             "embedded_start_day", "embedded_days", "target", "sampled_dir", "sampled_train", "sampled_truncation",
             "sampled_validation", "sampled_test", "seed")

FIGURE_SPLITS = ("train", "validation", "test")  # the splits the figures read (plot.inputs reads all three)


class MissingData(FileNotFoundError):
    """The run's shards are not here: the message says what to run first."""


def data_command(config: dict) -> str:
    """The command that builds the data of a run of configuration `config`."""
    defaults = asdict(Config())
    words = ["python", "main.py", "--data_only"]
    for key in DATA_KEYS:
        if key in config and config[key] != defaults[key]:
            value = config[key]
            words += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    command = shlex.join(words)
    return command if Path.cwd().resolve() == REPO else f"cd {shlex.quote(str(REPO))} && {command}"


def check_data(run: Run) -> None:
    """MissingData, in one line that says what to run, unless every shard of the run's splits is here."""
    # each shard once: a training season drawn several times per epoch is listed as often (--season_repeats)
    missing = list(dict.fromkeys(path for split in FIGURE_SPLITS for path in run.splits.get(split, [])
                                 if not is_complete(path)))
    if missing:
        more = f" and {len(missing) - 1} other shard(s)" if len(missing) > 1 else ""
        raise MissingData(f"{missing[0]}{more} of {run.path} missing: build the data first with "
                          f"`{data_command(run.config)}` (no training), or choose another run with --run")


def plot_all(run=None, out: Path | None = None, device=None) -> list[Path]:
    """Write every figure of `run` (default: the default run) under out/<kind>/ (default
    runs/graphs/<run>/); returns the paths written. MissingData when the run's data is not here."""
    start = time.time()
    run = resolve(run)
    check_data(run)
    out = Path(out) if out is not None else cli.run_graphs(run)
    paths = [
        albedo_distribution.plot(run, out / albedo_distribution.KIND, device=device),
        *(scatter.plot(run, out / scatter.KIND, colour, device=device)
          for colour in ("surface_ssa", "surface_dust", "cos_illum", "snow_depth")),
        *season.plot(run, out / season.KIND, device=device),
        diurnal.plot(run, out / diurnal.KIND, device=device),
        *deposition.plot(run, out / deposition.KIND),
        inputs.plot(run, out / inputs.KIND),
        snowpack.plot(run, out / snowpack.KIND, device=device),
        error_breakdown.plot(run, out / error_breakdown.KIND, device=device),
    ]
    if is_budget(evaluation_set(run, device=device)):  # the absorbed energy: energy-budget models only
        paths += [
            scatter.plot(run, out / scatter.KIND, "surface_ssa", device=device, quantity="top"),
            absorbed_profile.plot(run, out / absorbed_profile.KIND, device=device),
            layer_errors.plot(run, out / layer_errors.KIND, device=device),
            *top_layer_season.plot(run, out / top_layer_season.KIND, device=device),
        ]
    else:
        print(f"{run.name} gives the albedo only: no figure of the absorbed energy")
    if run.metrics_file is not None:
        paths.append(learning_curves.plot(run, out / learning_curves.KIND))
    else:
        print(f"{run.path}: no metrics CSV, no learning curves")
    print(f"{len(paths)} figures of {run.name} under {out} ({time.time() - start:.0f} s)")
    return paths


def main(argv=None) -> list[Path]:
    """The command line: bad options exit with status 2, a run whose data is not here with status 1,
    each after one line."""
    p = argparse.ArgumentParser(prog="python -m plot.all", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help=cli.RUN_HELP)
    p.add_argument("--out", type=Path, default=None,
                   help="root folder of the figures (default runs/graphs/<run>/, a folder per run; graphs/ holds "
                        "the committed ones)")
    p.add_argument("--device", type=device_argument, default="auto",
                   help="cpu, cuda, cuda:N or auto, for the emulator's predictions")
    args = p.parse_args(argv)
    if args.run is not None and not Path(args.run).is_dir():
        p.error(f"--run {args.run}: no such directory")
    try:
        run = resolve(args.run)
    except (FileNotFoundError, ValueError) as e:
        if args.run is not None:
            p.error(f"--run {e}")
        fail(p, e)
    try:
        return plot_all(run, args.out, args.device)
    except MissingData as e:
        fail(p, e)


def fail(p: argparse.ArgumentParser, error: Exception) -> None:
    print(f"{p.prog}: error: {error}", file=sys.stderr)
    raise SystemExit(1)


if __name__ == "__main__":
    main()
