"""The emulator inside the snowpack model: snow depth and SWE through a season at a few points, as
the runs with TARTES, the emulator and Gardner-Sharp radiation give them, and the emulator's
difference from the TARTES run. Drawn from the series that `python -m benchmarks.online` writes
beside its JSON (FILE with the suffix .npz).

    python -m plot.online --series FILE.npz [--out runs/graphs/online/] [--season K] [--points P ...]

Without --points: three points of the season whose seasonal snow (a peak SWE of 100 kg m-2 or
more) melts out in the TARTES run, at the lowest, the median and the highest altitude among them.
The x axis spans the season's snow; dotted lines mark the melt-outs of the TARTES and emulator runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from plot import style

KIND = "online"
COLOURS = {"tartes": style.TARGET, "emulator": style.PREDICTION, "gardner": style.OKABE_ITO["bluish_green"]}
LABELS = {"tartes": "TARTES (the labeller)", "emulator": "emulator", "gardner": "Gardner-Sharp albedo"}
QUANTITIES = {"DSN_T_ISBA": ("snow depth (m)", "emulator -\nTARTES (m)"),
              "WSN_T_ISBA": ("SWE (kg m⁻²)", "emulator -\nTARTES (kg m⁻²)")}
MARGIN = np.timedelta64(7, "D")  # before the first snow and after the last
SEASONAL_SWE = 100.0  # kg m-2: a peak of at least this is a season's snowpack, not a passing snowfall


def read(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no series file (python -m benchmarks.online --out FILE writes FILE.npz)")
    with np.load(path) as series:
        return {name: series[name] for name in series.files}


def default_points(series: dict, season: int) -> list[int]:
    """Points whose seasonal snow (a TARTES peak of SEASONAL_SWE or more) melts out in the TARTES
    run, or failing any, all points: the lowest, the median and the highest."""
    seasonal = np.nanmax(series["tartes_WSN_T_ISBA"][season], axis=0) >= SEASONAL_SWE
    melted = np.flatnonzero((series["melt_out_tartes"][season] >= 0) & seasonal)
    if not len(melted):
        melted = np.arange(len(series["ZS"]))
    by_altitude = melted[np.argsort(series["ZS"][melted], kind="stable")]
    return sorted({int(by_altitude[i]) for i in (0, (len(by_altitude) - 1) // 2, len(by_altitude) - 1)})


def plot(series: str | Path, out: str | Path | None = None, season: int = 0,
         points: list[int] | None = None) -> Path:
    style.use()
    data = read(series)
    n_seasons, n_points = data["melt_out_tartes"].shape
    if not 0 <= season < n_seasons:
        raise ValueError(f"{series}: no season {season} (0..{n_seasons - 1})")
    points = default_points(data, season) if points is None else points
    for p in points:
        if not 0 <= p < n_points:
            raise ValueError(f"{series}: no point {p} (0..{n_points - 1})")
    runs = [str(run) for run in data["runs"]]
    times = data["times"][season]
    valid = ~np.isnat(times)
    times = times[valid]
    figure, axes = plt.subplots(4, len(points), figsize=(5.2 * len(points) + 1, 10), sharex="col", squeeze=False,
                                constrained_layout=True, gridspec_kw={"height_ratios": (3, 1.3, 3, 1.3)})
    for column, p in enumerate(points):
        snow = np.zeros(len(times), bool)
        for run in runs:
            snow |= data[f"{run}_WSN_T_ISBA"][season, valid, p] > 0
        span = times[snow] if snow.any() else times
        for k, (name, (label, difference_label)) in enumerate(QUANTITIES.items()):
            values, difference = axes[2 * k, column], axes[2 * k + 1, column]
            for run in runs:
                values.plot(times, data[f"{run}_{name}"][season, valid, p], color=COLOURS.get(run), lw=1.3,
                            ls="--" if run == "emulator" else "-", label=LABELS.get(run, run))
            delta = data[f"emulator_{name}"][season, valid, p] - data[f"tartes_{name}"][season, valid, p]
            difference.axhline(0, color="grey", lw=1)
            difference.plot(times, delta, color=style.ERROR, lw=1.0)
            values.set_ylabel(label if column == 0 else "")
            difference.set_ylabel(difference_label if column == 0 else "")
            for run in ("tartes", "emulator"):
                hour = data[f"melt_out_{run}"][season, p]
                if hour >= 0:
                    values.axvline(data["times"][season, hour], color=COLOURS[run], lw=0.8, ls=":")
        top = axes[0, column]
        point = {"massif": data["massif"][p], "ZS": data["ZS"][p], "slope": data["slope"][p], "aspect": data["aspect"][p]}
        melts = [data[f"melt_out_{run}"][season, p] for run in ("tartes", "emulator")]
        melt = (f"melt-out emulator - TARTES: {melts[1] - melts[0]:+d} h" if min(melts) >= 0
                else "no melt-out in a run")
        top.set_title(f"point {p}: {style.point_label(point)}\n{melt}", fontsize=10)
        bottom = axes[-1, column]
        style.season_axis(bottom)
        bottom.set_xlim(span[0] - MARGIN, span[-1] + MARGIN)
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0, 1.18), ncols=len(runs), borderaxespad=0.2)
    figure.suptitle(f"The emulator inside the snowpack model, season {style.season_label(str(data['season'][season]))}"
                    f" (melt-out: dotted)\n{data['model']}")
    name = f"{KIND}_{data['season'][season]}.png"
    return style.save(figure, style.folder(out, KIND) / name)


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(prog="python -m plot.online", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", required=True, type=Path, help="the .npz that benchmarks.online writes beside its JSON")
    p.add_argument("--out", type=Path, default=style.RUN_GRAPHS / KIND,
                   help=f"output folder (default runs/graphs/{KIND}/; graphs/{KIND}/ holds the committed figure)")
    p.add_argument("--season", type=int, default=0, help="season index in the file (default 0)")
    p.add_argument("--points", type=int, nargs="+", help="point numbers (default: three, see above)")
    args = p.parse_args(argv)
    try:
        return plot(args.series, args.out, args.season, args.points)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))


if __name__ == "__main__":
    main()
