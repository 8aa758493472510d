"""What Crocus hands TARTES (docs/labels.md, steps 0 and 1): the one definition of its light and
layer rules, in numpy only, so that the labeller (preprocessing/tartes_labels.py) and the emulator,
which must not load numba, apply the same.

Step 0, the light. Crocus calls TARTES only in daylight (`dark_rows`: elsewhere the albedo is 1 and
nothing is absorbed). A sun behind the slope makes all the light diffuse, and where the forcing has
no diffuse light Crocus splits the shortwave with Marie Dumont's diffuse fraction of the zenith
angle (`light_rules`). Step 1, the layers: ice takes fixed optical properties and an SSA above 100
is an anomaly replaced by 70 (`layer_rules`).
"""
from __future__ import annotations

import numpy as np

from utils.tartes_constants import (COS_ILLUM_MIN, DAYLIGHT_MIN, DUMONT_DIFFUSE, ICE_DENSITY, ICE_SOOT, ICE_SSA,
                                    SSA_ANOMALY, SSA_REPLACEMENT)


def layer_rules(ssa, density, soot, dust) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ssa, soot, dust) as Crocus gives them to TARTES (new arrays; NaN stays NaN): a layer of
    density >= 850 kg m-3 is ice, with SSA 0.05 m2 kg-1, soot 100e-9 and no dust (XSSA_ICE,
    XIMPUR_ICE); an SSA above 100 m2 kg-1 of any other layer becomes 70."""
    ice = np.asarray(density) >= ICE_DENSITY
    ssa = np.where(ice, ICE_SSA, np.where(np.asarray(ssa) > SSA_ANOMALY, SSA_REPLACEMENT, ssa))
    return ssa, np.where(ice, ICE_SOOT, soot), np.where(ice, 0.0, dust)


def dumont_diffuse_fraction(cos_zenith) -> np.ndarray:
    """Crocus's diffuse fraction of the shortwave where the forcing gives no diffuse light
    (SPECTRAL_REPARTITION, "parametrization Marie Dumont", fitted on flat ground):
    min(exp(-1.54991930344 c^3 + 3.73535795329 c^2 - 3.52421131883 c + 0.0299111951172), 1), c = cos_zenith."""
    c = np.asarray(cos_zenith, dtype=np.float64)
    c3, c2, c1, c0 = DUMONT_DIFFUSE
    return np.minimum(np.exp(c3 * c ** 3 + c2 * c ** 2 + c1 * c + c0), 1.0)


def light_rules(cos_illum, direct_sw, diffuse_sw, cos_zenith=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cos_illum, direct_sw, diffuse_sw) of the light TARTES sees, (N,) float64 (new arrays):

    - the sun behind the slope (cos_illum < 0.0017, COSILLUMMIN): all the shortwave is diffuse,
      and the (empty) direct beam comes in at cosine 0.0017;
    - no diffuse light in the forcing (diffuse_sw == 0 exactly, the sun not behind the slope) where
      cos_zenith is given (a number or an (N,) array; finite): diffuse_sw = f SW and
      direct_sw = SW - diffuse_sw, with f = dumont_diffuse_fraction(cos_zenith), SW = direct_sw +
      diffuse_sw. The rule is per row: SURFEX writes f into every point of its call, a defect not
      reproduced here. Where cos_zenith is None or NaN, a zero diffuse flux is taken as it is.
    """
    columns = (cos_illum, direct_sw, diffuse_sw, np.nan if cos_zenith is None else cos_zenith)
    cos_illum, direct, diffuse, cos_zenith = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in columns))
    sw = direct + diffuse
    behind = cos_illum < COS_ILLUM_MIN
    split = ~behind & (diffuse == 0) & np.isfinite(cos_zenith)
    split_diffuse = dumont_diffuse_fraction(np.where(split, cos_zenith, 1.0)) * sw
    return (np.where(behind, COS_ILLUM_MIN, cos_illum),
            np.where(behind, 0.0, np.where(split, sw - split_diffuse, direct)),
            np.where(behind, sw, np.where(split, split_diffuse, diffuse)))


def dark_rows(direct_sw, diffuse_sw, cos_zenith=None) -> np.ndarray:
    """(N,) bool: where Crocus does not call TARTES, SW = direct_sw + diffuse_sw <= 1e-8, or
    cos_zenith given (not None, not NaN) and <= 1e-8. A dark row with snow has albedo 1, absorbs
    nothing and sends nothing to the soil (docs/labels.md, "Dark rows")."""
    sw = np.asarray(direct_sw, dtype=np.float64) + np.asarray(diffuse_sw, dtype=np.float64)
    dark = sw <= DAYLIGHT_MIN
    if cos_zenith is not None:
        dark = dark | (np.asarray(cos_zenith, dtype=np.float64) <= DAYLIGHT_MIN)  # NaN: not given, not dark
    return dark


def crocus_inputs(layers: dict, scalars: dict) -> tuple[dict, dict]:
    """Steps 0 and 1 on the dictionaries of utils.profiles.validate_inputs (new dictionaries):
    `layer_rules` on the layers, `light_rules` on cos_illum, direct_sw and diffuse_sw (with the
    scalars' cos_zenith, NaN where not given); the other scalars are kept."""
    ssa, soot, dust = layer_rules(layers["ssa"], layers["density"], layers["soot"], layers["dust"])
    cos_illum, direct_sw, diffuse_sw = light_rules(scalars["cos_illum"], scalars["direct_sw"], scalars["diffuse_sw"],
                                                   scalars.get("cos_zenith"))
    return ({**layers, "ssa": ssa, "soot": soot, "dust": dust},
            {**scalars, "cos_illum": cos_illum, "direct_sw": direct_sw, "diffuse_sw": diffuse_sw})
