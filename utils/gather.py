"""Labeller-style layer arrays as the emulator's variables-first float32 layout, in one compiled pass.

`Emulator.predict` and `Emulator.energy_budget` spent more time checking and rearranging their
inputs than running the model's first half (measured at batch 4096: about 2 ms for the checks,
the (N, 5, 50) layer tensor, the domain check's transposition and the model's own, against 8 ms
for the whole model). `gather_layers` does all of it in one pass over the arrays, in blocks of
rows: checks every value as utils.profiles.check_layer_values does (which is called to name the
problem when there is one), writes the (5, 50, N) layout of features.variables_first, and gives
each row's range of each variable for the domain check (utils.domain.outside_ranges).
"""
from __future__ import annotations

import numba
import numpy as np

from utils.schema import LAYER_VARIABLES, N_LAYERS
from utils.tartes_constants import ICE_DENSITY_MAX

BLOCK = 16  # rows at a time: their layers stay in cache while the layout is written column by column


@numba.njit(cache=True)
def _gather(dz, ssa, density, soot, dust, out, low, high, n_layers):
    """out (5, 50, N) and the ranges low, high (5, N) of the present layers of each row; n_layers (N,).
    False when a value is invalid (out is then incomplete)."""
    n, width = dz.shape
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        for i in range(start, stop):
            n_layers[i] = 0
            for v in range(5):
                low[v, i] = np.inf
                high[v, i] = -np.inf
        for layer in range(width):
            for i in range(start, stop):
                z = dz[i, layer]
                if z != z:  # NaN: absent (its density is checked all the same, as check_layer_values does)
                    if density[i, layer] > ICE_DENSITY_MAX:
                        return False
                    continue
                if n_layers[i] != layer:  # a present layer under an absent one
                    return False
                n_layers[i] = layer + 1
                s, d, c, u = ssa[i, layer], density[i, layer], soot[i, layer], dust[i, layer]
                # comparisons that NaN fails: strictly positive dz, ssa, density; soot and dust >= 0
                if not (0 < z < np.inf and 0 < s < np.inf and 0 < d <= ICE_DENSITY_MAX
                        and 0 <= c < np.inf and 0 <= u < np.inf):
                    return False
                for v, x in enumerate((z, s, d, c, u)):
                    value = np.float32(x)
                    out[v, layer, i] = value
                    low[v, i] = min(low[v, i], value)
                    high[v, i] = max(high[v, i], value)
    return True


def gather_layers(layers: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """From the float64 (N, L) layer arrays of utils.profiles.as_profile_arrays: the (5, 50, N)
    float32 layout (0 where absent), each row's lowest and highest value of each variable over its
    present layers (5, N) (inf and -inf for snow-free rows), and n_layers (N,); None when a value
    is invalid (utils.profiles.check_layer_values then says which)."""
    arrays = [np.ascontiguousarray(layers[name]) for name in LAYER_VARIABLES]
    n = len(arrays[0])
    out = np.zeros((len(LAYER_VARIABLES), N_LAYERS, n), dtype=np.float32)
    low = np.empty((len(LAYER_VARIABLES), n), dtype=np.float32)
    high = np.empty_like(low)
    n_layers = np.empty(n, dtype=np.int64)
    if not _gather(*arrays, out, low, high, n_layers):
        return None
    return out, low, high, n_layers
