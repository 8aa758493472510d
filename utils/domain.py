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


def profile_columns(layers: np.ndarray, mask: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """The per-profile variables of DOMAIN_VARIABLES in a batch: snow depth, cos_illum, direct fraction."""
    cos_illum, direct_sw, diffuse_sw = illumination[:, COS_ILLUM], illumination[:, DIRECT_SW], illumination[:, DIFFUSE_SW]
    return {"snow_depth": np.where(mask, layers[:, DZ], 0.0).sum(axis=1), "cos_illum": cos_illum,
            "direct_fraction": direct_sw / (direct_sw + diffuse_sw)}


def domain_columns(layers: np.ndarray, mask: np.ndarray, illumination: np.ndarray) -> dict[str, np.ndarray]:
    """Per variable of DOMAIN_VARIABLES, its values in a batch (present layers only for layers)."""
    present = layers.transpose(0, 2, 1)[mask]
    return {**{name: present[:, i] for i, name in enumerate(LAYER_VARIABLES)},
            **profile_columns(layers, mask, illumination)}


def input_domain(batches) -> dict[str, list[float]]:
    """[min, max] of each DOMAIN_VARIABLES over batches of (layers, mask, illumination) arrays."""
    domain = {name: [np.inf, -np.inf] for name in DOMAIN_VARIABLES}
    for layers, mask, illumination in batches:
        for name, values in domain_columns(layers, mask, illumination).items():
            if len(values):
                domain[name] = [min(domain[name][0], float(values.min())), max(domain[name][1], float(values.max()))]
    return domain


def outside_domain(domain: dict[str, list[float]], layers: np.ndarray, mask: np.ndarray,
                   illumination: np.ndarray, ranges: dict[str, tuple[float, float]] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """(N,) bool: rows with any input outside `domain`, and the variables concerned. Layers as
    `layer_tensor` makes them: 0 where absent (mask False). `ranges`, the lowest and highest value
    of each layer variable over the batch's present layers when the caller has them (those of
    utils.profiles.validate_inputs), spare the pass that finds them."""
    outside = np.zeros(len(layers), dtype=bool)
    variables = []

    def check(name, values, present=None, batch_range=None):
        """Rows by rows only for a variable whose range over the whole batch leaves the domain: one
        fast pass over contiguous memory in the common case, none when the range is given."""
        low, high = domain[name]
        if batch_range is None:
            # absent layers hold 0, never above a present value (all >= 0): the maximum may include them
            values = np.ascontiguousarray(values)
            batch_range = (values.min(where=True if present is None else present, initial=np.inf),
                           values.max(initial=-np.inf))
        if batch_range[0] >= low and batch_range[1] <= high:
            return
        bad = values > high
        bad |= (values < low) if present is None else (values < low) & present
        bad = bad.any(axis=1) if bad.ndim == 2 else bad
        if bad.any():
            variables.append(name)
            outside[:] |= bad

    mask = np.ascontiguousarray(mask)
    for i, name in enumerate(LAYER_VARIABLES):
        # float32 as the layers: the same comparisons (rounding keeps the order)
        check(name, layers[:, i], mask, None if ranges is None else tuple(np.float32(v) for v in ranges[name]))
    for name, values in profile_columns(layers, mask, illumination).items():
        check(name, values)
    return outside, variables
