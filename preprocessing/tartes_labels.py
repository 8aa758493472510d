"""The TARTES broadband albedo of ../shared/reference/TARTES_LABELS.md, for many profiles at once.

`broadband_albedo` solves the same two-stream equations as the `tartes` package (v2.0.3,
delta-Eddington, `shape_parameterization='linear'`, Warren and Brandt 2008 ice, soot of Chang
1990 and Libyan PM2.5 dust of Caponi et al. 2017) in a compiled kernel, parallel over profiles.
`reference_broadband_albedo` calls the `tartes` package profile by profile: the yardstick.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

N_LAYERS_MAX = 50
LAYER_FIELDS = ("dz", "ssa", "density", "soot", "dust")
# Fields that divide or scale the optical depth: zero is not a snow layer.
STRICTLY_POSITIVE = ("dz", "ssa", "density")


def validate_inputs(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw) -> tuple[dict, dict, np.ndarray]:
    """Check a batch of profiles and return (layers, scalars, n_layers) as float64 arrays.

    Layer arrays are (N, L), 1 <= L <= 50, top layer first, NaN for absent layers, present layers
    contiguous from the top; scalars are (N,). Raises ValueError naming the field and the first
    offending row.
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
        row = int(np.flatnonzero(bad_rows)[0])
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
