"""The TARTES broadband albedo of ../shared/reference/TARTES_LABELS.md, for many profiles at once.

`broadband_albedo` solves the same two-stream equations as the `tartes` package (v2.0.3,
delta-Eddington, `shape_parameterization='linear'`, Warren and Brandt 2008 ice, soot of Chang
1990 and Libyan PM2.5 dust of Caponi et al. 2017) in a compiled kernel, parallel over profiles.
`reference_broadband_albedo` calls the `tartes` package profile by profile: the yardstick.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numba
import numpy as np
import tartes
from tartes.impurities import CaponiDust, SootChang90
from tartes.refractive_index import refice2008

N_LAYERS_MAX = 50
LAYER_FIELDS = ("dz", "ssa", "density", "soot", "dust")
# Fields that divide or scale the optical depth: zero is not a snow layer.
STRICTLY_POSITIVE = ("dz", "ssa", "density")


def validate_inputs(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw,
                    first_row: int = 0) -> tuple[dict, dict, np.ndarray]:
    """Check a batch of profiles and return (layers, scalars, n_layers) as float64 arrays.

    Layer arrays are (N, L), 1 <= L <= 50, top layer first, NaN for absent layers, present layers
    contiguous from the top; scalars are (N,). Raises ValueError naming the field and the first
    offending row (counted from first_row, for callers that validate a chunk of a larger batch).
    """
    layers = {name: np.asarray(a, dtype=np.float64) for name, a in zip(LAYER_FIELDS, (dz, ssa, density, soot, dust))}
    scalars = {
        name: np.asarray(a, dtype=np.float64)
        for name, a in zip(("cos_sza", "direct_sw", "diffuse_sw"), (cos_sza, direct_sw, diffuse_sw))
    }
    shape = layers["dz"].shape
    if len(shape) != 2 or not 1 <= shape[1] <= N_LAYERS_MAX:
        raise ValueError(f"dz: expected an (N, L) array with 1 <= L <= {N_LAYERS_MAX}, got shape {shape}")
    for name, a in layers.items():
        if a.shape != shape:
            raise ValueError(f"{name}: shape {a.shape} differs from dz's {shape}")
    for name, a in scalars.items():
        if a.shape != (shape[0],):
            raise ValueError(f"{name}: expected shape ({shape[0]},) to match dz, got {a.shape}")

    present = ~np.isnan(layers["dz"])
    n_layers = present.sum(axis=1)

    def fail(name, bad_rows, problem):
        row = first_row + int(np.flatnonzero(bad_rows)[0])
        raise ValueError(f"{name}: row {row}: {problem}")

    if np.any(n_layers == 0):
        fail("dz", n_layers == 0, "no snow layer (every dz is NaN)")
    # Contiguous from the top: exactly the first n_layers columns are present.
    contiguous = np.arange(shape[1])[None, :] < n_layers[:, None]
    if np.any(present != contiguous):
        fail("dz", np.any(present != contiguous, axis=1), "a present layer lies below an absent one")
    for name, a in layers.items():
        inside = np.where(present, a, 1.0)
        if np.any(np.isnan(inside)):
            fail(name, np.any(np.isnan(inside), axis=1), "NaN inside a present layer")
        if np.any(np.isinf(inside)):
            fail(name, np.any(np.isinf(inside), axis=1), "infinite value inside a present layer")
        if np.any(inside < 0):
            fail(name, np.any(inside < 0, axis=1), "negative value inside a present layer")
        if name in STRICTLY_POSITIVE and np.any(inside == 0):
            fail(name, np.any(inside == 0, axis=1), "zero inside a present layer (must be > 0)")

    mu = scalars["cos_sza"]
    bad = ~((mu > 0) & (mu <= 1))
    if np.any(bad):
        fail("cos_sza", bad, f"{mu[np.flatnonzero(bad)[0]]} is outside (0, 1]")
    for name in ("direct_sw", "diffuse_sw"):
        a = scalars[name]
        bad = ~np.isfinite(a) | (a < 0)
        if np.any(bad):
            fail(name, bad, f"{a[np.flatnonzero(bad)[0]]} is not a finite value >= 0")
    total = scalars["direct_sw"] + scalars["diffuse_sw"]
    if np.any(total <= 0):
        fail("direct_sw + diffuse_sw", total <= 0, "no incident shortwave (the albedo is undefined)")
    return layers, scalars, n_layers


# --- Constants of the label (TARTES_LABELS.md), taken from the tartes package itself ---------------

_tartes_core = importlib.import_module("tartes.tartes")  # the module, shadowed by the function of that name

BANDS_FILE = Path(__file__).resolve().parents[1] / "data" / "crocus_t17_bands.csv"
SHAPE_PARAMETERIZATION = "linear"
G0 = 0.8961  # SURFEX XPSNOWG0
B0 = 1.225  # SURFEX XPSNOWB0
DIFFUSE_SZA_DEG = 53.0  # Crocus treats diffuse light as a direct beam at 53 degrees
F_DIR_BEYOND = 0.001000684  # fraction of direct radiation in 2520-4000 nm, absorbed by Crocus
F_DIF_BEYOND = 0.01216941  # the same for diffuse radiation
SOIL_ALBEDO = 0.2
SOOT = SootChang90
DUST = CaponiDust("libya", "PM2_5")
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
# Broadband denominators: band weights plus the fraction beyond 2500 nm that snow absorbs entirely.
DIRECT_WEIGHT_SUM = BANDS["ratio_direct"].sum() + F_DIR_BEYOND
DIFFUSE_WEIGHT_SUM = BANDS["ratio_diffuse"].sum() + F_DIF_BEYOND


# --- The compiled two-stream solver ----------------------------------------------------------------
#
# tartes solves, per band, a tridiagonal system for the two-stream coefficients of every layer.
# The same equations are solved here layer by layer from the bottom up (invariant imbedding): the
# upward diffuse flux at the top of each layer is an affine function of the downward one,
#     up = R * down + S * beam,
# with R, S carried upward through each layer in closed form. In layer k (infinite-medium albedo r,
# f = exp(-ke dtau*), direct-beam transmission T = exp(-dtau*/mu), particular solution Gp, Gm), with
# a = (R - r) / (1/r - R) and b = (R Gm + S - Gp) / (1/r - R) from the layer below:
#     R' = (r + f^2 a / r) / (1 + f^2 a),   S' = T f b / r + Gp - R' (T f b + Gm).
# At the surface no diffuse light comes down, so the albedo is S' of the top layer. Every quotient
# has a positive denominator (r < 1, R <= 1): no pivoting needed. Same truncation as tartes.


# Reassociation, contraction into fused multiply-adds and reciprocals change results by ~1e-16.
FASTMATH = {"contract", "arcp", "reassoc", "nsz"}


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _source_up(u, inverse_u, r, f, ke, ssalb_star, g_star, gamma1, gamma2, dtau, R, R_top, S, inverse):
    """S at the top of a layer from S below it, for a beam of cosine u: the particular solution
    Gp, Gm of tartes.Gp_Gm_vectors_delta_eddington carried through the layer."""
    g3 = 0.25 * (2 - 3 * g_star * u)
    g4 = 0.25 * (2 + 3 * g_star * u)
    G = u * ssalb_star / (ke * ke * u * u - 1)
    gp = G * ((gamma1 - inverse_u) * g3 + gamma2 * g4)
    gm = G * ((gamma1 + inverse_u) * g4 + gamma2 * g3)
    Tfb = np.exp(-dtau * inverse_u) * f * (R * gm + S - gp) * inverse
    return Tfb / r + gp - R_top * (Tfb + gm)


@numba.njit(cache=True, fastmath=FASTMATH)
def _profile_albedo(n, dz, ssa, density, soot, dust, mu_direct, mu_diffuse, soil_albedo, c_times_ssa, ginf, g00,
                    y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke, ssalb_star, g_star,
                    gamma1, gamma2, dtau, f, layer_terms):
    """Band-weighted sums of the direct (at mu_direct) and diffuse (at mu_diffuse) spectral albedos."""
    # band-independent layer quantities: 1/SSA, impurity co-albedo per unit MAE, extinction * dz
    for k in range(n):
        inverse_ssa = 1.0 / ssa[k]
        layer_terms[0, k] = inverse_ssa
        layer_terms[1, k] = 2.0 * inverse_ssa * soot[k]
        layer_terms[2, k] = 2.0 * inverse_ssa * dust[k]
        layer_terms[3, k] = density[k] * ssa[k] / 2 * dz[k]
    inverse_mu_direct = 1.0 / mu_direct
    inverse_mu_diffuse = 1.0 / mu_diffuse
    sum_direct = 0.0
    sum_diffuse = 0.0
    for b in range(c_times_ssa.shape[0]):
        # 1. optical properties from the surface down to where tartes truncates
        #    (tartes.single_scattering_optical_parameters and the delta-Eddington functions)
        n_eff = n
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
            if tau_ke > TAU_TRUNCATION:
                n_eff = k + 1
                break
        # 2. the bottom: soil, or where tartes truncates, an albedo-1 floor under a layer whose
        #    diffuse transmission is that of 30 / ke optical depth (the beam keeps the true depth)
        R = soil_albedo
        if n_eff < n:
            R = 1.0
            f[n_eff - 1] = np.exp(-TAU_TRUNCATION)
        S_direct = R
        S_diffuse = R
        # 3. up through the layers, both illuminations at once
        for k in range(n_eff - 1, -1, -1):
            r = infalb[k]
            fk = f[k]
            inverse = 1.0 / (1.0 / r - R)
            ff_a = fk * fk * (R - r) * inverse
            R_top = (r + ff_a / r) / (1 + ff_a)
            S_direct = _source_up(mu_direct, inverse_mu_direct, r, fk, ke[k], ssalb_star[k], g_star[k], gamma1[k],
                                  gamma2[k], dtau[k], R, R_top, S_direct, inverse)
            S_diffuse = _source_up(mu_diffuse, inverse_mu_diffuse, r, fk, ke[k], ssalb_star[k], g_star[k], gamma1[k],
                                   gamma2[k], dtau[k], R, R_top, S_diffuse, inverse)
            R = R_top
        sum_direct += ratio_direct[b] * S_direct
        sum_diffuse += ratio_diffuse[b] * S_diffuse
    return sum_direct, sum_diffuse


@numba.njit(parallel=True, cache=True)
def _broadband_components(dz, ssa, density, soot, dust, n_layers, cos_sza, soil_albedo, c_times_ssa, ginf, g00,
                          y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, diffuse_mu,
                          direct_weight_sum, diffuse_weight_sum, albedo_direct, albedo_diffuse):
    n_max = dz.shape[1]
    for p in numba.prange(dz.shape[0]):
        # per-profile scratch: small, and private to the thread running this profile
        infalb = np.empty(n_max)
        ke = np.empty(n_max)
        ssalb_star = np.empty(n_max)
        g_star = np.empty(n_max)
        gamma1 = np.empty(n_max)
        gamma2 = np.empty(n_max)
        dtau = np.empty(n_max)
        f = np.empty(n_max)
        layer_terms = np.empty((4, n_max))
        direct, diffuse = _profile_albedo(
            n_layers[p], dz[p], ssa[p], density[p], soot[p], dust[p], cos_sza[p], diffuse_mu, soil_albedo,
            c_times_ssa, ginf, g00, y, W, phi, mae_soot, mae_dust, ratio_direct, ratio_diffuse, infalb, ke,
            ssalb_star, g_star, gamma1, gamma2, dtau, f, layer_terms)
        albedo_direct[p] = direct / direct_weight_sum
        albedo_diffuse[p] = diffuse / diffuse_weight_sum


CHUNK_PROFILES = 65536  # rows validated and solved per call: bounds memory whatever N


def _layer_arrays(fields):
    """Layer fields as arrays that chunks slice; validate_inputs checks each chunk in full."""
    arrays = [np.asarray(a) for a in fields]
    for name, a in zip(LAYER_FIELDS, arrays):
        if a.ndim != 2:
            raise ValueError(f"{name}: expected an (N, L) array, got shape {a.shape}")
    return arrays


def _solve_components(layers, scalars, n_layers, soil_albedo, albedo_direct, albedo_diffuse):
    fields = [np.ascontiguousarray(layers[name]) for name in LAYER_FIELDS]
    _broadband_components(
        *fields, n_layers.astype(np.int64), np.ascontiguousarray(scalars["cos_sza"]), float(soil_albedo),
        BANDS["c_times_ssa"], BANDS["ginf"], BANDS["g00"], BANDS["y"], BANDS["W"], BANDS["phi"],
        BANDS["mae_soot"], BANDS["mae_dust"], BANDS["ratio_direct"], BANDS["ratio_diffuse"],
        np.cos(np.deg2rad(DIFFUSE_SZA_DEG)), DIRECT_WEIGHT_SUM, DIFFUSE_WEIGHT_SUM, albedo_direct, albedo_diffuse)


def _check_soil_albedo(soil_albedo):
    if not 0 <= soil_albedo <= 1:
        raise ValueError(f"soil_albedo: {soil_albedo} is outside [0, 1]")


def broadband_albedo_components(dz, ssa, density, soot, dust, cos_sza, soil_albedo=SOIL_ALBEDO):
    """Broadband albedo under purely direct light at cos_sza, and under purely diffuse light.

    Returns (albedo_direct, albedo_diffuse), each (N,). The label of `broadband_albedo` is their
    mean weighted by direct_sw * DIRECT_WEIGHT_SUM and diffuse_sw * DIFFUSE_WEIGHT_SUM
    (`combine_components`). Inputs as `broadband_albedo`.
    """
    _check_soil_albedo(soil_albedo)
    cos_sza = np.atleast_1d(cos_sza)
    n = len(cos_sza)
    fields = _layer_arrays((dz, ssa, density, soot, dust))
    albedo_direct = np.empty(n)
    albedo_diffuse = np.empty(n)
    ones = np.ones(min(n, CHUNK_PROFILES))
    for start in range(0, max(n, 1), CHUNK_PROFILES):
        rows = slice(start, start + CHUNK_PROFILES)
        chunk = [a[rows] for a in fields]
        flux = ones[:len(cos_sza[rows])]
        layers, scalars, n_layers = validate_inputs(*chunk, cos_sza[rows], flux, flux, first_row=start)
        _solve_components(layers, scalars, n_layers, soil_albedo, albedo_direct[rows], albedo_diffuse[rows])
    return albedo_direct, albedo_diffuse


def combine_components(albedo_direct, albedo_diffuse, direct_sw, diffuse_sw):
    """The flux-weighted broadband albedo of TARTES_LABELS.md from its direct and diffuse parts."""
    weight_direct = np.asarray(direct_sw) * DIRECT_WEIGHT_SUM
    weight_diffuse = np.asarray(diffuse_sw) * DIFFUSE_WEIGHT_SUM
    return (weight_direct * albedo_direct + weight_diffuse * albedo_diffuse) / (weight_direct + weight_diffuse)


def broadband_albedo(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw, soil_albedo=SOIL_ALBEDO):
    """TARTES broadband albedo (N,) of N snow profiles, float64.

    dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust (kg kg-1): (N, L) arrays, L <= 50, top
    layer first, NaN for absent layers; cos_sza (-), direct_sw and diffuse_sw (W m-2): (N,).
    Works through CHUNK_PROFILES rows at a time, parallel over profiles on the threads numba may
    use (NUMBA_NUM_THREADS, all cores by default).
    """
    _check_soil_albedo(soil_albedo)
    direct_sw, diffuse_sw, cos_sza = (np.atleast_1d(a) for a in (direct_sw, diffuse_sw, cos_sza))
    n = len(cos_sza)
    fields = _layer_arrays((dz, ssa, density, soot, dust))
    albedo = np.empty(n)
    for start in range(0, max(n, 1), CHUNK_PROFILES):
        rows = slice(start, start + CHUNK_PROFILES)
        layers, scalars, n_layers = validate_inputs(*(a[rows] for a in fields), cos_sza[rows], direct_sw[rows],
                                                    diffuse_sw[rows], first_row=start)
        albedo_direct, albedo_diffuse = np.empty(len(n_layers)), np.empty(len(n_layers))
        _solve_components(layers, scalars, n_layers, soil_albedo, albedo_direct, albedo_diffuse)
        albedo[rows] = combine_components(albedo_direct, albedo_diffuse, scalars["direct_sw"], scalars["diffuse_sw"])
    return albedo


def reference_broadband_albedo(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw,
                               soil_albedo=SOIL_ALBEDO):
    """The same label computed profile by profile with the `tartes` package, as TARTES_LABELS.md says.

    About 40 ms per profile: the yardstick for tests and benchmarks, not for production.
    """
    layers, scalars, n_layers = validate_inputs(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw)
    common = dict(wavelength=BANDS["wavelength"], shape_parameterization=SHAPE_PARAMETERIZATION, g0=G0, B0=B0,
                  impurities_type=[SOOT, DUST], refrac_index="w2008", soilalbedo=soil_albedo, dir_frac=1.0)
    albedo = np.empty(len(n_layers))
    for p, n in enumerate(n_layers):
        profile = dict(
            SSA=layers["ssa"][p, :n], density=layers["density"][p, :n], thickness=layers["dz"][p, :n],
            # tartes asserts a Python sequence [soot, dust] per layer
            impurities=[[float(s), float(d)] for s, d in zip(layers["soot"][p, :n], layers["dust"][p, :n])],
        )
        sza = np.degrees(np.arccos(scalars["cos_sza"][p]))
        a_dir = np.atleast_1d(tartes.albedo(sza=sza, **profile, **common))
        a_dif = np.atleast_1d(tartes.albedo(sza=DIFFUSE_SZA_DEG, **profile, **common))
        direct, diffuse = scalars["direct_sw"][p], scalars["diffuse_sw"][p]
        albedo[p] = (direct * np.dot(BANDS["ratio_direct"], a_dir) + diffuse * np.dot(BANDS["ratio_diffuse"], a_dif)) / (
            direct * DIRECT_WEIGHT_SUM + diffuse * DIFFUSE_WEIGHT_SUM)
    return albedo
