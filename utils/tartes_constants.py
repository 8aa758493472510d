"""TARTES as Crocus runs it: the constants of docs/labels.md (SURFEX's `modd_const_tartes.F90`) and
the per-band optical constants taken from the `tartes` package itself.

Kept apart from the compiled solver (preprocessing/tartes_labels.py) so that the models' physics
features and Crocus's rules (utils/crocus_rules.py) use the same constants without loading numba.
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


class CrocusSoot(SootChang90):
    """The soot of Chang and Charalampopoulos (1990) at the density SURFEX gives it,
    XSNOWIMP_DENSITY(1) = 1270 kg m-3 (after Flanner et al. 2012), instead of tartes' 2050: per unit
    mass Crocus's soot absorbs 2050/1270 = 1.61 times more (docs/labels.md, step 2)."""

    density = 1270.0


SOOT = CrocusSoot
DUST = CaponiDust("libya", "PM2_5")  # its MAE table needs no density (SURFEX's XSNOWIMP_DENSITY(2) is 2600)

# Crocus's layer rules (SNOWCRO_CALL_TARTES, modd_const_tartes.F90)
ICE_DENSITY = 850.0  # kg m-3: at or above, a layer is ice
ICE_SSA = 0.05  # m2 kg-1, XSSA_ICE
ICE_SOOT = 100e-9  # kg kg-1, XIMPUR_ICE (soot; dust 0)
SSA_ANOMALY = 100.0  # m2 kg-1: an SSA above it is replaced by SSA_REPLACEMENT
SSA_REPLACEMENT = 70.0
COS_ILLUM_MIN = 0.0017  # COSILLUMMIN: below it the sun is behind the slope, all light is diffuse
DAYLIGHT_MIN = 1e-8  # Crocus calls TARTES only where cos_zenith and direct_sw + diffuse_sw exceed it
# Marie Dumont's diffuse fraction exp(c3 x^3 + c2 x^2 + c1 x + c0) of x = cos_zenith (SPECTRAL_REPARTITION)
DUMONT_DIFFUSE = (-1.54991930344, 3.73535795329, -3.52421131883, 0.0299111951172)
ICE_DENSITY_MAX = 917.0  # kg m-3: the density of pure ice, the densest a snow layer can be

# SURFEX's truncation (ESTIMATE_EFFECTIVE_LAYER_NUMBER): in each band, the layer where the cumulative
# ke * tau* exceeds this is dropped with all below it, and the kept ones lie on an albedo-1 floor.
TAU_TRUNCATION = 30.0
# SURFEX's energy clean-up (SNOWCRO_CALL_TARTES), per band in W m-2: a layer energy in (-0.1, 0) is
# zeroed; an excess over the band's incident flux by more than 0.01, in bands up to 1300 nm, is
# dropped rather than trimmed.
CLEANUP_NEGATIVE = 0.1  # W m-2
CLEANUP_EXCESS = 0.01  # W m-2
CLEANUP_WAVELENGTH_MAX = 1300e-9  # m


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
