"""What Crocus takes from TARTES (../shared/reference/TARTES_LABELS.md), for many profiles at once:
the broadband albedo, the fraction of the incident shortwave absorbed in each layer, and the
fraction that reaches the soil.

`energy_budget` and `broadband_albedo` solve the same two-stream equations as the `tartes` package
(v2.0.3, delta-Eddington, `shape_parameterization='linear'`, Warren and Brandt 2008 ice, soot of
Chang 1990 and Libyan PM2.5 dust of Caponi et al. 2017) in a compiled kernel, parallel over
profiles, after Crocus's layer rules (`crocus_inputs`). `reference_energy_budget` calls the
`tartes` package profile by profile: the yardstick.
"""
from __future__ import annotations

import numba
import numpy as np
import tartes

from utils.profiles import EnergyBudget, validate_inputs
from utils.schema import LAYER_VARIABLES
from utils.tartes_constants import (B0, BANDS, COS_ILLUM_MIN, DIFFUSE_COS, DIFFUSE_SZA_DEG, DIFFUSE_WEIGHT_SUM,
                                    DIRECT_WEIGHT_SUM, DUST, F_DIF_BEYOND, F_DIR_BEYOND, G0, ICE_DENSITY, ICE_SOOT,
                                    ICE_SSA, SHAPE_PARAMETERIZATION, SOIL_ALBEDO, SOOT, SSA_ANOMALY, SSA_REPLACEMENT,
                                    TAU_LAYER_MAX, TAU_TRUNCATION)

CHUNK_PROFILES = 65536  # rows validated and solved per call: bounds memory whatever N


def crocus_inputs(layers: dict, scalars: dict) -> tuple[dict, dict]:
    """Step 1 of TARTES_LABELS.md, what Crocus hands TARTES (new arrays; validated inputs, NaN for
    absent layers): ice layers (density >= 850) get SSA 0.05, soot 100e-9 and no dust; an SSA
    above 100 becomes 70; a sun behind the slope (cos_illum < 0.0017) makes all the light diffuse,
    and the direct beam's cosine is then that of the diffuse light (it carries no flux)."""
    ice = layers["density"] >= ICE_DENSITY
    ssa = np.where(layers["ssa"] > SSA_ANOMALY, SSA_REPLACEMENT, layers["ssa"])
    layers = {**layers, "ssa": np.where(ice, ICE_SSA, ssa), "soot": np.where(ice, ICE_SOOT, layers["soot"]),
              "dust": np.where(ice, 0.0, layers["dust"])}
    behind = scalars["cos_illum"] < COS_ILLUM_MIN
    scalars = {"cos_illum": np.where(behind, DIFFUSE_COS, scalars["cos_illum"]),
               "direct_sw": np.where(behind, 0.0, scalars["direct_sw"]),
               "diffuse_sw": np.where(behind, scalars["direct_sw"] + scalars["diffuse_sw"], scalars["diffuse_sw"])}
    return layers, scalars


# --- The compiled two-stream solver ----------------------------------------------------------------
#
# tartes solves, per band, a tridiagonal system for the two-stream coefficients of every layer.
# The same equations are solved here layer by layer (invariant imbedding). Going up from the
# bottom, the upward diffuse flux at the top of each layer is an affine function of the downward
# diffuse flux and of the direct beam there,
#     up = R * down + S * beam,
# with R, S carried upward through each layer in closed form. In layer k (infinite-medium albedo r,
# f = exp(-ke dtau*), direct-beam transmission T = exp(-dtau*/mu), particular solution Gp, Gm per
# unit beam at the layer's top), with a = (R - r) / (1/r - R) and b = (R Gm + S - Gp) / (1/r - R)
# from the layer below:
#     R' = (r + f^2 a / r) / (1 + f^2 a),   S' = T f b / r + Gp - R' (T f b + Gm).
# At the surface no diffuse light comes down and the beam is 1, so the albedo is S' of the top
# layer. Going back down, the downward diffuse flux at the bottom of layer k follows from the one
# at its top, D, and the beam there, B:
#     A = (D - B (Gm + T f b)) / (1 + f^2 a),   D' = A f (1 + a) + B T (b + Gm),   B' = B T
# and the layer absorbs the net flux (D + B - up) at its top minus that at its bottom; the soil
# absorbs the net flux at the bottom of the pack. The sums telescope: albedo + absorbed + soil = 1
# to rounding. Every quotient has a positive denominator (r < 1, R <= 1, a > -1): no pivoting.
# Same truncation as tartes' albedo (what lies below an optical depth of 30 gets e^-30 of the light).


# Reassociation, contraction into fused multiply-adds and reciprocals change results by ~1e-16.
FASTMATH = {"contract", "arcp", "reassoc", "nsz"}


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _band_optics(b, n, layer_terms, c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust, infalb, ke, ssalb_star,
                 g_star, gamma1, gamma2, dtau, f):
    """Optical properties of band b from the surface down to where tartes truncates
    (tartes.single_scattering_optical_parameters and the delta-Eddington functions). Returns the
    number of layers kept and whether the pack was truncated there: under it lies the soil or,
    where tartes truncates, an albedo-1 floor under a layer whose diffuse transmission is that of
    30 / ke optical depth (the beam keeps the true depth)."""
    tau_ke = 0.0
    for k in range(n):
        c = c_times_ssa[b] * layer_terms[0, k]
        g = ginf[b] - (ginf[b] - g00[b]) * np.exp(-y[b] * c)
        # impurities with zero content add exactly 0, as tartes' skipping them does
        cossalb = (0.5 * (1 - W[b]) * (1 - np.exp(-c * phi[b])) + mae_soot[b] * layer_terms[1, k]
                   + mae_dust[b] * layer_terms[2, k])
        ssalb = 1.0 - cossalb
        g_squared = g * g
        ss = ssalb * (1 - g_squared) / (1 - g_squared * ssalb)
        gs = g / (1 + g)
        g1 = 0.25 * (7 - ss * (4 + 3 * gs))
        g2 = max(-0.25 * (1 - ss * (4 - 3 * gs)), 0.0001)
        kek = np.sqrt(g1 * g1 - g2 * g2)
        ssalb_star[k] = ss
        g_star[k] = gs
        gamma1[k] = g1
        gamma2[k] = g2
        ke[k] = kek
        infalb[k] = g2 / (g1 + kek)
        d = min(layer_terms[3, k] * (1 - ssalb * g_squared), TAU_LAYER_MAX / kek)
        dtau[k] = d
        f[k] = np.exp(-kek * d)
        tau_ke += kek * d
        if tau_ke > TAU_TRUNCATION and k + 1 < n:
            f[k] = np.exp(-TAU_TRUNCATION)
            return k + 1, True
    return n, False


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _beam_up(u, inverse_u, r, f, ke, ssalb_star, g_star, gamma1, gamma2, dtau, R, R_top, S, inverse):
    """A beam of cosine u through a layer (tartes.Gp_Gm_vectors_delta_eddington carried through
    it): S at its top from S below it, the beam's transmission T, and the terms Gm + T f b and
    T (b + Gm) of the downward pass."""
    g3 = 0.25 * (2 - 3 * g_star * u)
    g4 = 0.25 * (2 + 3 * g_star * u)
    G = u * ssalb_star / (ke * ke * u * u - 1)
    gp = G * ((gamma1 - inverse_u) * g3 + gamma2 * g4)
    gm = G * ((gamma1 + inverse_u) * g4 + gamma2 * g3)
    T = np.exp(-dtau * inverse_u)
    b = (R * gm + S - gp) * inverse
    Tfb = T * f * b
    return Tfb / r + gp - R_top * (Tfb + gm), T, gm + Tfb, T * (b + gm)


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _layer_terms(n, dz, ssa, density, soot, dust, layer_terms):
    """Band-independent layer quantities: 1/SSA, impurity co-albedo per unit MAE, extinction * dz."""
    for k in range(n):
        inverse_ssa = 1.0 / ssa[k]
        layer_terms[0, k] = inverse_ssa
        layer_terms[1, k] = 2.0 * inverse_ssa * soot[k]
        layer_terms[2, k] = 2.0 * inverse_ssa * dust[k]
        layer_terms[3, k] = density[k] * ssa[k] / 2 * dz[k]


@numba.njit(cache=True, fastmath=FASTMATH)
def _profile_albedo(n, dz, ssa, density, soot, dust, mu_direct, mu_diffuse, soil_albedo, c_times_ssa, ginf, g00,
                    y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke, ssalb_star, g_star,
                    gamma1, gamma2, dtau, f, layer_terms):
    """Band-weighted sums of the direct (at mu_direct) and diffuse (at mu_diffuse) spectral albedos."""
    _layer_terms(n, dz, ssa, density, soot, dust, layer_terms)
    inverse_mu_direct = 1.0 / mu_direct
    inverse_mu_diffuse = 1.0 / mu_diffuse
    sum_direct = 0.0
    sum_diffuse = 0.0
    for b in range(c_times_ssa.shape[0]):
        n_eff, truncated = _band_optics(b, n, layer_terms, c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust,
                                        infalb, ke, ssalb_star, g_star, gamma1, gamma2, dtau, f)
        R = 1.0 if truncated else soil_albedo
        S_direct = R
        S_diffuse = R
        for k in range(n_eff - 1, -1, -1):  # up through the layers, both illuminations at once
            r = infalb[k]
            fk = f[k]
            inverse = 1.0 / (1.0 / r - R)
            ff_a = fk * fk * (R - r) * inverse
            R_top = (r + ff_a / r) / (1 + ff_a)
            S_direct = _beam_up(mu_direct, inverse_mu_direct, r, fk, ke[k], ssalb_star[k], g_star[k], gamma1[k],
                                gamma2[k], dtau[k], R, R_top, S_direct, inverse)[0]
            S_diffuse = _beam_up(mu_diffuse, inverse_mu_diffuse, r, fk, ke[k], ssalb_star[k], g_star[k],
                                 gamma1[k], gamma2[k], dtau[k], R, R_top, S_diffuse, inverse)[0]
            R = R_top
        sum_direct += ratio_direct[b] * S_direct
        sum_diffuse += ratio_diffuse[b] * S_diffuse
    return sum_direct, sum_diffuse


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _beam_down(n_eff, inverse_denominator, down_gain, T, beam_source, beam_down, R_int, S_int, ratio, absorbed):
    """Adds ratio * the fraction of a unit beam absorbed in each of the n_eff layers to absorbed;
    returns ratio * the net flux under the last one. Per layer, with the terms of _beam_up:
    A = (D - B (Gm + T f b)) / (1 + f^2 a), D' = A f (1 + a) + B T (b + Gm)."""
    down = 0.0
    beam = 1.0
    net_top = 1.0 - S_int[0]
    for k in range(n_eff):
        down = (down - beam * beam_source[k]) * inverse_denominator[k] * down_gain[k] + beam * beam_down[k]
        beam = beam * T[k]
        net_bottom = down + beam - (R_int[k + 1] * down + S_int[k + 1] * beam)
        absorbed[k] += ratio * (net_top - net_bottom)
        net_top = net_bottom
    return ratio * net_top


@numba.njit(cache=True, fastmath=FASTMATH)
def _profile_budget(n, dz, ssa, density, soot, dust, mu_direct, mu_diffuse, soil_albedo, c_times_ssa, ginf, g00,
                    y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke, ssalb_star, g_star,
                    gamma1, gamma2, dtau, f, layer_terms, inverse_denominator, down_gain, T, beam_source, beam_down,
                    R_int, S_int, absorbed_direct, absorbed_diffuse):
    """Band-weighted fractions of a unit direct beam (at mu_direct) and of unit diffuse light (a
    beam at mu_diffuse) absorbed in each layer (added to absorbed_direct, absorbed_diffuse) and by
    the soil (returned)."""
    _layer_terms(n, dz, ssa, density, soot, dust, layer_terms)
    mus = (mu_direct, mu_diffuse)
    inverse_mus = (1.0 / mu_direct, 1.0 / mu_diffuse)
    soil_direct = 0.0
    soil_diffuse = 0.0
    for k in range(n):
        absorbed_direct[k] = 0.0
        absorbed_diffuse[k] = 0.0
    for b in range(c_times_ssa.shape[0]):
        n_eff, truncated = _band_optics(b, n, layer_terms, c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust,
                                        infalb, ke, ssalb_star, g_star, gamma1, gamma2, dtau, f)
        R = 1.0 if truncated else soil_albedo
        R_int[n_eff] = R
        S_int[0, n_eff] = R
        S_int[1, n_eff] = R
        for k in range(n_eff - 1, -1, -1):  # up: R, S at each interface, the terms of the way down
            r = infalb[k]
            fk = f[k]
            inverse = 1.0 / (1.0 / r - R)
            a = (R - r) * inverse
            inverse_denominator[k] = 1.0 / (1 + fk * fk * a)
            down_gain[k] = fk * (1 + a)
            R = (r + fk * fk * a / r) * inverse_denominator[k]
            for i in range(2):
                S_int[i, k], T[i, k], beam_source[i, k], beam_down[i, k] = _beam_up(
                    mus[i], inverse_mus[i], r, fk, ke[k], ssalb_star[k], g_star[k], gamma1[k], gamma2[k], dtau[k],
                    R_int[k + 1], R, S_int[i, k + 1], inverse)
            R_int[k] = R
        under_direct = _beam_down(n_eff, inverse_denominator, down_gain, T[0], beam_source[0], beam_down[0], R_int,
                                  S_int[0], ratio_direct[b], absorbed_direct)
        under_diffuse = _beam_down(n_eff, inverse_denominator, down_gain, T[1], beam_source[1], beam_down[1], R_int,
                                   S_int[1], ratio_diffuse[b], absorbed_diffuse)
        if not truncated:  # under a truncated pack lies the albedo-1 floor: nothing reaches the soil
            soil_direct += under_direct
            soil_diffuse += under_diffuse
    return soil_direct, soil_diffuse


@numba.njit(cache=True, inline="always")
def _optics_scratch(n_max):
    """Per-profile work arrays of _band_optics: small, private to the thread running the profile."""
    work = np.empty((8, n_max))
    return work[0], work[1], work[2], work[3], work[4], work[5], work[6], work[7], np.empty((4, n_max))


@numba.njit(parallel=True, cache=True)
def _albedo_kernel(dz, ssa, density, soot, dust, n_layers, cos_illum, direct_fraction, soil_albedo, c_times_ssa,
                   ginf, g00, y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, diffuse_mu, albedo):
    n_max = dz.shape[1]
    for p in numba.prange(dz.shape[0]):
        infalb, ke, ssalb_star, g_star, gamma1, gamma2, dtau, f, layer_terms = _optics_scratch(n_max)
        direct, diffuse = _profile_albedo(
            n_layers[p], dz[p], ssa[p], density[p], soot[p], dust[p], cos_illum[p], diffuse_mu, soil_albedo,
            c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke,
            ssalb_star, g_star, gamma1, gamma2, dtau, f, layer_terms)
        # Crocus's albedo: what the bands reflect, the light beyond 2500 nm counted as absorbed
        x = direct_fraction[p]
        albedo[p] = x * (1 - DIRECT_WEIGHT_SUM + direct) + (1 - x) * (1 - DIFFUSE_WEIGHT_SUM + diffuse)


@numba.njit(parallel=True, cache=True)
def _budget_kernel(dz, ssa, density, soot, dust, n_layers, cos_illum, direct_fraction, soil_albedo, c_times_ssa,
                   ginf, g00, y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, diffuse_mu, albedo,
                   absorbed, soil):
    n_max = dz.shape[1]
    for p in numba.prange(dz.shape[0]):
        infalb, ke, ssalb_star, g_star, gamma1, gamma2, dtau, f, layer_terms = _optics_scratch(n_max)
        inverse_denominator = np.empty(n_max)
        down_gain = np.empty(n_max)
        T = np.empty((2, n_max))
        beam_source = np.empty((2, n_max))
        beam_down = np.empty((2, n_max))
        R_int = np.empty(n_max + 1)
        S_int = np.empty((2, n_max + 1))
        absorbed_direct = np.empty(n_max)
        absorbed_diffuse = np.empty(n_max)
        n = n_layers[p]
        soil_direct, soil_diffuse = _profile_budget(
            n, dz[p], ssa[p], density[p], soot[p], dust[p], cos_illum[p], diffuse_mu, soil_albedo, c_times_ssa,
            ginf, g00, y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke, ssalb_star, g_star,
            gamma1, gamma2, dtau, f, layer_terms, inverse_denominator, down_gain, T, beam_source, beam_down, R_int,
            S_int, absorbed_direct, absorbed_diffuse)
        # Step 3 of TARTES_LABELS.md: flux-weighted, the light beyond 2500 nm in the top layer
        x = direct_fraction[p]
        absorbed_direct[0] += F_DIR_BEYOND
        absorbed_diffuse[0] += F_DIF_BEYOND
        total = 0.0
        for k in range(n):
            absorbed[p, k] = x * absorbed_direct[k] + (1 - x) * absorbed_diffuse[k]
            total += absorbed[p, k]
        for k in range(n, n_max):
            absorbed[p, k] = np.nan
        soil[p] = x * soil_direct + (1 - x) * soil_diffuse
        albedo[p] = 1.0 - total - soil[p]


def _check_soil_albedo(soil_albedo):
    if not 0 <= soil_albedo <= 1:
        raise ValueError(f"soil_albedo: {soil_albedo} is outside [0, 1]")


def _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw):
    """(rows, layers, scalars, n_layers) of CHUNK_PROFILES rows at a time, validated, after
    Crocus's rules; layers and scalars contiguous, as the kernels take them."""
    fields = [np.asarray(a) for a in (dz, ssa, density, soot, dust)]
    for name, a in zip(LAYER_VARIABLES, fields):
        if a.ndim != 2:
            raise ValueError(f"{name}: expected an (N, L) array, got shape {a.shape}")
    scalars = [np.atleast_1d(a) for a in (cos_illum, direct_sw, diffuse_sw)]
    n = len(scalars[0])
    for start in range(0, max(n, 1), CHUNK_PROFILES):
        rows = slice(start, start + CHUNK_PROFILES)
        layers, chunk_scalars, n_layers, _ = validate_inputs(*(a[rows] for a in fields), *(a[rows] for a in scalars),
                                                          first_row=start)
        layers, chunk_scalars = crocus_inputs(layers, chunk_scalars)
        yield (rows, [np.ascontiguousarray(layers[name]) for name in LAYER_VARIABLES],
               {k: np.ascontiguousarray(v) for k, v in chunk_scalars.items()}, n_layers.astype(np.int64))


def _band_arguments(soil_albedo):
    return (float(soil_albedo), BANDS["c_times_ssa"], BANDS["ginf"], BANDS["g00"], BANDS["y"], BANDS["W"],
            BANDS["phi"], BANDS["mae_soot"], BANDS["mae_dust"], BANDS["ratio_direct"], BANDS["ratio_diffuse"],
            DIFFUSE_COS)


def _direct_fraction(scalars):
    return scalars["direct_sw"] / (scalars["direct_sw"] + scalars["diffuse_sw"])


def energy_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw,
                  soil_albedo=SOIL_ALBEDO) -> EnergyBudget:
    """The TARTES energy budget of N snow profiles as Crocus computes it (TARTES_LABELS.md), float64.

    dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust (kg kg-1): (N, L) arrays, L <= 50, top
    layer first, NaN for absent layers; cos_illum (-, the cosine of the angle between the sun and
    the normal to the surface), direct_sw and diffuse_sw (W m-2): (N,). Works through
    CHUNK_PROFILES rows at a time, parallel over profiles on the threads numba may use
    (NUMBA_NUM_THREADS, all cores by default).
    """
    _check_soil_albedo(soil_albedo)
    n, width = len(np.atleast_1d(cos_illum)), np.shape(dz)[-1]
    budget = EnergyBudget(np.empty(n), np.empty((n, width)), np.empty(n))
    for rows, layers, scalars, n_layers in _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw):
        albedo, absorbed, soil = budget.albedo[rows], budget.absorbed[rows], budget.soil[rows]
        _budget_kernel(*layers, n_layers, scalars["cos_illum"], _direct_fraction(scalars),
                       *_band_arguments(soil_albedo), albedo, absorbed, soil)
    return budget


def broadband_albedo(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw,
                     soil_albedo=SOIL_ALBEDO) -> np.ndarray:
    """The albedo (N,) of `energy_budget` (the same inputs), about half its cost: it skips the
    downward pass that gives the absorbed profile."""
    _check_soil_albedo(soil_albedo)
    albedo = np.empty(len(np.atleast_1d(cos_illum)))
    for rows, layers, scalars, n_layers in _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw):
        _albedo_kernel(*layers, n_layers, scalars["cos_illum"], _direct_fraction(scalars),
                       *_band_arguments(soil_albedo), albedo[rows])
    return albedo


def reference_energy_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw,
                            soil_albedo=SOIL_ALBEDO) -> EnergyBudget:
    """The same budget computed profile by profile with `tartes.absorption_profile`, as
    TARTES_LABELS.md says. About 40 ms per profile: the yardstick for tests and benchmarks."""
    _check_soil_albedo(soil_albedo)
    layers, scalars, n_layers, _ = validate_inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw)
    layers, scalars = crocus_inputs(layers, scalars)
    common = dict(wavelength=BANDS["wavelength"], shape_parameterization=SHAPE_PARAMETERIZATION, g0=G0, B0=B0,
                  impurities_type=[SOOT, DUST], refrac_index="w2008", soilalbedo=soil_albedo, dir_frac=1.0,
                  totflux=1.0)
    budget = EnergyBudget(np.empty(len(n_layers)), np.full(layers["dz"].shape, np.nan), np.empty(len(n_layers)))
    for p, n in enumerate(n_layers):
        profile = dict(
            SSA=layers["ssa"][p, :n], density=layers["density"][p, :n], thickness=layers["dz"][p, :n],
            # tartes asserts a Python sequence [soot, dust] per layer
            impurities=[[float(s), float(d)] for s, d in zip(layers["soot"][p, :n], layers["dust"][p, :n])],
        )
        sza = np.degrees(np.arccos(scalars["cos_illum"][p]))
        _, direct = tartes.absorption_profile(sza=sza, **profile, **common)  # (bands, n layers + soil)
        _, diffuse = tartes.absorption_profile(sza=DIFFUSE_SZA_DEG, **profile, **common)
        direct_sw, diffuse_sw = scalars["direct_sw"][p], scalars["diffuse_sw"][p]
        energy = direct_sw * (BANDS["ratio_direct"] @ direct) + diffuse_sw * (BANDS["ratio_diffuse"] @ diffuse)
        energy[0] += direct_sw * F_DIR_BEYOND + diffuse_sw * F_DIF_BEYOND
        fractions = energy / (direct_sw + diffuse_sw)
        budget.absorbed[p, :n] = fractions[:n]
        budget.soil[p] = fractions[n]
        budget.albedo[p] = 1 - fractions.sum()
    return budget
