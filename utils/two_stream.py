"""The two-stream physics of the emulator's features (features.TwoStreamOptics), compiled for the CPU.

On a CPU, the torch form of this physics is some 600 small tensor operations per batch, each a
pass over memory; here the layers and wavelengths of a block of profiles are computed together,
in float32 as the torch form, in loops over the profiles that the compiler vectorises, parallel
over blocks. `Emulator` takes this path on a CPU; training, GPUs and the exported files take the
torch form, which defines the physics: both give the same numbers to float32 rounding
(tests/test_two_stream.py). Numpy and numba only.

Inputs: the model's layers (N, 5, 50) float32 (dz, ssa, density, soot, dust; 0 where absent), its
scalars (N, 5) (utils.schema.MODEL_SCALARS: cos_illum, direct_sw, diffuse_sw, soil_albedo,
cos_zenith), and the optics' constants per wavelength (`CONSTANTS`, TwoStreamOptics' buffers), in
order, each group of wavelengths computed on its top n layers (`TwoStreamOptics.groups`) over
semi-infinite snow of its last layer's kind where the pack goes on, else over the soil of the
profile's soil albedo. Crocus's rules are applied first, as `features.crocus_rules` does.

Cost follows the pack: a block computes only down to the deepest present layer of its profiles (and
the layers the features describe) and, with SURFEX's truncation, at each wavelength only down to the
first layer it drops in all of them (in the near infrared, the top few). An absent layer above the
deepest is an exact identity and a dropped layer gives the same 0 computed or not, so that a
profile's result does not depend on the other profiles of its block: callers that give packs of
similar depth together (Emulator sorts its rows by their number of layers) pay for the layers
present. The per-layer steps are inlined: called over the 128 profiles of a layer, their calls
cost a fifth of the physics.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from utils.schema import (COS_ILLUM, COS_ZENITH, DENSITY, DIFFUSE_SW, DIRECT_SW, DUST, DZ, N_LAYERS, SOIL_ALBEDO, SOOT,
                          SSA)
from utils.tartes_constants import (COS_ILLUM_MIN, DIFFUSE_COS, DUMONT_DIFFUSE, ICE_DENSITY, ICE_SOOT, ICE_SSA,
                                    SSA_ANOMALY, SSA_REPLACEMENT, TAU_TRUNCATION)

# TwoStreamOptics' buffers, one row each of the (7, W) constants array
CONSTANTS = ("minus_y_c", "half_phi_c", "ginf", "g_span", "clean", "soot", "dust")
BLOCK = 128  # profiles computed together: their layer loops run over contiguous rows of this length
# No fast-math: exact IEEE arithmetic, the same in vectorised loops and their scalar remainders (with fused
# multiply-adds, a profile's result would depend on its place in a batch), which the exponential's rounding needs.
# error_model numpy: no Python division-by-zero checks, which keep loops from being vectorised.
JIT = dict(cache=True, error_model="numpy")

# float32 throughout, as the torch form: every constant typed (a Python float would make float64)
F = np.float32
ZERO, HALF, ONE, TWO = F(0), F(0.5), F(1), F(2)
THIRD, TWO_THIRDS, FOUR_THIRDS, THREE_HALVES = F(1 / 3), F(2 / 3), F(4 / 3), F(1.5)
ICE_DENSITY32, ICE_SSA32, ICE_SOOT32 = F(ICE_DENSITY), F(ICE_SSA), F(ICE_SOOT)
SSA_ANOMALY32, SSA_REPLACEMENT32 = F(SSA_ANOMALY), F(SSA_REPLACEMENT)
COS_ILLUM_MIN32, DIFFUSE_COS32 = F(COS_ILLUM_MIN), F(DIFFUSE_COS)
DUMONT3, DUMONT2, DUMONT1, DUMONT0 = (F(c) for c in DUMONT_DIFFUSE)
# exp: 2^n p(x - n ln 2), n rounded by adding and taking away 1.5 2^23 (it is then held in the low
# bits), ln 2 in two parts (Cody and Waite), p the Taylor series to degree 7
ROUNDING_SHIFTER, LOG2_E = F(1.5 * 2 ** 23), F(1.4426950408889634)
LN2_HIGH, LN2_LOW = F(0.693359375), F(-2.12194440e-4)
SERIES3, SERIES4, SERIES5 = F(1 / 6), F(1 / 24), F(1 / 120)
TWO_WAY_TRUNCATION = F(2 * TAU_TRUNCATION)  # -2 ke tau* summed from the top beyond which SURFEX drops a layer
EXP_LOWEST = F(-87.0)  # exp(-87) = 1.6e-38, near float32's smallest normal number
TAYLOR = tuple(F(1 / math.factorial(k)) for k in range(8))


@intrinsic
def _bits_of(typingctx, x):
    """The bits of a float32, as an int64 (a free reinterpretation, which the vectoriser keeps)."""
    def codegen(context, builder, signature, args):
        return builder.sext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))
    return types.int64(types.float32), codegen


@intrinsic
def _float_of(typingctx, x):
    """The float32 whose bits are the low 32 bits of the int64 x."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
    return types.float32(types.int64), codegen


@numba.njit(inline="always", **JIT)
def exp_nonpositive(x):
    """exp(x) of a float32 x <= 0, to float32 rounding (x below -87 gives exp(-87), not 0), in
    arithmetic that loops over profiles vectorise: math.exp is a library call they cannot, and
    took most of the time of the optics."""
    x = max(x, EXP_LOWEST)
    shifted = x * LOG2_E + ROUNDING_SHIFTER
    n = shifted - ROUNDING_SHIFTER
    r = x - n * LN2_HIGH - n * LN2_LOW
    c = TAYLOR
    p = c[0] + r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * (c[5] + r * (c[6] + r * c[7]))))))
    return p * _float_of((_bits_of(shifted) + 127) << 23)


@numba.njit(**JIT)
def _layer_terms(local, rows, terms):
    """What the optics of a layer take at every wavelength, computed once for all of them (rows
    layers of `local`, as _rules lays them out): 1 / ssa (1 where absent), -3/2 density ssa dz
    (the optical depth's factor), and soot and dust over ssa, in `terms` (4, rows)."""
    for i in range(rows):
        dz = local[DZ, i]
        inverse_ssa = ONE / (local[SSA, i] + (ONE if dz <= ZERO else ZERO))
        terms[0, i] = inverse_ssa
        terms[1, i] = -THREE_HALVES * local[DENSITY, i] * local[SSA, i] * dz
        terms[2, i] = local[SOOT, i] * inverse_ssa
        terms[3, i] = local[DUST, i] * inverse_ssa


@numba.njit(inline="always", **JIT)
def _layer_optics(inverse_ssa_row, optical_row, soot_row, dust_row, c, weak, series_below, rho, f2, two_way):
    """rho = 1 - r, f2 and -2 ke tau* of layers (1D rows of any length, their _layer_terms) at the
    wavelength of the constants c (7,), as features.TwoStreamOptics.layer_optics computes them."""
    for i in range(inverse_ssa_row.shape[0]):
        inverse_ssa = inverse_ssa_row[i]
        minus_optical_depth = optical_row[i]
        g = c[2] - c[3] * exp_nonpositive(c[0] * inverse_ssa)
        h = inverse_ssa * c[1]
        # (1 - exp(-2 h)) / 2, by its series where it is exact to float32 (as the torch form, which
        # takes tanh elsewhere: a library call, which would keep the loop from being vectorised)
        series = (((h * -THIRD + TWO_THIRDS) * h - ONE) * h + ONE) * h
        clean = series if weak or h < series_below else HALF * (ONE - exp_nonpositive(-TWO * h))
        coalbedo = soot_row[i] * c[5] + dust_row[i] * c[6] + clean * c[4]
        scaling = (coalbedo - ONE) * g * g + ONE
        coalbedo_star = coalbedo / scaling
        half_sum = g / (g + ONE) * (coalbedo_star - ONE) + ONE
        s = np.sqrt(coalbedo_star / half_sum * FOUR_THIRDS)
        two_way[i] = half_sum * s * scaling * minus_optical_depth
        f2[i] = exp_nonpositive(two_way[i])
        rho[i] = TWO * s / (s + ONE)


@numba.njit(inline="always", **JIT)
def _up(dz, rho, f2, two_way, opacity_series, cut, below, P, denominator):
    """One layer of TwoStreamOptics.diffuse_coalbedo's upward sweep, over a row of profiles; an
    absent layer (dz <= 0) leaves P as it is below it (the torch form: to rounding), a layer that
    SURFEX's truncation drops (cut) gives 0. The opacity 1 - f2 as TwoStreamOptics.opacity, by its
    series above opacity_series."""
    for b in range(rho.shape[0]):
        p, t, x = rho[b], f2[b], two_way[b]
        series = -x * (((((x * SERIES5 + SERIES4) * x + SERIES3) * x + HALF) * x) + ONE)
        opacity = series if x > opacity_series else ONE - t
        r = ONE - p
        d = opacity * r * below[b] + (t * r + ONE) * p
        denominator[b] = d
        P[b] = ZERO if cut[b] else (((r + t) * p * below[b] + p * p * opacity) / d if dz[b] > ZERO else below[b])


@numba.njit(inline="always", **JIT)
def _down(dz, rho, f2, denominator, P_below, down, net, absorbed):
    """One layer of the downward sweep (TwoStreamOptics.transmission, diffuse_absorbed): the
    downward flux through it, the net flux under it, and what it absorbs, over a row of profiles;
    an absent layer transmits everything and absorbs nothing (the torch form: to rounding)."""
    for b in range(rho.shape[0]):
        down[b] *= np.sqrt(f2[b]) * rho[b] * (TWO - rho[b]) / denominator[b] if dz[b] > ZERO else ONE
        under = P_below[b] * down[b]
        absorbed[b] = max(net[b] - under, ZERO)
        net[b] = under


@numba.njit(**JIT)
def _extent(layers, start, size, present, depth):
    """The layers present (50, N) and the snow depth (N,) of a block of profiles from row start,
    and the number of layers down to the deepest present one among them."""
    deepest = 0
    for b in range(size):
        total = ZERO
        for k in range(N_LAYERS):
            dz = layers[start + b, DZ, k]
            present[k, start + b] = dz > ZERO
            total += dz
            if dz > ZERO:
                deepest = max(deepest, k + 1)
        depth[start + b] = total
    return deepest


@numba.njit(**JIT)
def _rules(layers, scalars, start, local, cos_illum, fraction, soil_coalbedo):
    """Crocus's rules (features.crocus_rules) on a block of profiles from row start: their top
    layers laid out variable first, then layer k of profile b at k * size + b in `local` (5,
    layers size), so that each variable of the top k layers is one contiguous row; and per profile
    the light (Dumont's split where the forcing has no diffuse light and cos_zenith is finite) as
    the illumination cosine and direct fraction, and the soil's co-albedo 1 - soil_albedo."""
    size = cos_illum.shape[0]
    n_layers = local.shape[1] // size
    for v in range(local.shape[0]):  # the transposition: strided reads, contiguous writes (the faster way round)
        for k in range(n_layers):
            for b in range(size):
                local[v, k * size + b] = layers[start + b, v, k]
    for i in range(n_layers * size):
        ice = local[DENSITY, i] >= ICE_DENSITY32 and local[DZ, i] > ZERO
        ssa = local[SSA, i]
        local[SSA, i] = ICE_SSA32 if ice else (SSA_REPLACEMENT32 if ssa > SSA_ANOMALY32 else ssa)
        local[SOOT, i] = ICE_SOOT32 if ice else local[SOOT, i]
        local[DUST, i] = ZERO if ice else local[DUST, i]
    for b in range(size):
        mu, direct = scalars[start + b, COS_ILLUM], scalars[start + b, DIRECT_SW]
        diffuse, c = scalars[start + b, DIFFUSE_SW], scalars[start + b, COS_ZENITH]
        behind = mu < COS_ILLUM_MIN32
        if not behind and diffuse == ZERO and math.isfinite(c):
            shortwave = direct + diffuse
            diffuse = exp_nonpositive(min(((DUMONT3 * c + DUMONT2) * c + DUMONT1) * c + DUMONT0, ZERO)) * shortwave
            direct = shortwave - diffuse
        cos_illum[b] = DIFFUSE_COS32 if behind else mu
        fraction[b] = ZERO if behind else direct / (direct + diffuse)
        soil_coalbedo[b] = ONE - scalars[start + b, SOIL_ALBEDO]


@numba.njit(parallel=True, **JIT)
def _physics(layers, scalars, constants, first, last, n_layers, weak, series_below, opacity_series, n_described,
             n_depths, truncation, budget,
             coalbedo, top, rho_described, f2_described, optical_depth, absorbed, present, depth, cos_illum,
             fraction):
    n = layers.shape[0]
    for block in numba.prange((n + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        size = min(BLOCK, n - start)
        # the layers computed: down to the deepest present one, and the described ones (absent or not)
        described = max(n_described, n_depths, 1)
        computed = max(_extent(layers, start, size, present, depth), described)
        local = np.empty((layers.shape[1], computed * size), np.float32)
        soil_coalbedo = np.empty(size, np.float32)
        _rules(layers, scalars, start, local, cos_illum[start:start + size], fraction[start:start + size],
               soil_coalbedo)
        terms = np.empty((4, computed * size), np.float32)
        _layer_terms(local, computed * size, terms)
        rho = np.empty((computed, size), np.float32)
        f2 = np.empty((computed, size), np.float32)
        two_way = np.empty((computed, size), np.float32)
        cut = np.zeros((computed, size), np.bool_)
        cumulative = np.empty(size, np.float32)
        P = np.empty((computed + 1, size), np.float32)
        denominator = np.empty((computed, size), np.float32)
        shares = np.empty((computed, size), np.float32)
        down = np.empty(size, np.float32)
        net = np.empty(size, np.float32)
        for g in range(len(first)):
            m = min(n_layers[g], computed)  # below `computed`, no profile of the block has a layer
            for w in range(first[g], last[g]):
                c = constants[:, w].copy()
                # layer by layer from the top; with truncation, down to the first layer that SURFEX drops in
                # every profile of the block (TwoStreamOptics.truncated: from the second layer on, where the
                # cumulative ke tau* passes 30), or to the described ones: what lies below changes nothing
                reach = m
                for k in range(m):
                    layer = terms[:, k * size:(k + 1) * size]
                    _layer_optics(layer[0], layer[1], layer[2], layer[3], c, weak[g], series_below, rho[k], f2[k],
                                  two_way[k])
                    # the optical depth 2 ke tau* from the surface through the layer (TwoStreamOptics.optical_depth)
                    dropped = 0
                    for b in range(size):
                        cumulative[b] = (cumulative[b] if k > 0 else ZERO) - two_way[k, b]
                        cut[k, b] = truncation and k > 0 and cumulative[b] > TWO_WAY_TRUNCATION
                        dropped += cut[k, b]
                    if k < n_depths:
                        optical_depth[w, k, start:start + size] = cumulative
                    if dropped == size and k >= described:
                        reach = k
                        break
                # under the layers computed: SURFEX's white floor where the deepest of them is dropped, else
                # semi-infinite snow of the last layer's kind where the pack goes on, else the soil
                for b in range(size):
                    goes_on = m < N_LAYERS and layers[start + b, DZ, m] > ZERO
                    P[reach, b] = ZERO if reach < m or cut[m - 1, b] else (
                        rho[m - 1, b] if goes_on else soil_coalbedo[b])
                for k in range(reach - 1, -1, -1):
                    _up(local[DZ, k * size:(k + 1) * size], rho[k], f2[k], two_way[k], opacity_series, cut[k],
                        P[k + 1], P[k], denominator[k])
                down[:] = ONE
                net[:] = P[0]
                for k in range(reach if budget else 1):
                    _down(local[DZ, k * size:(k + 1) * size], rho[k], f2[k], denominator[k], P[k + 1], down, net,
                          shares[k])
                coalbedo[w, start:start + size] = P[0]
                top[w, start:start + size] = shares[0]
                rho_described[w, :, start:start + size] = rho[:n_described]
                f2_described[w, :, start:start + size] = f2[:n_described]
                if budget:
                    absorbed[w, :reach, start:start + size] = shares[:reach]
                    absorbed[w, reach:n_layers[g], start:start + size] = ZERO
                    for b in range(size):
                        absorbed[w, n_layers[g], start + b] = max(net[b], ZERO)


@numba.njit(parallel=True, **JIT)
def _cleanup_candidates(layers, soot_weight, dust_weight, threshold, out):
    for p in numba.prange(layers.shape[0]):
        candidate = False
        for k in range(N_LAYERS):
            # Crocus's SSA rule can only lower a value to 70: min(ssa, 70) keeps the bound
            impurity = layers[p, SOOT, k] * soot_weight + layers[p, DUST, k] * dust_weight
            candidate |= layers[p, DZ, k] > ZERO and impurity >= threshold * min(layers[p, SSA, k], SSA_REPLACEMENT32)
        out[p] = candidate


def cleanup_candidates(layers: np.ndarray, soot_weight: float, dust_weight: float, threshold: float) -> np.ndarray:
    """(N,) bool: the rows of model layers (N, 5, 50) float32 with a present layer where soot
    soot_weight + dust dust_weight >= threshold min(ssa, 70), in one pass over them: the bound of
    utils.crocus_rules.cleanup_rows (Emulator computes that on these rows only)."""
    out = np.empty(len(layers), np.bool_)
    _cleanup_candidates(np.ascontiguousarray(layers, np.float32), F(soot_weight), F(dust_weight), F(threshold), out)
    return out


def physics(layers: np.ndarray, scalars: np.ndarray, constants: np.ndarray, groups: list[tuple[slice, int]],
            weak: list[bool], series_below: float, opacity_series: float, n_described: int, n_depths: int,
            budget: bool, threads: int = 0, truncation: bool = False) -> dict[str, np.ndarray]:
    """The physics of TwoStreamOptics.group_budget for every group, batch last, float32 (the clean
    co-albedo by its series at the `weak` wavelengths and where phi c / 2 < series_below, 1 - f2 by its
    series where -2 ke tau* > opacity_series): the co-albedo of the pack "coalbedo" (W, N), what its
    top layer absorbs "top" (W, N), rho and f2 of the top n_described layers (W, n_described, N),
    the optical depth 2 ke tau* from the surface through each of the top n_depths layers
    "optical_depth" (W, n_depths, N) and, with budget, what each of a group's n layers and, at
    index n, what lies below them absorb "absorbed" (W, 51, N) (rows beyond n + 1 unset); with
    truncation, SURFEX's truncation as TwoStreamOptics.truncated; with them, after Crocus's rules,
    "present" (50, N) bool, the snow "depth" (N,), "cos_illum", the direct "fraction" and the
    "soil_albedo" (N,). On `threads` threads (0: numba's default, the machine's cores)."""
    n, n_wavelengths = len(layers), constants.shape[1]
    out = {"coalbedo": np.empty((n_wavelengths, n), np.float32), "top": np.empty((n_wavelengths, n), np.float32),
           "rho_described": np.empty((n_wavelengths, n_described, n), np.float32),
           "f2_described": np.empty((n_wavelengths, n_described, n), np.float32),
           "optical_depth": np.empty((n_wavelengths, n_depths, n), np.float32),
           "absorbed": np.empty((n_wavelengths if budget else 0, N_LAYERS + 1, n), np.float32),
           "present": np.empty((N_LAYERS, n), np.bool_), "depth": np.empty(n, np.float32),
           "cos_illum": np.empty(n, np.float32), "fraction": np.empty(n, np.float32),
           "soil_albedo": np.array(scalars[:, SOIL_ALBEDO], np.float32)}
    first = np.array([w.start for w, _ in groups], np.int64)
    last = np.array([w.stop for w, _ in groups], np.int64)
    n_layers = np.array([k for _, k in groups], np.int64)
    group_weak = np.array([all(weak[w]) for w, _ in groups], np.bool_)
    before = numba.get_num_threads()
    if threads:  # for this call only: numba's setting is the labeller's too
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _physics(np.ascontiguousarray(layers, np.float32), np.ascontiguousarray(scalars, np.float32),
                 np.ascontiguousarray(constants, np.float32), first, last, n_layers, group_weak, F(series_below),
                 F(opacity_series), n_described, n_depths, truncation, budget, out["coalbedo"], out["top"],
                 out["rho_described"], out["f2_described"], out["optical_depth"], out["absorbed"], out["present"],
                 out["depth"], out["cos_illum"], out["fraction"])
    finally:
        numba.set_num_threads(before)
    return out
