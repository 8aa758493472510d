"""The one look of every figure (the command line the scripts share is plot/cli.py).

Colours are colour-blind safe: the Okabe-Ito palette for categories (TARTES target in blue, the
emulator in vermillion, errors in black) and viridis for continuous values. Every axis label
carries its unit; titles say what is shown and where. Figures are written as PNG, through
utils.files (whole or not at all): by the command lines under runs/graphs/<run>/<kind>/ (a folder per
run) unless --out says otherwise, by the plot functions called without `out` under graphs/<kind>/
(the committed figures).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from utils.files import written  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7"}
TARGET = OKABE_ITO["blue"]  # TARTES, the label
PREDICTION = OKABE_ITO["vermillion"]  # the emulator
ERROR = OKABE_ITO["black"]
TRAIN, VALIDATION = OKABE_ITO["orange"], OKABE_ITO["bluish_green"]
SOOT, DUST = OKABE_ITO["black"], OKABE_ITO["orange"]
WET, DRY = OKABE_ITO["sky_blue"], OKABE_ITO["orange"]
CONTINUOUS = "viridis"
GRAPHS = REPO / "graphs"  # the figures committed with the shipped model
RUN_GRAPHS = REPO / "runs" / "graphs"  # the command lines write under <run>/ there by default (runs/ is not tracked)
DPI = 150  # of the PNG files (the tests lower it: rendering is most of a script's time)

# Axis labels with units, by column name of the evaluation set (plot/evaluation.py).
LABELS = {
    "albedo": "broadband albedo (-)",
    "albedo_target": "TARTES albedo (target, -)",
    "albedo_prediction": "emulator albedo (prediction, -)",
    "albedo_error": "albedo error: prediction - target (-)",
    "top_target": "TARTES: absorbed in the top layer (target, fraction of SW, -)",
    "top_prediction": "emulator: absorbed in the top layer (prediction, fraction of SW, -)",
    "top_error": "top-layer absorbed fraction error: prediction - target (-)",
    "soil_target": "TARTES: absorbed by the soil (target, fraction of SW, -)",
    "soil_prediction": "emulator: absorbed by the soil (prediction, fraction of SW, -)",
    "soil_error": "soil fraction error: prediction - target (-)",
    "profile_error": "profile error: sum over layers and soil of |absorbed error| (-)",
    "top_error_w_m2": "top-layer absorbed energy error (W m⁻²)",
    "pack_error_w_m2": "pack absorbed energy error (W m⁻²)",
    "absorbed": "absorbed fraction of the incident shortwave (-)",
    "absorbed_w_m2": "absorbed energy (W m⁻²)",
    "depth": "depth below the snow surface (m)",
    "surface_ssa": "surface SSA (m² kg⁻¹)",
    "surface_density": "surface density (kg m⁻³)",
    "surface_soot": "surface black carbon (kg kg⁻¹)",
    "surface_dust": "surface dust (kg kg⁻¹)",
    "snow_depth": "snow depth (m)",
    "n_layers": "number of snow layers (-)",
    "cos_illum": "cos(illumination angle) on the slope (-)",
    "cos_zenith": "cos(solar zenith angle) (-)",
    "soil_albedo": "soil albedo (-)",
    "direct_sw": "direct shortwave (W m⁻²)",
    "diffuse_sw": "diffuse shortwave (W m⁻²)",
    "shortwave": "incident shortwave, direct + diffuse (W m⁻²)",
    "direct_fraction": "direct fraction of shortwave (-)",
    "dz": "layer thickness (m)",
    "ssa": "layer SSA (m² kg⁻¹)",
    "density": "layer density (kg m⁻³)",
    "soot": "layer black carbon (kg kg⁻¹)",
    "dust": "layer dust (kg kg⁻¹)",
}
# The quantities of the evaluation set with <name>_target, <name>_prediction and <name>_error
# columns, in words.
QUANTITIES = {"albedo": "albedo", "top": "absorbed fraction of the top layer", "soil": "soil fraction"}
# Quantities spanning orders of magnitude (impurities with exact zeros): log axes, zeros shown at a floor.
LOG_FLOORS = {"surface_soot": 1e-12, "surface_dust": 1e-10, "soot": 1e-12, "dust": 1e-10}


def use() -> None:
    """The shared matplotlib settings."""
    plt.rcParams.update({
        "figure.dpi": 110,
        "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
        "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 13,
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "axes.prop_cycle": matplotlib.cycler(color=list(OKABE_ITO.values())[1:] + ["#000000"]),
        "image.cmap": CONTINUOUS, "legend.frameon": False,
    })


def folder(out: str | Path | None, kind: str) -> Path:
    """Where a script writes: `out`, or graphs/<kind>/ by default."""
    return Path(out) if out else GRAPHS / kind


def save(figure, path: str | Path) -> Path:
    """Write the figure as PNG (temporary name, then renamed) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with written(path) as tmp:
            figure.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    print(f"wrote {path}")
    return path


@lru_cache(maxsize=None)
def massif_name(number: int) -> str:
    """The massif's name in snowtools' metadata, or its number."""
    try:
        from snowtools.utils.infomassifs import infomassifs
        return f"{infomassifs().getMassifName(int(number))} ({int(number)})"
    except Exception:  # unknown number, or metadata unavailable: the number still says where
        return f"massif {int(number)}"


def point_label(row) -> str:
    """Where a point is: massif, altitude, slope and aspect (a row of the evaluation set)."""
    orientation = "flat" if row["aspect"] < 0 or row["slope"] == 0 else f"slope {row['slope']:g}°, aspect {row['aspect']:g}°"
    return f"{massif_name(row['massif'])}, {row['ZS']:g} m, {orientation}"


def season_label(season: str) -> str:
    """'2013080106_2014080106' -> '2013-2014'; a window within a season -> '2013-10-01 to 2014-02-28'."""
    bounds = season_bounds(season)
    if bounds is None:
        return str(season)
    begin, end = bounds
    if (begin.month, begin.day, end.month, end.day, end.year - begin.year) == (8, 1, 8, 1, 1):
        return f"{begin.year}-{end.year}"
    return f"{begin:%Y-%m-%d} to {end:%Y-%m-%d}"


def season_bounds(season: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """'2013080106_2014080106' -> its first and last times (UTC), or None for another kind of name."""
    try:
        begin, end = (pd.to_datetime(part, format="%Y%m%d%H", utc=True) for part in str(season).split("_"))
    except ValueError:
        return None
    return begin, end


def season_axis(ax, season: str | None = None) -> None:
    """A date x axis (UTC) of concise labels, spanning the whole `season` when one is given."""
    import matplotlib.dates as mdates

    ax.set_xlabel("date (UTC)")
    bounds = season_bounds(season) if season is not None else None
    if bounds:
        ax.set_xlim(*bounds)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=14)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# Log axes spanning less than a few decades read better as 0.03 than 3 x 10^-2, with the minor
# ticks at 2 and 5 labelled too (matplotlib labels all of them, and they collide).
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
MINOR = FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else "")


def format_log(axis, low: float, high: float) -> None:
    """Labels of a logarithmic axis (or colour bar axis) from low to high that do not collide."""
    if np.log10(high / low) < 2.5:
        axis.set_major_formatter(PLAIN)
        axis.set_minor_formatter(MINOR)
    else:
        axis.set_minor_formatter(NullFormatter())


def log_axis(ax, which: str = "x") -> None:
    """Make the x or y axis logarithmic, labels not colliding; call once the limits are set."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    format_log(ax.xaxis if which == "x" else ax.yaxis, *(ax.get_xlim() if which == "x" else ax.get_ylim()))


def log_values(values, name: str) -> np.ndarray:
    """Values of a heavy-tailed quantity for a log axis: zeros (and below) at its floor."""
    return np.maximum(np.asarray(values, dtype=np.float64), LOG_FLOORS[name])
