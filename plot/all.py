"""Every figure of a run, with the scripts' defaults, under <out>/<kind>/ (default graphs/).

    python -m plot.all [--run RUN] [--out graphs/] [--device auto]

After the default run (`python main.py`, which ships its model to data/), a plain
`python -m plot.all` refreshes the committed figures in graphs/.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from plot import (albedo_distribution, deposition, diurnal, error_breakdown, inputs, learning_curves, scatter, season,
                  snowpack, style)


def plot_all(run=None, out: Path = style.GRAPHS, device=None) -> list[Path]:
    """Write every figure of `run` (default: the default run); returns the paths written."""
    start = time.time()
    run = style.resolve(run)
    out = Path(out)
    paths = [
        albedo_distribution.plot(run, out / albedo_distribution.KIND, device=device),
        *(scatter.plot(run, out / scatter.KIND, colour, device=device)
          for colour in ("surface_ssa", "surface_dust", "cos_sza", "snow_depth")),
        *season.plot(run, out / season.KIND, device=device),
        diurnal.plot(run, out / diurnal.KIND, device=device),
        *deposition.plot(run, out / deposition.KIND),
        inputs.plot(run, out / inputs.KIND),
        snowpack.plot(run, out / snowpack.KIND, device=device),
        error_breakdown.plot(run, out / error_breakdown.KIND, device=device),
    ]
    if run.metrics_file is not None:
        paths.append(learning_curves.plot(run, out / learning_curves.KIND))
    else:
        print(f"{run.path}: no metrics CSV, no learning curves")
    print(f"{len(paths)} figures of {run.name} under {out} ({time.time() - start:.0f} s)")
    return paths


def main(argv=None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="run directory or shipped-model directory (default: the default run)")
    p.add_argument("--out", type=Path, default=style.GRAPHS, help="root folder of the figures (default graphs/)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto, for the emulator's predictions")
    args = p.parse_args(argv)
    return plot_all(args.run, args.out, args.device)


if __name__ == "__main__":
    main()
