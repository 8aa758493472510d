"""The input domain of a model: what its training data spanned, and which rows of a batch lie outside.

Numpy only: the data stage computes the domain of the training shards, `Emulator.predict` checks
a batch against the domain saved with the model.
"""
from __future__ import annotations

import numpy as np

from utils.schema import COS_ILLUM, DIFFUSE_SW, DIRECT_SW, DZ, LAYER_VARIABLES, N_LAYERS


def layer_tensor(dz, ssa, density, soot, dust) -> np.ndarray:
    """Labeller-style layer arrays (N, L <= 50), NaN where absent, as model layers (N, 5, 50) float32."""
    n, n_layers = np.shape(dz)
    layers = np.zeros((n, len(LAYER_VARIABLES), N_LAYERS), dtype=np.float32)
    for i, values in enumerate((dz, ssa, density, soot, dust)):
        layers[:, i, :n_layers] = values  # one pass per variable, cast on the way: no float64 copy
    np.copyto(layers, 0, where=np.isnan(layers))  # 5x faster than np.nan_to_num
    return layers


# [min, max] of each physical input over the training data of a model.
DOMAIN_VARIABLES = (*LAYER_VARIABLES, "snow_depth", "cos_illum", "direct_fraction")


def profile_columns(snow_depth: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """The per-profile variables of DOMAIN_VARIABLES in a batch, from its snow depths (N,) and
    illumination (N, 3): snow depth, cos_illum, direct fraction."""
    cos_illum, direct_sw, diffuse_sw = illumination[:, COS_ILLUM], illumination[:, DIRECT_SW], illumination[:, DIFFUSE_SW]
    return {"snow_depth": snow_depth, "cos_illum": cos_illum, "direct_fraction": direct_sw / (direct_sw + diffuse_sw)}


def snow_depth(layers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) m, of `layer_tensor` layers: summed in float64, exactly for float32 thicknesses whatever
    the order (Emulator sums the variables-first layout)."""
    return np.where(mask, layers[:, DZ], 0.0).sum(axis=1, dtype=np.float64)


def domain_columns(layers: np.ndarray, mask: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """Per variable of DOMAIN_VARIABLES, its values in a batch (present layers only for layers)."""
    present = layers.transpose(0, 2, 1)[mask]
    return {**{name: present[:, i] for i, name in enumerate(LAYER_VARIABLES)},
            **profile_columns(snow_depth(layers, mask), illumination)}


def input_domain(batches) -> dict[str, list[float]]:
    """[min, max] of each DOMAIN_VARIABLES over batches of (layers, mask, illumination) arrays."""
    domain = {name: [np.inf, -np.inf] for name in DOMAIN_VARIABLES}
    for layers, mask, illumination in batches:
        for name, values in domain_columns(layers, mask, illumination).items():
            if len(values):
                domain[name] = [min(domain[name][0], float(values.min())), max(domain[name][1], float(values.max()))]
    return domain


def outside_domain(domain: dict[str, list[float]], layers: np.ndarray, mask: np.ndarray,
                   illumination: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(N,) bool: rows with any input outside `domain`, and the variables concerned. Layers as
    `layer_tensor` makes them: 0 where absent (mask False)."""
    by_variable = layers.transpose(1, 0, 2)  # (5, N, 50)
    low = np.where(mask, by_variable, np.inf).min(axis=2)
    high = np.where(mask, by_variable, -np.inf).max(axis=2)
    return outside_ranges(domain, low, high, profile_columns(snow_depth(layers, mask), illumination))


def outside_ranges(domain: dict[str, list[float]], low: np.ndarray, high: np.ndarray,
                   profile: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """`outside_domain` from each row's lowest and highest value of each layer variable over its
    present layers, low and high (5, N) (inf and -inf for a row without layers), and the
    `profile_columns` of the rows."""
    outside = np.zeros(low.shape[1], dtype=bool)
    variables = []

    def check(name, bad):
        if bad.any():
            variables.append(name)
            outside[:] |= bad

    for name, lowest, highest in zip(LAYER_VARIABLES, low, high):
        bounds = domain[name]
        check(name, (lowest < bounds[0]) | (highest > bounds[1]))
    for name, values in profile.items():
        bounds = domain[name]
        check(name, (values < bounds[0]) | (values > bounds[1]))
    return outside, variables
