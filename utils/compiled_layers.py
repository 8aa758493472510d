"""The layer checks of utils.profiles.validate_inputs and the model layers of utils.domain.layer_tensor
in one compiled pass over the labeller-style layer arrays, for `Emulator` on a CPU.

validate_inputs defines the rules and their errors; this is only a faster way to find that a batch
follows them. `checked_layers` reads the five float64 layer arrays (N, L <= 50) once and gives what
validate_inputs and layer_tensor would: the model layers (N, 5, 50) float32 (0 where absent), the
number of layers of each profile, the (lowest, highest) value of each layer variable over the
present layers, and the snow depth of each profile (the domain check's, a pass over the layers
less). It names no fault itself: at the first doubt it declines (None) and the caller
runs validate_inputs, which raises the error it names, or accepts what it alone accepts. Doubts: a
shape other than (N, 1..50) shared by the five arrays; present layers (dz not NaN) not contiguous
from the top; in a present layer a NaN, an infinite or negative value, zero in dz, ssa or density,
-0.0 in soot or dust (valid, rare), a value beyond float32's range (valid, numpy warns as it
casts); a density above 917 kg m-3 in any column; a profile without snow, unless snow_free.
Numpy and numba only.
"""
from __future__ import annotations

import numba
import numpy as np

from utils.schema import LAYER_VARIABLES, N_LAYERS
from utils.tartes_constants import ICE_DENSITY_MAX

BLOCK = 256  # rows per parallel task
JIT = dict(cache=True, error_model="numpy")
# The ranges are found on the values' bits as int64, whose order is that of the values for the
# values let through (>= 0, sign bit clear): integer minima and maxima are vectorised, those of
# floats are not without fast-math, which would also drop the NaN checks.
INF_BITS, MINUS_INF_BITS = (int(np.array(v).view(np.int64)) for v in (np.inf, -np.inf))


@numba.njit(inline="always", **JIT)
def _variable(a, bits, p, m, strict, out, i, bounds, b):
    """Layer variable a (and its bits) of row p, its m present layers (the first m), as float32
    into out[p, i] (0 below them); its lowest and highest present values' bits into bounds[b, i].
    True at a fault."""
    low, high = bounds[b, i, 0], bounds[b, i, 1]
    faults = 0
    for k in range(m):
        v, v_bits = a[p, k], bits[p, k]
        f = np.float32(v)
        # the float32 value finite: no NaN, no infinity, no overflow (which numpy warns about and
        # is left to it); -0.0 (sign bit set) is left to numpy too
        faults += not (((v > 0.0) if strict else (v_bits >= 0)) & (abs(f) < np.float32(np.inf)))
        low = v_bits if v_bits < low else low
        high = v_bits if v_bits > high else high
        out[p, i, k] = f
    for k in range(m, N_LAYERS):
        out[p, i, k] = np.float32(0.0)
    bounds[b, i, 0], bounds[b, i, 1] = low, high
    return faults > 0


@numba.njit(parallel=True, **JIT)
def _pack(dz, ssa, density, soot, dust, dz_bits, ssa_bits, density_bits, soot_bits, dust_bits, out, n_layers,
          snow_depth, bounds, faults):
    """out (N, 5, 50), n_layers (N,), snow_depth (N,) (the float64 sum of the float32 dz of out) and,
    per block of BLOCK rows b, the bits of each variable's lowest and highest present value
    bounds[b] (5, 2) and whether it holds a fault, faults[b]."""
    n, width = dz.shape
    for b in numba.prange(bounds.shape[0]):
        bounds[b, :, 0] = INF_BITS
        bounds[b, :, 1] = MINUS_INF_BITS
        fault = False
        for p in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            m = 0
            while m < width and not np.isnan(dz[p, m]):
                m += 1
            n_layers[p] = m
            depth = 0.0
            for k in range(m):
                depth += np.float64(np.float32(dz[p, k]))
            snow_depth[p] = depth
            for k in range(m, width):  # below the pack: no layer, and no density above ice's (NaN passes)
                fault |= (not np.isnan(dz[p, k])) | (density[p, k] > ICE_DENSITY_MAX)
            for k in range(m):
                fault |= density[p, k] > ICE_DENSITY_MAX
            fault |= _variable(dz, dz_bits, p, m, True, out, 0, bounds, b)
            fault |= _variable(ssa, ssa_bits, p, m, True, out, 1, bounds, b)
            fault |= _variable(density, density_bits, p, m, True, out, 2, bounds, b)
            fault |= _variable(soot, soot_bits, p, m, False, out, 3, bounds, b)
            fault |= _variable(dust, dust_bits, p, m, False, out, 4, bounds, b)
        faults[b] = fault


def checked_layers(dz, ssa, density, soot, dust, snow_free: bool = False, threads: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[float, float]], np.ndarray] | None:
    """(model layers (N, 5, 50) float32, n_layers (N,) int64, {name: (low, high)}, snow depth (N,)
    float64) of float64 layer arrays (N, L), as layer_tensor, validate_inputs and
    utils.domain.profile_columns give them (the depth to float64 rounding; with snow_free, rows without
    snow are accepted, as there), or None where validate_inputs must judge (module docstring). On
    `threads` threads (0: numba's default)."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (dz, ssa, density, soot, dust)]
    shape = arrays[0].shape
    if len(shape) != 2 or not 1 <= shape[1] <= N_LAYERS or any(a.shape != shape for a in arrays):
        return None
    n = shape[0]
    out = np.empty((n, len(LAYER_VARIABLES), N_LAYERS), dtype=np.float32)
    n_layers = np.empty(n, dtype=np.int64)
    snow_depth = np.empty(n, dtype=np.float64)
    n_blocks = -(-n // BLOCK)
    bounds = np.empty((max(n_blocks, 1), len(LAYER_VARIABLES), 2), dtype=np.int64)
    faults = np.zeros(max(n_blocks, 1), dtype=np.bool_)
    before = numba.get_num_threads()
    if threads:  # for this call only, as utils.two_stream.physics
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _pack(*arrays, *(a.view(np.int64) for a in arrays), out, n_layers, snow_depth, bounds, faults)
    finally:
        numba.set_num_threads(before)
    if faults.any() or not (snow_free or n_layers.all()):
        return None
    low, high = bounds[:, :, 0].min(axis=0).view(np.float64), bounds[:, :, 1].max(axis=0).view(np.float64)
    ranges = {name: (float(low[i]), float(high[i])) for i, name in enumerate(LAYER_VARIABLES)}
    return out, n_layers, ranges, snow_depth
