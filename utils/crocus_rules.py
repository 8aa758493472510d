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

from utils.tartes_constants import (BANDS, CLEANUP_WAVELENGTH_MAX, COS_ILLUM_MIN, DAYLIGHT_MIN, DUMONT_DIFFUSE,
                                    ICE_DENSITY, ICE_SOOT, ICE_SSA, SSA_ANOMALY, SSA_REPLACEMENT)


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


# Per band where SURFEX's clean-up drops an excess rather than trimming it (up to 1300 nm; docs/labels.md,
# step 2, point 4), what a layer's single-scattering co-albedo is made of (tartes' linear shape
# parameterisation): the clean ice's half_coalbedo (1 - exp(-ice_exponent / ssa)), plus
# 2 / ssa (mae_soot soot + mae_dust dust). The Fortran module reads them from its weights file.
_DROPPING = BANDS["wavelength"] <= CLEANUP_WAVELENGTH_MAX * (1 + 1e-9)
CLEANUP_BANDS = {"half_coalbedo": 0.5 * (1 - BANDS["W"][_DROPPING]),
                 "ice_exponent": BANDS["c_times_ssa"][_DROPPING] * BANDS["phi"][_DROPPING],
                 "mae_soot": BANDS["mae_soot"][_DROPPING], "mae_dust": BANDS["mae_dust"][_DROPPING]}


def cleanup_bound() -> tuple[float, float, float]:
    """(soot_weight, dust_weight, threshold): a layer of the clean-up regime has soot soot_weight +
    dust dust_weight >= threshold ssa (ssa after the layer rules); a bound that clears most layers
    without the band by band test of `cleanup_rows`, a little loose for float32 rounding."""
    half_coalbedo, _, mae_soot, mae_dust = CLEANUP_BANDS.values()
    return 2.0 * mae_soot.max(), 2.0 * mae_dust.max(), (1.0 - half_coalbedo.max()) * (1 - 1e-5)


def cleanup_rows(ssa, density, soot, dust) -> np.ndarray:
    """(N,) bool: the profiles whose labels SURFEX's energy clean-up makes depend on the fluxes
    themselves (docs/labels.md, step 2, point 4), by a test that needs no radiative transfer: after
    the layer rules, a present layer whose single-scattering albedo is <= 0 in a band up to
    1300 nm. So much impurity per unit of snow surface (dust of a few 1e-3 kg kg-1 on coarse grains)
    lies beyond TARTES's mixing rule: its two-stream solution reflects a negative fraction, and the
    clean-up then drops whole bands of a layer's energy when their excess passes 0.01 W m-2, a step
    in the fluxes that no smooth model of the direct fraction can follow. Every profile whose
    labels change when the fluxes are scaled (by 1e-3 or 1e3, beyond 1e-8) is one of these
    (checked on every training and test set, tests/test_crocus_rules.py); the converse does not
    hold (a deep layer may get too little light to matter).

    Layer arrays (N, L), top layer first, NaN or 0 for absent layers (where ssa is not > 0)."""
    ssa, soot, dust = layer_rules(ssa, density, soot, dust)
    present = np.nan_to_num(np.asarray(ssa, dtype=np.float64)) > 0
    ssa = np.where(present, ssa, 1.0)
    soot, dust = np.where(present, soot, 0.0), np.where(present, dust, 0.0)
    # a bound first: the clean ice's co-albedo stays below its largest half co-albedo, each impurity's
    # below its largest mass absorption (at 300 nm); only the layers it does not clear are computed band by band
    half_coalbedo, ice_exponent, mae_soot, mae_dust = CLEANUP_BANDS.values()
    soot_weight, dust_weight, threshold = cleanup_bound()
    candidate = present & (soot_weight * soot + dust_weight * dust >= threshold * ssa)
    flagged = np.zeros(candidate.shape[0], dtype=bool)
    if candidate.any():
        rows = np.nonzero(candidate)[0]
        s, c, d = ssa[candidate][:, None], soot[candidate][:, None], dust[candidate][:, None]
        coalbedo = half_coalbedo * (1 - np.exp(-ice_exponent / s)) + 2.0 / s * (mae_soot * c + mae_dust * d)
        flagged[rows[(coalbedo >= 1.0).any(axis=1)]] = True
    return flagged
