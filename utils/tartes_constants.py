"""TARTES as Crocus runs it: the constants of ../shared/reference/TARTES_LABELS.md and the per-band
optical constants taken from the `tartes` package itself.

Kept apart from the compiled solver (preprocessing/tartes_labels.py) so that the models' physics
features use the same constants without loading numba.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
from tartes.impurities import CaponiDust, SootChang90
from tartes.refractive_index import refice2008

_tartes_core = importlib.import_module("tartes.tartes")  # the module, shadowed by the function of that name

BANDS_FILE = Path(__file__).resolve().parents[1] / "data" / "crocus_t17_bands.csv"
SHAPE_PARAMETERIZATION = "linear"
G0 = 0.8961  # SURFEX XPSNOWG0
B0 = 1.225  # SURFEX XPSNOWB0
DIFFUSE_SZA_DEG = 53.0  # Crocus treats diffuse light as a direct beam at 53 degrees
DIFFUSE_COS = float(np.cos(np.deg2rad(DIFFUSE_SZA_DEG)))
F_DIR_BEYOND = 0.001000684  # fraction of direct radiation in 2520-4000 nm (XPCOEFNIR_DIR), absorbed in the top layer
F_DIF_BEYOND = 0.01216941  # the same for diffuse radiation (XPCOEFNIR_DIF)
SOIL_ALBEDO = 0.2
SOOT = SootChang90
DUST = CaponiDust("libya", "PM2_5")

# Crocus's layer rules (SNOWCRO_CALL_TARTES, modd_const_tartes.F90)
ICE_DENSITY = 850.0  # kg m-3: at or above, a layer is ice
ICE_SSA = 0.05  # m2 kg-1, XSSA_ICE
ICE_SOOT = 100e-9  # kg kg-1, XIMPUR_ICE (soot; dust 0)
SSA_ANOMALY = 100.0  # m2 kg-1: an SSA above it is replaced by SSA_REPLACEMENT
SSA_REPLACEMENT = 70.0
COS_ILLUM_MIN = 0.0017  # COSILLUMMIN: below it the sun is behind the slope, all light is diffuse
ICE_DENSITY_MAX = 917.0  # kg m-3: the density of pure ice, the densest a snow layer can be

# tartes stops where the cumulative optical depth ke * tau* exceeds this and puts an albedo-1
# bottom under a layer stretched to 30 / ke; each layer's tau* is capped at 200 / ke.
TAU_TRUNCATION = 30.0
TAU_LAYER_MAX = 200.0


def _band_constants() -> dict:
    table = np.loadtxt(BANDS_FILE, delimiter=",", skiprows=1)
    wavelength = table[:, 0] * 1e-9
    nr, ni = refice2008(wavelength)
    ginf, g00, B, W, y = _tartes_core.shape_parameter_variations(
        SHAPE_PARAMETERIZATION, nr, G0, _tartes_core.default_y0, _tartes_core.default_W0, B0)
    return {
        "wavelength": wavelength,
        "ratio_direct": table[:, 1],
        "ratio_diffuse": table[:, 2],
        # c = absorption / SSA in tartes: 24 pi ni / (917 lambda) / SSA
        "c_times_ssa": 24.0 * np.pi * ni / (917.0 * wavelength),
        "ginf": np.asarray(ginf, dtype=np.float64),
        "g00": np.asarray(g00, dtype=np.float64),
        "y": np.asarray(y, dtype=np.float64),
        "W": np.asarray(W, dtype=np.float64),
        "phi": 2.0 / 3 * np.asarray(B) / (1 - np.asarray(W)),
        "mae_soot": np.asarray(SOOT.MAE(wavelength), dtype=np.float64),
        "mae_dust": np.asarray(DUST.MAE(wavelength), dtype=np.float64),
    }


BANDS = _band_constants()
# What Crocus's albedo counts as absorbed beyond the bands: under purely direct light the albedo is
# 1 - DIRECT_ABSORBED_BASE + sum_b r_dir[b] a_dir[b] (TARTES_LABELS.md, step 3), likewise diffuse.
DIRECT_WEIGHT_SUM = BANDS["ratio_direct"].sum() + F_DIR_BEYOND
DIFFUSE_WEIGHT_SUM = BANDS["ratio_diffuse"].sum() + F_DIF_BEYOND
