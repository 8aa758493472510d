"""SNOWCRO_TARTES's arguments (docs/crocus_coupling.md) from the labeller's inputs, as Crocus holds
them, and the stream files of fortran/snowcro_driver.f90, which calls the drop-in
`tartes_emulator_snowcro_tartes` on them (tests/test_fortran.py, benchmarks/inference.py).

Crocus's state for a profile: the optical diameter 6 / (917 SSA) in PSNOWGRAN1 (every metamorphism
scheme but B92), impurity loads per area (g m-2) = ratio x 1000 x density x dz, the grain shape
constants, angles in radians, the spectral forcing of JPNBANDS_ATM = 186 bands (the direct and diffuse
fluxes spread over the 111 TARTES bands by Crocus's own weights, zeros beyond), KNLVLS_USE the
number of layers. Layers below the pack hold NaN: the drop-in must not read them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.tartes_constants import BANDS, B0, G0

BANDS_ATM = 186  # JPNBANDS_ATM: the 111 TARTES bands, then zeros
# Crocus's grain shape parameters (XPSNOWG0, XPSNOWY0, XPSNOWW0, XPSNOWB0): tartes' default y0 and W0
CROCUS_SHAPE = {"g0": G0, "y0": 0.728, "w0": 0.0611, "b0": B0}
# the order of the driver's input file after its four int32 (P, NL, NB, NIMPUR)
INPUTS = ("gran1", "gran2", "rho", "dz", "g0", "y0", "w0", "b0", "impur", "palb", "sw_rad", "zenith",
          "angl_illum", "dircoszw", "knlvls_use", "dir_sw", "sca_sw")
OUTPUTS = ("psnowalb", "pradsink", "pradxs", "psnowalb_sp", "pspec_dir", "pspec_dif", "psnowalb_fb")


def snowcro_state(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, *, cos_zenith, soil_albedo,
                  cos_slope=1.0) -> dict:
    """SNOWCRO_TARTES's inputs (by the names of INPUTS) for labeller-style profiles: layer arrays
    (N, L) with NaN below the pack, the others (N,) or numbers."""
    dz = np.asarray(dz, dtype=np.float64)
    n = len(dz)
    present = ~np.isnan(dz)
    density = np.asarray(density, dtype=np.float64)
    load = 1000 * density * dz  # g m-2 per unit ratio

    def column(value):
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()

    def spread(flux, weights):
        shares = np.zeros(BANDS_ATM)
        shares[:len(weights)] = weights / weights.sum()
        return column(flux)[:, None] * shares[None, :]

    return {"gran1": 6 / (917 * np.asarray(ssa, dtype=np.float64)), "gran2": np.full(dz.shape, np.nan),
            "rho": density, "dz": dz,
            **{name: np.where(present, value, np.nan) for name, value in CROCUS_SHAPE.items()},
            "impur": np.stack([np.asarray(soot) * load, np.asarray(dust) * load], axis=2), "palb": column(soil_albedo),
            "sw_rad": column(direct_sw) + column(diffuse_sw), "zenith": np.arccos(column(cos_zenith)),
            "angl_illum": np.arccos(column(cos_illum)), "dircoszw": column(cos_slope),
            "knlvls_use": present.sum(axis=1), "dir_sw": spread(direct_sw, BANDS["ratio_direct"]),
            "sca_sw": spread(diffuse_sw, BANDS["ratio_diffuse"])}


def write_input(path: str | Path, state: dict) -> Path:
    """The driver's input file: int32 P, NL, NB, NIMPUR, then the arrays of INPUTS in Fortran order
    (KNLVLS_USE int32, the others float64)."""
    n, n_layers, n_impurities = np.shape(state["impur"])
    with open(path, "wb") as f:
        np.array([n, n_layers, np.shape(state["dir_sw"])[1], n_impurities], dtype="<i4").tofile(f)
        for name in INPUTS:
            np.asarray(state[name], dtype="<i4" if name == "knlvls_use" else "<f8").ravel(order="F").tofile(f)
    return Path(path)


def read_output(path: str | Path, state: dict) -> dict:
    """The driver's output file for `state`: the arrays of OUTPUTS by name."""
    n, n_layers = np.shape(state["dz"])
    n_bands = np.shape(state["dir_sw"])[1]
    shapes = {"pradsink": (n, n_layers), "psnowalb_sp": (n, n_bands), "pspec_dir": (n, n_bands),
              "pspec_dif": (n, n_bands)}
    values, outputs, start = np.fromfile(path, dtype="<f8"), {}, 0
    for name in OUTPUTS:
        shape = shapes.get(name, (n,))
        size = int(np.prod(shape))
        outputs[name] = values[start:start + size].reshape(shape, order="F")
        start += size
    if start != len(values):
        raise ValueError(f"{path}: {len(values)} values, expected {start} for {n} points")
    return outputs
