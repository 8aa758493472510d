"""Snow profiles as the labeller and the emulator take them, checked in one place, and the energy
budget they return.

Layer arrays are (N, L), top layer first, NaN for absent layers, present layers contiguous from
the top; scalars are (N,): cos_illum (-), direct_sw and diffuse_sw (W m-2), and, as a number or an
(N,) array, soil_albedo (-) and cos_zenith (-, NaN or None where not given). Numpy only: the
emulator checks its inputs without loading the labeller's compiled solver.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.schema import LAYER_VARIABLES, N_LAYERS
from utils.tartes_constants import ICE_DENSITY_MAX, SOIL_ALBEDO

SCALAR_FIELDS = ("cos_illum", "direct_sw", "diffuse_sw")
# Fields that divide or scale the optical depth: zero is not a snow layer.
STRICTLY_POSITIVE = ("dz", "ssa", "density")


@dataclass
class EnergyBudget:
    """What Crocus takes from TARTES for N profiles, as fractions of the incident shortwave:
    albedo (N,), absorbed (N, L) in each layer (NaN for absent layers) and soil (N,), with
    albedo + absorbed.sum(axis=1) + soil = 1 (NaN everywhere in a row without snow)."""

    albedo: np.ndarray
    absorbed: np.ndarray
    soil: np.ndarray

    def __len__(self) -> int:
        return len(self.albedo)


def validate_inputs(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, first_row: int = 0,
                    snow_free: bool = False, *, soil_albedo=SOIL_ALBEDO, cos_zenith=None,
                    allow_dark: bool = False) -> tuple[dict, dict, np.ndarray, dict]:
    """Check a batch of profiles and return (layers, scalars, n_layers) as float64 arrays, and the
    lowest and highest value of each layer variable over the present layers {name: (low, high)}.
    The scalars hold (N,) arrays of SCALAR_FIELDS and of soil_albedo and cos_zenith (each given as a
    number or an (N,) array; cos_zenith NaN where it is not known, None giving NaN in every row).

    Layer arrays may be wider than 50 columns if the extra columns are all NaN (they are dropped).
    Raises ValueError naming the field, the first offending row (counted from first_row, for
    callers that validate a chunk of a larger batch) and, for layer values, the layer (from 1).
    With snow_free, rows without any layer are accepted (n_layers 0; their scalars are not checked).
    Rows without light (direct_sw + diffuse_sw = 0) are an error unless allow_dark, for callers that
    give them the dark-row values of docs/labels.md (utils.crocus_rules.dark_rows).
    """
    layers = {name: np.asarray(a, dtype=np.float64) for name, a in zip(LAYER_VARIABLES, (dz, ssa, density, soot, dust))}
    scalars, per_row = _scalar_arrays(cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith)
    shape = layers["dz"].shape
    if len(shape) == 2 and shape[1] > N_LAYERS and np.isnan(layers["dz"][:, N_LAYERS:]).all():
        layers = {name: a[:, :N_LAYERS] if a.ndim == 2 else a for name, a in layers.items()}
        shape = layers["dz"].shape
    if len(shape) != 2 or not 1 <= shape[1] <= N_LAYERS:
        raise ValueError(f"dz: expected an (N, L) array with 1 <= L <= {N_LAYERS} (wider only with NaN beyond "
                         f"layer {N_LAYERS}), got shape {shape}")
    for name, a in layers.items():
        if a.shape != shape:
            raise ValueError(f"{name}: shape {a.shape} differs from dz's {shape}")
    _check_scalar_shapes(scalars, per_row, shape[0])

    present = ~np.isnan(layers["dz"])
    n_layers = np.count_nonzero(present, axis=1)

    def fail(name, bad, problem):
        _fail(name, bad, problem, first_row)

    if not snow_free and not n_layers.all():
        fail("dz", n_layers == 0, "no snow layer (every dz is NaN): a snow-free profile has no energy budget")
    # Contiguous from the top: exactly the first n_layers columns are present.
    contiguous = np.arange(shape[1])[None, :] < n_layers[:, None]
    if not np.array_equal(present, contiguous):
        fail("dz", contiguous & ~present, "absent (NaN) above a present layer")
    ranges = {}
    for name, a in layers.items():
        # two reductions over the present layers for the common case (a NaN among them makes the
        # lowest NaN, which fails); the problem is found and named only when there is one. Gathered
        # first: reductions with `where` took twice as long, a third of Emulator.predict on real packs
        values = a[present]
        lowest, highest = values.min(initial=np.inf), values.max(initial=-np.inf)
        ranges[name] = (float(lowest), float(highest))
        if not ((lowest > 0 if name in STRICTLY_POSITIVE else lowest >= 0) and highest < np.inf):
            inside = np.where(present, a, 1.0)
            for bad, problem in ((np.isnan(inside), "NaN inside a present layer"),
                                 (np.isinf(inside), "infinite value inside a present layer"),
                                 (inside < 0, "negative value inside a present layer"),
                                 (inside == 0, "zero inside a present layer (must be > 0)")):
                if bad.any():
                    fail(name, bad, problem)
    if np.fmax.reduce(layers["density"], axis=None, initial=-np.inf) > ICE_DENSITY_MAX:  # fmax: NaN (absent) left out
        fail("density", layers["density"] > ICE_DENSITY_MAX, f"above {ICE_DENSITY_MAX:g} kg m-3, denser than ice")

    return layers, _checked_scalars(scalars, per_row, n_layers, first_row, allow_dark), n_layers, ranges


def validate_scalars(cos_illum, direct_sw, diffuse_sw, n_layers: np.ndarray, first_row: int = 0, *,
                     soil_albedo=SOIL_ALBEDO, cos_zenith=None, allow_dark: bool = False) -> dict:
    """validate_inputs' checks of the scalars of N profiles whose layers passed its checks, n_layers
    (N,) their numbers of layers (rows without any are not checked): the scalars as it returns
    them, or its ValueError (that of validate_inputs on these profiles). For callers that check
    the layers by other means (utils.compiled_layers)."""
    scalars, per_row = _scalar_arrays(cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith)
    _check_scalar_shapes(scalars, per_row, len(n_layers))
    return _checked_scalars(scalars, per_row, n_layers, first_row, allow_dark)


def _scalar_arrays(cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith) -> tuple[dict, dict]:
    """SCALAR_FIELDS, and soil_albedo and cos_zenith (None: NaN), as float64 arrays."""
    scalars = {name: np.asarray(a, dtype=np.float64) for name, a in zip(SCALAR_FIELDS, (cos_illum, direct_sw, diffuse_sw))}
    per_row = {name: np.asarray(np.nan if a is None else a, dtype=np.float64)
               for name, a in (("soil_albedo", soil_albedo), ("cos_zenith", cos_zenith))}
    return scalars, per_row


def _check_scalar_shapes(scalars: dict, per_row: dict, n: int) -> None:
    """The ValueError of the first scalar whose shape does not fit N = n profiles, if any."""
    for name, a in scalars.items():
        if a.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},) to match dz, got {a.shape}")
    for name, a in per_row.items():
        if a.shape not in ((), (n,)):
            raise ValueError(f"{name}: expected a number or shape ({n},) to match dz, got {a.shape}")


def _fail(name: str, bad: np.ndarray, problem: str, first_row: int):
    """Raise the ValueError of `bad`, (N,) rows or (N, L) layers at fault: the first is named."""
    row = int(np.flatnonzero(bad.any(axis=1) if bad.ndim == 2 else bad)[0])
    where = f"row {first_row + row}" + (f", layer {int(np.argmax(bad[row])) + 1}" if bad.ndim == 2 else "")
    raise ValueError(f"{name}: {where}: {problem}")


def _checked_scalars(scalars: dict, per_row: dict, n_layers: np.ndarray, first_row: int, allow_dark: bool) -> dict:
    """The value checks of the scalars (shapes checked) of the rows with layers; soil_albedo and
    cos_zenith as (N,) arrays into scalars, returned."""

    def fail(name, bad, problem):
        _fail(name, bad, problem, first_row)

    n = len(n_layers)
    checked = n_layers > 0
    mu = scalars["cos_illum"]
    bad = ~((mu >= -1) & (mu <= 1)) & checked
    if bad.any():
        fail("cos_illum", bad, f"{mu[np.flatnonzero(bad)[0]]} is outside [-1, 1]")
    for name in ("direct_sw", "diffuse_sw"):
        a = scalars[name]
        bad = ~((a >= 0) & (a < np.inf)) & checked
        if bad.any():
            fail(name, bad, f"{a[np.flatnonzero(bad)[0]]} is not a finite value >= 0")
    if not allow_dark:
        bad = ~(scalars["direct_sw"] + scalars["diffuse_sw"] > 0) & checked
        if bad.any():
            fail("direct_sw + diffuse_sw", bad, "no incident shortwave (the labels are undefined)")
    soil_albedo, cos_zenith = per_row["soil_albedo"], per_row["cos_zenith"]
    wrong = {"soil_albedo": (~((soil_albedo >= 0) & (soil_albedo <= 1)), "is not a finite value in [0, 1]"),
             "cos_zenith": (~(np.isnan(cos_zenith) | (np.abs(cos_zenith) <= 1)), "is outside [-1, 1] (NaN: not given)")}
    for name, a in per_row.items():
        bad, problem = wrong[name]
        if a.ndim == 0 and bad and checked.any():
            raise ValueError(f"{name}: {a} {problem}")
        if a.ndim == 1 and (bad & checked).any():
            fail(name, bad & checked, f"{a[np.flatnonzero(bad & checked)[0]]} {problem}")
        scalars[name] = np.full(n, a) if a.ndim == 0 else a
    return scalars
