"""What Crocus takes from TARTES (docs/labels.md), for many profiles at once: the broadband albedo,
the fraction of the incident shortwave absorbed in each layer, and the fraction that reaches the
soil, exactly as SURFEX-Crocus computes them (SNOWCRO_TARTES with CSNOWRAD='T17').

`energy_budget` and `broadband_albedo` compute steps 0 to 3 of docs/labels.md in double precision,
in a compiled kernel, parallel over profiles: Crocus's light and layer rules (utils/crocus_rules.py),
the delta-Eddington two-stream spectral solution of the `tartes` package (v2.0.3,
`shape_parameterization='linear'`, Warren and Brandt 2008 ice, soot of Chang 1990, Libyan PM2.5
dust of Caponi et al. 2017) with SURFEX's four differences (soot density 1270, no floor on gamma2,
SURFEX's per-band truncation, its energy clean-up in W m-2), and Crocus's broadband assembly. They
agree with SURFEX's own outputs in data/surfex_tartes_cases.npz to about 1e-10.

`reference_energy_budget` computes the same with the `tartes` package itself, profile by profile,
changing the four points where SURFEX differs from it: a second, independent implementation, which
shares only the constants and Crocus's rules with the kernel.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager

import numba
import numpy as np
import tartes

from utils.crocus_rules import crocus_inputs, dark_rows
from utils.profiles import EnergyBudget, validate_inputs
from utils.schema import LAYER_VARIABLES
from utils.tartes_constants import (B0, BANDS, CLEANUP_EXCESS, CLEANUP_NEGATIVE, CLEANUP_WAVELENGTH_MAX, DIFFUSE_COS,
                                    DIFFUSE_SZA_DEG, DUST, F_DIF_BEYOND, F_DIR_BEYOND, G0, SHAPE_PARAMETERIZATION,
                                    SOIL_ALBEDO, SOOT, TAU_TRUNCATION)

_tartes_core = importlib.import_module("tartes.tartes")  # the module, shadowed by the function of that name

CHUNK_PROFILES = 65536  # rows validated and solved per call: bounds memory whatever N

# --- The compiled two-stream solver ----------------------------------------------------------------
#
# tartes solves, per band, a tridiagonal system for the two-stream coefficients of every layer.
# The same equations are solved here layer by layer (invariant imbedding). Going up from the
# bottom, the upward diffuse flux at the top of each layer is an affine function of the downward
# diffuse flux and of the direct beam there,
#     up = R * down + S * beam,
# with R, S carried upward through each layer in closed form. In layer k (infinite-medium albedo r,
# f = exp(-ke dtau*), beam transmission T = exp(-dtau*/mu), particular solution Gp, Gm per unit
# beam at the layer's top), with, from the layer below,
#     alpha = (R - r) / (1 - r R),   beta = (R Gm + S - Gp) / (1 - r R):
#     R' = (r + f^2 alpha) / (1 + r f^2 alpha),   S' = f T beta + Gp - R' (Gm + r f T beta).
# Nothing divides by r: without tartes' floor on gamma2, r is 0 or slightly negative in strongly
# absorbing bands (docs/labels.md, step 2), and 1 - r R > 0 and 1 + r f^2 alpha > 0 there too.
# At the surface no diffuse light comes down and the beam is 1, so the albedo is S' of the top
# layer. Going back down, the downward diffuse flux at the bottom of layer k follows from the one
# at its top, D, and the beam there, B:
#     A = (D - B (Gm + r f T beta)) / (1 + r f^2 alpha),   D' = A f (1 + r alpha) + B T (r beta + Gm),
# and the layer absorbs the net flux (D + B - up) at its top minus that at its bottom; the soil
# absorbs the net flux at the bottom of the pack. The sums telescope: the band's reflected,
# absorbed and soil fractions add up to 1 to rounding. No pivoting is needed.

# Reassociation, contraction into fused multiply-adds and reciprocals change results by ~1e-16.
FASTMATH = {"contract", "arcp", "reassoc", "nsz"}

# Rows of the band table (_band_table) and of the per-layer optics of a band (_band_optics).
(C_TIMES_SSA, GINF, G_SPAN, Y, HALF_COALBEDO, PHI, MAE_SOOT, MAE_DUST, RATIO_DIRECT, RATIO_DIFFUSE,
 CLEANUP_DROPS) = range(11)
R_INF, KE, W_STAR, G_STAR, GAMMA1, GAMMA2, DTAU, F = range(8)


def _band_table() -> np.ndarray:
    """(11, bands) float64: the per-band constants the kernel reads, rows named above."""
    table = np.empty((11, len(BANDS["wavelength"])))
    table[C_TIMES_SSA] = BANDS["c_times_ssa"]  # absorption coefficient of ice times 1 / SSA
    table[GINF], table[G_SPAN], table[Y] = BANDS["ginf"], BANDS["ginf"] - BANDS["g00"], BANDS["y"]
    table[HALF_COALBEDO], table[PHI] = 0.5 * (1 - BANDS["W"]), BANDS["phi"]
    table[MAE_SOOT], table[MAE_DUST] = BANDS["mae_soot"], BANDS["mae_dust"]
    table[RATIO_DIRECT], table[RATIO_DIFFUSE] = BANDS["ratio_direct"], BANDS["ratio_diffuse"]
    table[CLEANUP_DROPS] = BANDS["wavelength"] <= CLEANUP_WAVELENGTH_MAX
    return table


BAND_TABLE = _band_table()


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _layer_terms(n, dz, ssa, density, soot, dust, layer_terms):
    """Band-independent layer quantities: 1/SSA, impurity co-albedo per unit MAE, extinction * dz."""
    for k in range(n):
        inverse_ssa = 1.0 / ssa[k]
        layer_terms[0, k] = inverse_ssa
        layer_terms[1, k] = 2.0 * inverse_ssa * soot[k]
        layer_terms[2, k] = 2.0 * inverse_ssa * dust[k]
        layer_terms[3, k] = density[k] * ssa[k] / 2 * dz[k]


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _band_optics(b, n, layer_terms, table, optics, truncation):
    """Delta-Eddington optics of band b (tartes.single_scattering_optical_parameters and the
    delta-Eddington functions, gamma2 without tartes' floor, dtau* without its cap) into the rows of
    optics, layer by layer from the top, and with truncation SURFEX's (ESTIMATE_EFFECTIVE_LAYER_NUMBER):
    returns n_eff, the number of layers above the one (the second or deeper) where the cumulative
    ke dtau* exceeds 30, or n."""
    tau = 0.0
    for k in range(n):
        c = table[C_TIMES_SSA, b] * layer_terms[0, k]
        g = table[GINF, b] - table[G_SPAN, b] * np.exp(-table[Y, b] * c)
        # impurities with zero content add exactly 0, as tartes' skipping them does
        cossalb = (table[HALF_COALBEDO, b] * (1 - np.exp(-c * table[PHI, b])) + table[MAE_SOOT, b] * layer_terms[1, k]
                   + table[MAE_DUST, b] * layer_terms[2, k])
        ssalb = 1.0 - cossalb
        g_squared = g * g
        w_star = ssalb * (1 - g_squared) / (1 - g_squared * ssalb)
        g_star = g / (1 + g)
        gamma1 = 0.25 * (7 - w_star * (4 + 3 * g_star))
        gamma2 = -0.25 * (1 - w_star * (4 - 3 * g_star))
        ke = np.sqrt(gamma1 * gamma1 - gamma2 * gamma2)
        dtau = layer_terms[3, k] * (1 - ssalb * g_squared)
        tau += ke * dtau
        if truncation and k > 0 and tau > TAU_TRUNCATION:
            return k
        optics[R_INF, k] = gamma2 / (gamma1 + ke)
        optics[KE, k] = ke
        optics[W_STAR, k] = w_star
        optics[G_STAR, k] = g_star
        optics[GAMMA1, k] = gamma1
        optics[GAMMA2, k] = gamma2
        optics[DTAU, k] = dtau
        optics[F, k] = np.exp(-ke * dtau)
    return n


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _beam_up(u, optics, k, R, R_top, S, inverse):
    """A beam of cosine u through layer k (tartes.Gp_Gm_vectors_delta_eddington carried through
    it): S at its top from S below it, the beam's transmission T, and the terms Gm + r f T beta and
    T (r beta + Gm) of the downward pass."""
    inverse_u = 1.0 / u
    ke = optics[KE, k]
    g3 = 0.25 * (2 - 3 * optics[G_STAR, k] * u)
    g4 = 0.25 * (2 + 3 * optics[G_STAR, k] * u)
    G = u * optics[W_STAR, k] / (ke * ke * u * u - 1)
    gp = G * ((optics[GAMMA1, k] - inverse_u) * g3 + optics[GAMMA2, k] * g4)
    gm = G * ((optics[GAMMA1, k] + inverse_u) * g4 + optics[GAMMA2, k] * g3)
    T = np.exp(-optics[DTAU, k] * inverse_u)
    r = optics[R_INF, k]
    beta = (R * gm + S - gp) * inverse
    fTb = optics[F, k] * T * beta
    source = gm + r * fTb
    return fTb + gp - R_top * source, T, source, T * (r * beta + gm)


@numba.njit(cache=True, fastmath=FASTMATH)
def _profile_energy(n, dz, ssa, density, soot, dust, mu_direct, direct_sw, diffuse_sw, soil_albedo, table,
                    truncation, layer_terms, optics, work, band_energy, energy):
    """Steps 2 and 3 of docs/labels.md for one lit profile: the energy (W m-2) absorbed in each of
    its n layers into energy[:n], the near infrared beyond the bands included; returns the soil's."""
    _layer_terms(n, dz, ssa, density, soot, dust, layer_terms)
    R_int, inverse_denominator, down_gain = work[0], work[1], work[2]
    S_int, T, beam_source, beam_down = work[3:5], work[5:7], work[7:9], work[9:11]
    mus = (mu_direct, DIFFUSE_COS)
    for k in range(n):
        energy[k] = 0.0
    soil_energy = 0.0
    for b in range(table.shape[1]):
        n_eff = _band_optics(b, n, layer_terms, table, optics, truncation)
        truncated = n_eff < n
        weights = (direct_sw * table[RATIO_DIRECT, b], diffuse_sw * table[RATIO_DIFFUSE, b])  # W m-2
        # up: R, S at each interface, over the soil or, under a truncated pack, an albedo-1 floor
        R = 1.0 if truncated else soil_albedo
        R_int[n_eff] = R
        S_int[0, n_eff] = R
        S_int[1, n_eff] = R
        for k in range(n_eff - 1, -1, -1):
            r = optics[R_INF, k]
            ff = optics[F, k] * optics[F, k]
            inverse = 1.0 / (1.0 - r * R)
            alpha = (R - r) * inverse
            inverse_denominator[k] = 1.0 / (1.0 + r * ff * alpha)
            down_gain[k] = optics[F, k] * (1.0 + r * alpha)
            R_top = (r + ff * alpha) * inverse_denominator[k]
            for i in range(2):
                if weights[i] == 0.0:  # no light under this illumination: it adds nothing
                    S_int[i, k] = T[i, k] = beam_source[i, k] = beam_down[i, k] = 0.0
                else:
                    S_int[i, k], T[i, k], beam_source[i, k], beam_down[i, k] = _beam_up(
                        mus[i], optics, k, R, R_top, S_int[i, k + 1], inverse)
            R_int[k] = R_top
            R = R_top
        # down, both illuminations at once (the fluxes are linear in them): E[k] in W m-2
        down = 0.0
        beam_direct, beam_diffuse = weights
        net_top = beam_direct + beam_diffuse - (beam_direct * S_int[0, 0] + beam_diffuse * S_int[1, 0])
        for k in range(n_eff):
            down = ((down - beam_direct * beam_source[0, k] - beam_diffuse * beam_source[1, k])
                    * inverse_denominator[k] * down_gain[k] + beam_direct * beam_down[0, k]
                    + beam_diffuse * beam_down[1, k])
            beam_direct *= T[0, k]
            beam_diffuse *= T[1, k]
            net_bottom = (down + beam_direct + beam_diffuse
                          - (R_int[k + 1] * down + S_int[0, k + 1] * beam_direct + S_int[1, k + 1] * beam_diffuse))
            band_energy[k] = net_top - net_bottom
            net_top = net_bottom
        soil_band = 0.0 if truncated else net_top  # the albedo-1 floor absorbs nothing
        # SURFEX's clean-up (SNOWCRO_CALL_TARTES). The layers below n_eff hold 0, which changes
        # neither them nor C: whatever held after layer n_eff holds after layer n.
        incident = weights[0] + weights[1]
        drops = table[CLEANUP_DROPS, b] != 0.0
        C = 0.0
        for k in range(n_eff):
            e = band_energy[k]
            U = C
            C += e
            if -CLEANUP_NEGATIVE < e < 0.0:
                e = 0.0  # C keeps the small negative value
            if C > incident or e <= -CLEANUP_NEGATIVE:
                if drops and abs(C - incident) > CLEANUP_EXCESS:
                    if e >= 0.0:
                        C -= e
                    e = 0.0
                else:
                    e = incident - U
                    C = incident
            energy[k] += e
        if C + soil_band > incident:
            soil_band = incident - C  # a negative value is left as it is
        soil_energy += soil_band
    energy[0] += direct_sw * F_DIR_BEYOND + diffuse_sw * F_DIF_BEYOND  # beyond 2500 nm, in the top layer
    return soil_energy


@numba.njit(parallel=True, cache=True)
def _budget_kernel(dz, ssa, density, soot, dust, n_layers, dark, cos_illum, direct_sw, diffuse_sw, soil_albedo, table,
                   truncation, albedo, absorbed, soil):
    """Fills albedo, absorbed and soil, fractions of direct_sw + diffuse_sw (step 3 of
    docs/labels.md), with the dark-row and snow-free values of its contract."""
    n_max = dz.shape[1]
    for p in numba.prange(dz.shape[0]):
        n = n_layers[p]
        for k in range(n, n_max):
            absorbed[p, k] = np.nan
        if n == 0:
            albedo[p] = soil[p] = np.nan
            continue
        if dark[p]:
            albedo[p] = 1.0
            soil[p] = 0.0
            for k in range(n):
                absorbed[p, k] = 0.0
            continue
        # per-profile work arrays: small, private to the thread running the profile
        layer_terms = np.empty((4, n_max))
        optics = np.empty((8, n_max))
        work = np.empty((11, n_max + 1))
        band_energy = np.empty(n_max)
        energy = np.empty(n_max)
        soil_energy = _profile_energy(n, dz[p], ssa[p], density[p], soot[p], dust[p], cos_illum[p], direct_sw[p],
                                      diffuse_sw[p], soil_albedo[p], table, truncation, layer_terms, optics, work,
                                      band_energy, energy)
        sw = direct_sw[p] + diffuse_sw[p]
        total = 0.0
        for k in range(n):
            absorbed[p, k] = energy[k] / sw
            total += absorbed[p, k]
        soil[p] = soil_energy / sw
        albedo[p] = 1.0 - total - soil[p]


def _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith):
    """(rows, kernel arguments) of CHUNK_PROFILES rows at a time: validated, the dark rows marked,
    after Crocus's rules; arrays contiguous float64, as the kernel takes them."""
    fields = [np.asarray(a) for a in (dz, ssa, density, soot, dust)]
    for name, a in zip(LAYER_VARIABLES, fields):
        if a.ndim != 2:
            raise ValueError(f"{name}: expected an (N, L) array, got shape {a.shape}")
    scalars = [np.atleast_1d(a) for a in (cos_illum, direct_sw, diffuse_sw)]
    per_row = [None if a is None else np.asarray(a) for a in (soil_albedo, cos_zenith)]
    n = len(scalars[0])
    for start in range(0, max(n, 1), CHUNK_PROFILES):
        rows = slice(start, start + CHUNK_PROFILES)
        soil_rows, zenith_rows = (a[rows] if a is not None and a.ndim == 1 else a for a in per_row)
        layers, chunk, n_layers, _ = validate_inputs(
            *(a[rows] for a in fields), *(a[rows] for a in scalars), first_row=start, snow_free=True,
            soil_albedo=soil_rows, cos_zenith=zenith_rows, allow_dark=True)
        dark = dark_rows(chunk["direct_sw"], chunk["diffuse_sw"], chunk["cos_zenith"])
        layers, chunk = crocus_inputs(layers, chunk)
        yield rows, ([np.ascontiguousarray(layers[name]) for name in LAYER_VARIABLES]
                     + [n_layers.astype(np.int64), dark]
                     + [np.ascontiguousarray(chunk[name])
                        for name in ("cos_illum", "direct_sw", "diffuse_sw", "soil_albedo")] + [BAND_TABLE])


def energy_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *, soil_albedo=SOIL_ALBEDO,
                  cos_zenith=None, truncation: bool = True) -> EnergyBudget:
    """The TARTES energy budget of N snow profiles as SURFEX-Crocus computes it (docs/labels.md,
    steps 0 to 3), float64: albedo (N,), absorbed (N, L) and soil (N,), fractions of the incident
    shortwave direct_sw + diffuse_sw, with albedo + absorbed.sum(axis=1) + soil = 1 to rounding.

    dz (m), ssa (m2 kg-1), density (kg m-3), soot and dust (kg kg-1): (N, L) arrays, L <= 50, top
    layer first, NaN for absent layers; cos_illum (-, the cosine of the angle between the sun and
    the normal to the surface), direct_sw and diffuse_sw (W m-2, on the surface): (N,) arrays;
    soil_albedo (-, the ground's albedo in every band) and cos_zenith (-, the cosine of the solar
    zenith angle): each a number or an (N,) array, cos_zenith None or NaN where not known.

    Crocus's rules come first (utils/crocus_rules.py): the layer rules; the sun behind the slope
    (cos_illum < 0.0017) makes all the light diffuse; where cos_zenith is given, a row without
    diffuse light takes Dumont's diffuse fraction. Dark rows (direct_sw + diffuse_sw <= 1e-8, or
    cos_zenith given and <= 1e-8; Crocus does not call TARTES there) get albedo 1, absorbed 0 in
    their present layers (NaN in absent ones) and soil 0; rows without any layer are NaN
    everywhere. Because of SURFEX's energy clean-up, very dark packs depend on the fluxes
    themselves, not only on the direct fraction. Raises ValueError naming the field, row and layer
    of an invalid input (utils.profiles.validate_inputs).

    truncation=False leaves out SURFEX's per-band truncation (every layer is solved, over the
    soil): not what Crocus computes, but beside it, where SURFEX's truncation changes the outputs
    (utils.report.truncation_regime).

    Works through CHUNK_PROFILES rows at a time, parallel over profiles on the threads numba may
    use (NUMBA_NUM_THREADS, all cores by default).
    """
    budget = None
    for rows, arguments in _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo,
                                   cos_zenith):
        if budget is None:  # the input width is kept, its columns beyond the 50 of Crocus NaN
            n = len(np.atleast_1d(cos_illum))
            budget = EnergyBudget(np.empty(n), np.full((n, np.shape(dz)[1]), np.nan), np.empty(n))
        _budget_kernel(*arguments, truncation, budget.albedo[rows], budget.absorbed[rows], budget.soil[rows])
    return budget


def broadband_albedo(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *, soil_albedo=SOIL_ALBEDO,
                     cos_zenith=None) -> np.ndarray:
    """The albedo (N,) of `energy_budget` (the same inputs and rules), at the same cost: SURFEX's
    energy clean-up needs every layer's energy, so the albedo needs the whole budget."""
    albedo = None
    for rows, arguments in _chunks(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo,
                                   cos_zenith):
        if albedo is None:
            albedo = np.empty(len(np.atleast_1d(cos_illum)))
        chunk = len(arguments[0])
        _budget_kernel(*arguments, True, albedo[rows], np.empty((chunk, arguments[0].shape[1])), np.empty(chunk))
    return albedo


# --- The reference: the tartes package with SURFEX's four differences ----------------------------

def _infinite_medium_without_floor(ssalb, g):
    """tartes.infinite_medium_optical_parameters_delta_eddington with gamma2 as SURFEX has it (no
    floor at 1e-4): the infinite-medium albedo and ke."""
    ssalb_star = ssalb * (1 - g ** 2) / (1 - g ** 2 * ssalb)
    g_star = g / (1 + g)
    gamma1 = 0.25 * (7 - ssalb_star * (4 + 3 * g_star))
    gamma2 = -0.25 * (1 - ssalb_star * (4 - 3 * g_star))
    ke = np.sqrt(gamma1 ** 2 - gamma2 ** 2)
    return gamma2 / (gamma1 + ke), ke


def _gp_gm_without_floor(ssalb, ke, g, mu):
    """tartes.Gp_Gm_vectors_delta_eddington with gamma2 as SURFEX has it (no floor)."""
    mu, ssalb, g, ke = mu[None, :], ssalb[:, None], g[:, None], ke[:, None]
    g_star = g / (1 + g)
    ssalb_star = ssalb * (1 - g ** 2) / (1 - g ** 2 * ssalb)
    gamma1 = 0.25 * (7 - ssalb_star * (4 + 3 * g_star))
    gamma2 = -0.25 * (1 - ssalb_star * (4 - 3 * g_star))
    gamma3 = 0.25 * (2 - 3 * g_star * mu)
    gamma4 = 0.25 * (2 + 3 * g_star * mu)
    G = mu * ssalb_star / ((ke * mu) ** 2 - 1)
    return G * ((gamma1 - 1 / mu) * gamma3 + gamma2 * gamma4), G * ((gamma1 + 1 / mu) * gamma4 + gamma2 * gamma3)


@contextmanager
def _tartes_without_gamma2_floor():
    """tartes with SURFEX's gamma2 for the duration of the block. The floor lives in two functions of
    the tartes.tartes module, which its solver reaches through the registries
    `infinite_medium_optical_parameters` and `Gp_Gm_vectors`: both registry entries and module names
    are swapped, then restored even on error, so that the stock package is what every other caller
    in the process (and every test comparing with it) sees."""
    swaps = ((_tartes_core.infinite_medium_optical_parameters, "delta_eddington", _infinite_medium_without_floor),
             (_tartes_core.Gp_Gm_vectors, "delta_eddington", _gp_gm_without_floor),
             (vars(_tartes_core), "infinite_medium_optical_parameters_delta_eddington", _infinite_medium_without_floor),
             (vars(_tartes_core), "Gp_Gm_vectors_delta_eddington", _gp_gm_without_floor))
    originals = [registry[name] for registry, name, _ in swaps]
    try:
        for registry, name, replacement in swaps:
            registry[name] = replacement
        yield
    finally:
        for (registry, name, _), original in zip(swaps, originals):
            registry[name] = original


def _reference_band_energies(ssa, density, dz, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo):
    """(energy, incident) of one lit profile with the tartes package (inside
    _tartes_without_gamma2_floor), before SURFEX's clean-up: energy (bands, n + 1) W m-2 absorbed
    in each layer and, last, by the soil; incident (bands,) W m-2 the band's incident flux."""
    n = len(dz)
    wavelength = BANDS["wavelength"]
    impurities = [[float(s), float(d)] for s, d in zip(soot, dust)]  # tartes asserts a Python sequence per layer
    common = dict(shape_parameterization=SHAPE_PARAMETERIZATION, g0=G0, B0=B0, impurities_type=[SOOT, DUST],
                  refrac_index="w2008", dir_frac=1.0, totflux=1.0)
    # SURFEX's truncation, from tartes' own optics: the layer where the cumulative ke dtau* (no cap)
    # first exceeds 30, from the second down, is dropped with all below it
    optics = [_tartes_core.single_scattering_optical_parameters(
        wavelength, "w2008", ssa[k], impurities[k], [SOOT, DUST], SHAPE_PARAMETERIZATION, G0, B0) for k in range(n)]
    ssalb, g = (np.stack([o[i] for o in optics], axis=1) for i in range(2))
    _, ke = _infinite_medium_without_floor(ssalb, g)
    dtaustar = _tartes_core.taustar_vector_delta_eddington(density * ssa / 2, dz, ssalb, g, ke)[0]
    crossed = np.cumsum(ke * dtaustar, axis=1)[:, 1:] > TAU_TRUNCATION
    n_eff = np.argmax(np.c_[crossed, np.ones(len(wavelength), bool)], axis=1) + 1  # n where none crosses
    # per band: the fraction of a unit flux absorbed in each kept layer and by the soil (or floor)
    fractions = {}
    for beam, sza, flux in (("direct", np.degrees(np.arccos(cos_illum)), direct_sw),
                            ("diffuse", DIFFUSE_SZA_DEG, diffuse_sw)):
        fractions[beam] = np.zeros((len(wavelength), n + 1))
        if flux == 0:
            continue
        for kept in np.unique(n_eff):
            bands = np.flatnonzero(n_eff == kept)
            _, absorbed = tartes.absorption_profile(
                wavelength=wavelength[bands], SSA=ssa[:kept], density=density[:kept], thickness=dz[:kept],
                impurities=impurities[:kept], soilalbedo=soil_albedo if kept == n else 1.0, sza=sza, **common)
            absorbed = absorbed.reshape(len(bands), kept + 1)  # tartes squeezes single bands and layers
            fractions[beam][bands, :kept] = absorbed[:, :kept]
            fractions[beam][bands, n] = absorbed[:, kept]
    weight_direct, weight_diffuse = direct_sw * BANDS["ratio_direct"], diffuse_sw * BANDS["ratio_diffuse"]
    energy = weight_direct[:, None] * fractions["direct"] + weight_diffuse[:, None] * fractions["diffuse"]
    return energy, weight_direct + weight_diffuse


def _clean_up(energy, incident):
    """SURFEX's clean-up (SNOWCRO_CALL_TARTES) of _reference_band_energies' output, all bands at once,
    layer by layer: the cleaned energies (bands, n + 1), W m-2."""
    energy = energy.copy()
    n = energy.shape[1] - 1
    drops = BANDS["wavelength"] <= CLEANUP_WAVELENGTH_MAX
    cumulative = np.zeros(len(incident))
    for k in range(n):
        above = cumulative
        cumulative = cumulative + energy[:, k]
        e = np.where((energy[:, k] > -CLEANUP_NEGATIVE) & (energy[:, k] < 0), 0.0, energy[:, k])
        fixed = (cumulative > incident) | (e <= -CLEANUP_NEGATIVE)
        dropped = fixed & drops & (np.abs(cumulative - incident) > CLEANUP_EXCESS)
        trimmed = fixed & ~dropped
        cumulative = np.where(dropped & (e >= 0), cumulative - e, np.where(trimmed, incident, cumulative))
        energy[:, k] = np.where(dropped, 0.0, np.where(trimmed, incident - above, e))
    energy[:, n] = np.where(cumulative + energy[:, n] > incident, incident - cumulative, energy[:, n])
    return energy


def reference_energy_budget(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *,
                            soil_albedo=SOIL_ALBEDO, cos_zenith=None) -> EnergyBudget:
    """The budget of `energy_budget` (the same inputs, rules and outputs) computed profile by
    profile with `tartes.absorption_profile`, with SURFEX's four differences made by hand: soot of
    density 1270 (utils.tartes_constants.CrocusSoot), tartes' floor on gamma2 removed (its two
    functions swapped for the call), SURFEX's truncation (each group of bands with the same number
    of kept layers solved on those layers over an albedo-1 floor) and the energy clean-up, applied
    to tartes' outputs in W m-2. About 75 ms per 50-layer profile: a second, independent
    implementation for tests and benchmarks."""
    layers, scalars, n_layers, _ = validate_inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw,
                                                   snow_free=True, soil_albedo=soil_albedo, cos_zenith=cos_zenith,
                                                   allow_dark=True)
    dark = dark_rows(scalars["direct_sw"], scalars["diffuse_sw"], scalars["cos_zenith"])
    layers, scalars = crocus_inputs(layers, scalars)
    n = len(n_layers)
    budget = EnergyBudget(np.full(n, np.nan), np.full(layers["dz"].shape, np.nan), np.full(n, np.nan))
    with _tartes_without_gamma2_floor():
        for p, m in enumerate(n_layers):
            if m == 0:
                continue
            if dark[p]:
                budget.albedo[p], budget.absorbed[p, :m], budget.soil[p] = 1.0, 0.0, 0.0
                continue
            energy = _clean_up(*_reference_band_energies(
                *(layers[name][p, :m] for name in ("ssa", "density", "dz", "soot", "dust")),
                *(scalars[name][p] for name in ("cos_illum", "direct_sw", "diffuse_sw", "soil_albedo")))).sum(axis=0)
            direct_sw, diffuse_sw = scalars["direct_sw"][p], scalars["diffuse_sw"][p]
            energy[0] += direct_sw * F_DIR_BEYOND + diffuse_sw * F_DIF_BEYOND  # beyond 2500 nm, in the top layer
            budget.absorbed[p, :m] = energy[:m] / (direct_sw + diffuse_sw)
            budget.soil[p] = energy[m] / (direct_sw + diffuse_sw)
            budget.albedo[p] = 1 - budget.absorbed[p, :m].sum() - budget.soil[p]
    return budget
