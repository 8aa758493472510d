"""The input domain of a model: what its training data spanned, and which rows of a batch lie outside.

Numpy only: the data stage computes the domain of the training shards, `Emulator.predict` checks
a batch against the domain saved with the model.
"""
from __future__ import annotations

import numpy as np

from utils.schema import COS_ILLUM, DIFFUSE_SW, DIRECT_SW, DZ, LAYER_VARIABLES, MODEL_SCALARS, N_LAYERS, SOIL_ALBEDO
from utils.tartes_constants import SOIL_ALBEDO as DEFAULT_SOIL_ALBEDO


def layer_tensor(dz, ssa, density, soot, dust) -> np.ndarray:
    """Labeller-style layer arrays (N, L <= 50), NaN where absent (dz NaN), as model layers
    (N, 5, 50) float32, 0 where absent."""
    dz = np.asarray(dz)
    n, n_layers = dz.shape
    layers = np.zeros((n, len(LAYER_VARIABLES), N_LAYERS), dtype=np.float32)
    present = ~np.isnan(dz)
    for i, values in enumerate((dz, ssa, density, soot, dust)):
        # one pass per variable, cast on the way (no float64 copy), the present layers only: no NaN pass after
        np.copyto(layers[:, i, :n_layers], values, casting="same_kind", where=present)
    return layers


def model_inputs(profiles: dict) -> tuple[np.ndarray, np.ndarray]:
    """Profiles as the labeller takes them ({name: values} of its arguments: layer arrays (N, L <= 50),
    NaN where absent, (N,) scalars, soil_albedo and cos_zenith a number or (N,), or left out) as
    model inputs, float32: layers (N, 5, 50) (`layer_tensor`) and scalars (N, 5) of MODEL_SCALARS,
    with the labeller's defaults where soil_albedo or cos_zenith is not given (0.2; NaN, not known)."""
    layers = layer_tensor(*(profiles[name] for name in LAYER_VARIABLES))
    return layers, scalar_tensor(profiles, len(layers))


def scalar_tensor(profiles: dict, n: int) -> np.ndarray:
    """The model scalars (n, 5) float32 of `model_inputs` (profiles as there; the layers are not read)."""
    given = {"soil_albedo": DEFAULT_SOIL_ALBEDO, "cos_zenith": np.nan} | profiles
    columns = [np.broadcast_to(np.nan if given[name] is None else given[name], n) for name in MODEL_SCALARS]
    return np.stack(columns, axis=1).astype(np.float32)


# [min, max] of each physical input over the training data of a model.
DOMAIN_VARIABLES = (*LAYER_VARIABLES, "snow_depth", "cos_illum", "direct_fraction", "soil_albedo")


def profile_columns(layers: np.ndarray, scalars: np.ndarray, snow_depth: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """The per-profile variables of DOMAIN_VARIABLES in a batch (layers 0 where absent; scalars: the
    models' MODEL_SCALARS or the shards' SCALAR_VARIABLES): snow depth (the float64 sum of the
    layers' dz, or `snow_depth` where the caller has it), cos_illum, direct fraction, soil albedo."""
    cos_illum, direct_sw, diffuse_sw = scalars[:, COS_ILLUM], scalars[:, DIRECT_SW], scalars[:, DIFFUSE_SW]
    if snow_depth is None:
        snow_depth = layers[:, DZ].sum(axis=1, dtype=np.float64)
    return {"snow_depth": snow_depth, "cos_illum": cos_illum,
            "direct_fraction": direct_sw / (direct_sw + diffuse_sw), "soil_albedo": scalars[:, SOIL_ALBEDO]}


def domain_columns(layers: np.ndarray, mask: np.ndarray, scalars: np.ndarray) -> dict[str, np.ndarray]:
    """Per variable of DOMAIN_VARIABLES, its values in a batch (present layers only for layers)."""
    present = layers.transpose(0, 2, 1)[mask]
    return {**{name: present[:, i] for i, name in enumerate(LAYER_VARIABLES)},
            **profile_columns(layers, scalars)}


def input_domain(batches) -> dict[str, list[float]]:
    """[min, max] of each DOMAIN_VARIABLES over batches of (layers, mask, scalars) arrays."""
    domain = {name: [np.inf, -np.inf] for name in DOMAIN_VARIABLES}
    for layers, mask, scalars in batches:
        for name, values in domain_columns(layers, mask, scalars).items():
            if len(values):
                domain[name] = [min(domain[name][0], float(values.min())), max(domain[name][1], float(values.max()))]
    return domain


def outside_domain(domain: dict[str, list[float]], layers: np.ndarray, mask: np.ndarray,
                   scalars: np.ndarray, ranges: dict[str, tuple[float, float]] | None = None,
                   snow_depth: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """(N,) bool: rows with any input outside `domain`, and the variables concerned. Layers as
    `layer_tensor` makes them: 0 where absent (mask False). `ranges`, the lowest and highest value
    of each layer variable over the batch's present layers when the caller has them (those of
    utils.profiles.validate_inputs), spare the pass that finds them, and so does the profiles'
    `snow_depth` (as profile_columns)."""
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
    for name, values in profile_columns(layers, scalars, snow_depth).items():
        check(name, values)
    return outside, variables
