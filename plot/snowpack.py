"""One snowpack from the run's raw Crocus PRO file, drawn as its stack of layers coloured by SSA,
beside its density and impurity profiles, with the albedo TARTES and the emulator give it.

    python -m plot.snowpack [--run RUN] [--out runs/graphs/<run>/snowpack/] [--point P] [--time "2014-03-15 12:00"]
                            [--split test]

Without --time: at noon (the highest sun) of the day of deepest snow among the point's samples of
the split; without --point: the point of median number of samples (as in plot.season).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from plot import cli, style
from plot.deposition import IMPURITIES, read
from plot.evaluation import evaluation_set, resolve, season_files, select, selection_label, utc
from plot.season import noon, one_point
from preprocessing.crocus_files import POINT, PRO_LAYERS, TIME

KIND = "snowpack"


def read_profile(pro_file: Path, point: int, time: pd.Timestamp) -> pd.DataFrame:
    """The layers (top first) of `point` at `time` (UTC) in a PRO file: dz, ssa, density, soot, dust."""
    with xr.open_dataset(pro_file) as pro:
        times = pd.DatetimeIndex(pro[TIME].values).tz_localize("UTC")
        if time not in times:
            raise ValueError(f"{pro_file}: no time {time} (the file runs from {times[0]} to {times[-1]})")
        if not 0 <= point < pro.sizes[POINT]:
            raise ValueError(f"{pro_file}: no point {point} (0..{pro.sizes[POINT] - 1})")
        t = int(times.get_loc(time))
        names = {field: next((n for n in candidates if n in pro), candidates[0]) for field, candidates in PRO_LAYERS.items()}
        layers = pd.DataFrame({field: read(pro, pro_file, name, slice(t, t + 1), [point])[0, :, 0]
                               for field, name in names.items()})
    present = layers["dz"].fillna(0) > 0
    if not present.any():
        raise ValueError(f"{pro_file}: no snow at point {point} at {time}")
    return layers[present].reset_index(drop=True)


def choose(run, split: str, region, point, time, device) -> tuple[pd.Series, pd.Timestamp, pd.Series | None]:
    """The evaluation sample to draw (for its point and season), the time, and the sample at that
    time if there is one."""
    samples = one_point(select(evaluation_set(run, split, device=device), region=region, point=point),
                        selection_label({"region": region, "point": point} if point is not None else {}))
    if time is None:
        daily = noon(samples).dropna(subset=["time"])
        chosen = daily.loc[daily["snow_depth"].idxmax()]
        return chosen, chosen["time"], chosen
    time = utc(time)
    at = samples[samples["time"] == time]
    # Any time of the season may be drawn, night included; the sample gives the albedos when it exists.
    season = samples.iloc[(samples["time"] - time).abs().argmin()]
    return season, time, at.iloc[0] if len(at) else None


def plot(run=None, out: str | Path | None = None, point: int | None = None, time=None, split: str = "test",
         device=None, region: str | None = None) -> Path:
    style.use()
    run = resolve(run)
    where, time, sample = choose(run, split, region, point, time, device)
    pro_file, _ = season_files(run, where["region"], where["season"])
    layers = read_profile(pro_file, int(where["point"]), time)
    top = np.cumsum(layers["dz"][::-1].to_numpy())[::-1]  # height of each layer's top above the ground
    edges = np.concatenate([[0.0], top[::-1]])  # layer boundaries from the ground up

    figure, (stack, density, impurities) = plt.subplots(1, 3, figsize=(12, 6.5), sharey=True, constrained_layout=True,
                                                        gridspec_kw={"width_ratios": (1.1, 1, 1.2)})
    norm = Normalize(np.floor(layers["ssa"].min()), np.ceil(layers["ssa"].max()))
    colours = plt.get_cmap(style.CONTINUOUS)(norm(layers["ssa"].to_numpy()))
    for height, dz, colour in zip(top, layers["dz"], colours):
        stack.add_patch(Rectangle((0, height - dz), 1, dz, facecolor=colour, edgecolor="white", lw=0.4))
    stack.set_xlim(0, 1)
    stack.set_ylim(0, top[0] * 1.02)
    stack.set_xticks([])
    stack.grid(False)
    stack.set_ylabel("height above the ground (m)")
    stack.set_title(f"{len(layers)} layers, coloured by SSA")
    bar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=style.CONTINUOUS), ax=stack, location="bottom",
                          aspect=15)
    bar.set_label(style.LABELS["ssa"])

    bottom_up = layers[::-1]
    density.stairs(bottom_up["density"].to_numpy(), edges, orientation="horizontal", color=style.OKABE_ITO["blue"], lw=1.8,
                   baseline=None)
    density.set_xlabel(style.LABELS["density"])
    density.set_title("density")
    for name, colour in zip(IMPURITIES, (style.SOOT, style.DUST)):
        column = "soot" if name == "black carbon" else "dust"
        values = style.log_values(bottom_up[column].fillna(0).to_numpy(), column)
        impurities.stairs(values, edges, orientation="horizontal", color=colour, lw=1.8, baseline=None,
                          label=f"{name} (SNOWIMP{IMPURITIES[name]})")
    style.log_axis(impurities, "x")
    impurities.set_xlabel("impurity mass ratio (kg kg⁻¹; 0 drawn at 10⁻¹²)")
    impurities.set_title("impurities")
    impurities.legend(loc="best", fontsize=9)

    albedo = ("" if sample is None else
              f"\nalbedo: TARTES {sample['albedo_target']:.3f}, emulator {sample['albedo_prediction']:.3f} "
              f"(cos_illum {sample['cos_illum']:.2f}, direct fraction {sample['direct_fraction']:.2f})")
    figure.suptitle(f"Snowpack at point {int(where['point'])}: {style.point_label(where)}, {time:%Y-%m-%d %H:%M} UTC, "
                    f"snow depth {top[0]:.2f} m{albedo}\n{run.name}")
    name = f"{KIND}_point{int(where['point'])}_{time:%Y%m%d%H}.png"
    return style.save(figure, style.folder(out, KIND) / name)


def main(argv=None) -> Path:
    p = cli.parser(__doc__, KIND)
    cli.add_sample(p, "UTC time of a PRO time stamp, e.g. '2014-03-15 12:00'")
    args = p.parse_args(argv)
    return plot(args.run, args.out, args.point, args.time, args.split, args.device, args.region)


if __name__ == "__main__":
    main()
