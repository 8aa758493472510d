"""Crocus PRO + SAFRAN FORCING seasons -> shards of (snow profile, illumination, albedo) samples.

    python -m preprocessing.preprocess --input DIR --output OUT [--target crocus|tartes] [--workers N]

DIR holds <region>/PRO/PRO_<begin>_<end>.nc and <region>/FORCING/FORCING_<begin>_<end>.nc
(shared/reference/CROCUS_FILES.md); each pair becomes the shard OUT/<region>/<begin>_<end> of
preprocessing/shards.py. A sample is a time and point of the times common to both files where
there is snow (WSN_T_ISBA > 0), shortwave (DIR_SWdown + SCA_SWdown > 0) and the sun is up
(cos_sza > 0), as where Crocus calls TARTES. The illumination cosine cos_illum (the sun against
the normal to the slope, utils.solar) is computed per time and point. The labels are the energy
budget of preprocessing.tartes_labels (albedo, absorbed fraction per layer, soil; PRO files hold
no absorption profile), the albedo replaced by Crocus' own ASN_VEG with --target crocus.

Memory stays bounded whatever the file size: a first pass over blocks of times x points reads
only the 2-D fields to count the samples, a second pass reads the layer hyperslabs of each block
and fills the shard. Finished shards are skipped, so an interrupted run resumes; a failing pair is
reported at the end and does not stop the others.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import scipy.io
import xarray as xr
from tqdm import tqdm

from preprocessing.shards import INFO_FILE, SHARD_FORMAT, Samples, ShardWriter, is_complete, shard_format
from preprocessing.tartes_labels import energy_budget
from utils.config import UsageError
from utils.files import save_json, write_text
from utils.provenance import provenance
from utils.schema import LAYER_VARIABLES, N_LAYERS, SCALAR_VARIABLES
from utils.solar import sun_geometry

TIME, POINT = "time", "Number_of_points"
PATCH_DIMS = ("Number_of_Patches", "tile", "Number_of_Tile")  # Crocus patches: patch 0 is taken
ABSENT = 1e19  # |value| at or above: a fill value (SURFEX writes 1e20) that decoding missed
# Crocus names of the shard's layer variables, first found wins; impurities may be absent.
PRO_LAYERS = {"dz": ("SNOWDZ",), "ssa": ("SNOWSSA",), "density": ("RSN_VEG", "SNOWRO"),
              "soot": ("SNOWIMP1",), "dust": ("SNOWIMP2",)}
IMPURITIES = ("soot", "dust")
# Point metadata: (PRO name, FORCING name).
POINT_NAMES = {"lat": ("latitude", "LAT"), "lon": ("longitude", "LON"), "ZS": ("ZS", "ZS"),
               "slope": ("slope", "slope"), "aspect": ("aspect", "aspect"), "massif": ("massif_num", "massif_number")}
# Largest disagreement tolerated between PRO and FORCING for the same point.
POINT_TOLERANCE = {"lat": 1e-3, "lon": 1e-3, "ZS": 1.0}
TARGET_SOURCES = {"crocus": "ASN_VEG", "tartes": "tartes labeller"}
SELECTION = ("times common to PRO and FORCING where WSN_T_ISBA > 0, DIR_SWdown + SCA_SWdown > 0 "
             "and cos_sza > 0 (utils.solar: snowtools' formula at the middle of the hour ending at the time stamp)")
ILLUMINATION = ("cos_illum: cosine of the angle between the sun and the normal to the slope (FORCING slope and "
                "aspect), utils.solar.sun_geometry, at the middle of the hour ending at the time stamp")
# A block (times x points read at once) holds BLOCK_SAMPLES columns, about 3 MB per layer variable,
# of POINT_CHUNK points at most: its memory does not depend on the size of the files.
BLOCK_SAMPLES = 8192
POINT_CHUNK = 512
CHUNK_CACHE_CAP = 64 * 2**20  # bytes of HDF5 chunk cache per variable, at most (netCDF-C's default)


class InputError(ValueError):
    """Bad input, with the file and variable at fault."""

    def __init__(self, path, variable: str | None, problem: str):
        super().__init__(f"{path}: {variable}: {problem}" if variable else f"{path}: {problem}")


# ---------------------------------------------------------------------------------------------
# Reading one pair of files

def block_shape(n_points: int, time_chunk: int | None = None, point_chunk: int = POINT_CHUNK) -> tuple[int, int]:
    """(times, points) of a block: point_chunk points at most and, unless time_chunk is given,
    as many times as make BLOCK_SAMPLES columns."""
    points = max(1, min(n_points, point_chunk))
    return time_chunk or max(1, BLOCK_SAMPLES // points), points


def _size_chunk_caches(nc: netCDF4.Dataset, time_chunk: int | None, point_chunk: int) -> None:
    """Give each time-varying variable the HDF5 chunk cache its reads need, so that each chunk is
    decompressed once: the chunks of one row of blocks (their times, every point, patch 0), or with
    a single block per row just those of the current times. netCDF-C's default (64 MB per variable
    whatever the need) would fill up with every chunk read."""
    n_points = nc.dimensions[POINT].size if POINT in nc.dimensions else 1
    block_times, block_points = block_shape(n_points, time_chunk, point_chunk)
    several_blocks_per_row = n_points > block_points
    for var in nc.variables.values():
        chunks = var.chunking()
        if chunks in (None, "contiguous") or TIME not in var.dimensions or not isinstance(var.dtype, np.dtype):
            continue
        n_chunks = 1
        for dim, size, chunk in zip(var.dimensions, var.shape, chunks):
            if dim == TIME:  # a block may straddle a chunk boundary
                n_chunks *= -(-min(block_times, size) // chunk) + int(several_blocks_per_row)
            elif dim not in PATCH_DIMS:
                n_chunks *= -(-size // chunk)
        var.set_var_chunk_cache(size=min(CHUNK_CACHE_CAP, n_chunks * int(np.prod(chunks)) * var.dtype.itemsize))


def _open(path: Path, time_chunk: int | None, point_chunk: int) -> xr.Dataset:
    """Open lazily; a file that cannot be read whole is an InputError naming it."""
    if not path.is_file():
        raise InputError(path, None, "missing: no such file" if not path.exists() else "not a file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        # netCDF-C reads zeros past the end of a truncated netCDF-3 file; scipy maps the file
        # against its header and fails when it is short.
        if magic in (b"CDF\x01", b"CDF\x02"):
            scipy.io.netcdf_file(path, mmap=True).close()
        with warnings.catch_warnings():
            # Files whose missing_value differs from _FillValue: xarray masks both, as we want.
            warnings.filterwarnings("ignore", message=".*multiple fill values.*")
            nc = netCDF4.Dataset(path)
            _size_chunk_caches(nc, time_chunk, point_chunk)
            return xr.open_dataset(xr.backends.NetCDF4DataStore(nc), engine="store", cache=False)
    except Exception as e:
        raise InputError(path, None, f"unreadable or truncated netCDF file ({type(e).__name__}: {e})") from e


def _compact(index: np.ndarray):
    """Evenly spaced indices as a slice, which netCDF reads in one call."""
    if len(index) == 1:
        return slice(int(index[0]), int(index[0]) + 1)
    step = int(index[1] - index[0])
    if step > 0 and np.all(np.diff(index) == step):
        return slice(int(index[0]), int(index[-1]) + 1, step)
    return index


def _read(ds: xr.Dataset, path: Path, name: str, times, points: slice, layer_dim: str | None = None) -> np.ndarray:
    """float64 values of `name` (time, [layer,] point) at file time indices and a point slice; absent -> NaN."""
    var = ds[name]
    index = {d: 0 for d in var.dims if d in PATCH_DIMS}
    index.update({TIME: _compact(times), POINT: points})
    order = (TIME, layer_dim, POINT) if layer_dim else (TIME, POINT)
    try:
        values = var.isel(index).transpose(*order).values.astype(np.float64)
    except Exception as e:
        raise InputError(path, name, f"unreadable ({type(e).__name__}: {e})") from e
    values[np.abs(values) >= ABSENT] = np.nan
    return values


def _check_dims(ds: xr.Dataset, path: Path, name: str, layered: bool) -> str | None:
    """The layer dimension of `name` (None for a 2-D field), or an InputError for other dimensions."""
    if name not in ds:
        raise InputError(path, name, "missing variable")
    dims = ds[name].dims
    other = [d for d in dims if d not in (TIME, POINT) and d not in PATCH_DIMS]
    if TIME not in dims or POINT not in dims or len(other) != int(layered):
        expected = f"{TIME}, {POINT}" + (" and one layer dimension" if layered else "")
        raise InputError(path, name, f"dimensions {dims}, expected {expected} (and optionally a patch dimension)")
    return other[0] if layered else None


def _times(ds: xr.Dataset, path: Path) -> pd.DatetimeIndex:
    if TIME not in ds.variables or not np.issubdtype(ds[TIME].dtype, np.datetime64):
        raise InputError(path, TIME, "missing or not a decodable standard-calendar time axis")
    times = pd.DatetimeIndex(ds[TIME].values)
    backwards = np.diff(times.values) <= np.timedelta64(0)
    if np.any(backwards):
        raise InputError(path, TIME, f"not strictly increasing at index {int(np.argmax(backwards)) + 1}")
    return times


@dataclass
class Pair:
    """One season of one region: the PRO file and its FORCING."""

    region: str
    season: str
    pro_file: Path
    forcing_file: Path

    @property
    def name(self) -> str:
        return f"{self.region}/{self.season}"


def find_pairs(input_dir: str | Path) -> list[Pair]:
    """Every <region>/PRO/PRO_<season>.nc under input_dir, with its <region>/FORCING/FORCING_<season>.nc.
    FileNotFoundError when input_dir is not a directory."""
    if not Path(input_dir).is_dir():
        problem = "not a directory" if Path(input_dir).exists() else "no such directory"
        raise FileNotFoundError(f"{input_dir}: {problem}")
    pairs = []
    for pro in sorted(Path(input_dir).glob("*/PRO/PRO_*.nc")):
        season = pro.stem.removeprefix("PRO_")
        region_dir = pro.parent.parent
        pairs.append(Pair(region_dir.name, season, pro, region_dir / "FORCING" / f"FORCING_{season}.nc"))
    return pairs


class Season:
    """A PRO + FORCING pair opened lazily, checked, and aligned on their common times.

    Blocks are (positions on the common time axis, slice of points); `select` and `samples`
    read one block each, so memory depends on the block size only. target: "crocus", "tartes"
    (TARGET_SOURCES), or None for samples without a target (to apply an emulator).
    """

    def __init__(self, pair: Pair, target: str | None, time_chunk: int | None = None,
                 point_chunk: int = POINT_CHUNK):
        self.pair = pair
        self.target = target
        if not pair.forcing_file.is_file():
            raise InputError(pair.forcing_file, None, f"missing: no FORCING file for {pair.pro_file}")
        self.pro = self.forcing = None
        try:
            self.pro = _open(pair.pro_file, time_chunk, point_chunk)
            self.forcing = _open(pair.forcing_file, time_chunk, point_chunk)
            self._check_and_align()
            self.time_chunk, self.point_chunk = block_shape(self.n_points, time_chunk, point_chunk)
        except BaseException:
            self.close()
            raise

    def _check_and_align(self) -> None:
        """Find the variables, check their dimensions and the points, intersect the time axes."""
        pro_path, forcing_path, target = self.pair.pro_file, self.pair.forcing_file, self.target
        self.names = {}
        for fieldname, candidates in PRO_LAYERS.items():
            found = [c for c in candidates if c in self.pro]
            if not found and fieldname not in IMPURITIES:
                raise InputError(pro_path, " or ".join(candidates), f"missing variable (snow {fieldname})")
            self.names[fieldname] = found[0] if found else None
        self.layer_dim = _check_dims(self.pro, pro_path, self.names["dz"], layered=True)
        for fieldname, name in self.names.items():
            if name is None:
                continue
            dim = _check_dims(self.pro, pro_path, name, layered=True)
            if dim != self.layer_dim:
                raise InputError(pro_path, name, f"layer dimension '{dim}' differs from {self.names['dz']}'s "
                                                 f"'{self.layer_dim}'")
        n_layers = self.pro.sizes[self.layer_dim]
        if n_layers > N_LAYERS:
            raise InputError(pro_path, self.names["dz"], f"{n_layers} layers along '{self.layer_dim}', more than "
                                                         f"the {N_LAYERS} a shard holds")
        self.n_layers = n_layers
        if target == "crocus" and "ASN_VEG" not in self.pro:
            raise InputError(pro_path, "ASN_VEG", "missing: this run has no TARTES albedo; "
                                                  "use --target tartes to compute the labels")
        asn_veg = target == "crocus" or (target is None and "ASN_VEG" in self.pro)  # read: checked
        for name in ["WSN_T_ISBA", "DSN_T_ISBA"] + (["ASN_VEG"] if asn_veg else []):
            _check_dims(self.pro, pro_path, name, layered=False)
        for name in ("DIR_SWdown", "SCA_SWdown"):
            _check_dims(self.forcing, forcing_path, name, layered=False)

        self.n_points = self.pro.sizes[POINT]
        if self.forcing.sizes[POINT] != self.n_points:
            raise InputError(pro_path, POINT, f"{self.n_points} points but {forcing_path} has "
                                              f"{self.forcing.sizes[POINT]}")
        self.points = self._point_metadata()

        pro_times, forcing_times = _times(self.pro, pro_path), _times(self.forcing, forcing_path)
        common, self.pro_index, self.forcing_index = np.intersect1d(pro_times.values, forcing_times.values,
                                                                    return_indices=True)
        if len(common) == 0:
            raise InputError(pro_path, TIME, f"no time in common with {forcing_path} (PRO {pro_times[0]} to "
                                             f"{pro_times[-1]}, FORCING {forcing_times[0]} to {forcing_times[-1]})")
        self.times = pd.DatetimeIndex(common)
        self.time_axes = {"pro_times": len(pro_times), "forcing_times": len(forcing_times),
                          "common_times": len(common), "first": str(common[0]), "last": str(common[-1])}

    def _point_metadata(self) -> dict[str, np.ndarray]:
        """Per-point lat, lon, ZS, slope, aspect, massif; FORCING's position (what drove the run) first."""
        pro_path, forcing_path = self.pair.pro_file, self.pair.forcing_file
        points = {}
        for key, (pro_name, forcing_name) in POINT_NAMES.items():
            found = {}
            for ds, path, name in ((self.forcing, forcing_path, forcing_name), (self.pro, pro_path, pro_name)):
                if name in ds:
                    if ds[name].dims != (POINT,):
                        raise InputError(path, name, f"dimensions {ds[name].dims}, expected ({POINT},)")
                    values = ds[name].values.astype(np.float64)
                    values[np.abs(values) >= ABSENT] = np.nan
                    found[path] = values
            if key in POINT_TOLERANCE and len(found) == 2:
                pro_values, forcing_values = found[pro_path], found[forcing_path]
                bad = ~(np.abs(pro_values - forcing_values) <= POINT_TOLERANCE[key])
                if np.any(bad):
                    p = int(np.flatnonzero(bad)[0])
                    raise InputError(pro_path, pro_name, f"point {p}: {pro_values[p]} here but {forcing_values[p]} in "
                                                         f"{forcing_path}: the files do not describe the same points")
            if key == "massif":
                # A label of the point, not an input: some FORCING files lack it (-1 then).
                values = next(iter(found.values()), np.full(self.n_points, np.nan))
                points[key] = np.nan_to_num(values, nan=-1).astype(np.int64)
                continue
            if not found:
                raise InputError(pro_path, pro_name, f"missing variable (also no {forcing_name} in {forcing_path})")
            values = next(iter(found.values()))
            if key in ("lat", "lon") and np.any(np.isnan(values)):
                raise InputError(next(iter(found)), forcing_name, f"NaN at point {int(np.argmax(np.isnan(values)))}, "
                                                                  "where a position is required")
            points[key] = values
        return points

    def blocks(self):
        for start in range(0, len(self.times), self.time_chunk):
            positions = np.arange(start, min(start + self.time_chunk, len(self.times)))
            for p in range(0, self.n_points, self.point_chunk):
                yield positions, slice(p, min(p + self.point_chunk, self.n_points))

    def n_blocks(self) -> int:
        return -(-len(self.times) // self.time_chunk) * -(-self.n_points // self.point_chunk)

    def _nan_error(self, path, name, values, positions, points):
        t, p = np.argwhere(np.isnan(values))[0]
        return InputError(path, name, f"NaN at {self.times[positions[t]]} point {points.start + p} "
                                      "where a value is required")

    def select(self, positions: np.ndarray, points: slice):
        """Sample mask and (direct_sw, diffuse_sw, cos_sza, cos_illum) of a block, each (time, point)."""
        pro_path, forcing_path = self.pair.pro_file, self.pair.forcing_file
        swe = self.read_pro("WSN_T_ISBA", positions, points)
        direct = _read(self.forcing, forcing_path, "DIR_SWdown", self.forcing_index[positions], points)
        diffuse = _read(self.forcing, forcing_path, "SCA_SWdown", self.forcing_index[positions], points)
        for path, name, values in ((pro_path, "WSN_T_ISBA", swe), (forcing_path, "DIR_SWdown", direct),
                                   (forcing_path, "SCA_SWdown", diffuse)):
            if np.any(np.isnan(values)):
                raise self._nan_error(path, name, values, positions, points)
        geometry = {key: self.points[key][points] for key in ("lat", "lon", "slope", "aspect")}
        for key in ("slope", "aspect"):
            if np.any(np.isnan(geometry[key])):
                p = points.start + int(np.argmax(np.isnan(geometry[key])))
                raise InputError(self.pair.forcing_file, POINT_NAMES[key][1], f"NaN at point {p}, where the "
                                 "illumination angle needs it")
        mu, mu_illum = sun_geometry(self.times[positions], geometry["lat"], geometry["lon"], geometry["slope"],
                                    geometry["aspect"])
        return (swe > 0) & (direct + diffuse > 0) & (mu > 0), direct, diffuse, mu, mu_illum

    def read_pro(self, name: str, positions: np.ndarray, points: slice) -> np.ndarray:
        """A (time, point) variable of the PRO file on a block."""
        return _read(self.pro, self.pair.pro_file, name, self.pro_index[positions], points)

    def samples(self, positions: np.ndarray, points: slice):
        """The Samples of a block, or None if it has none. Without a target (to apply an emulator),
        nothing is labelled: albedo, absorbed and soil are None."""
        selected, direct, diffuse, mu, mu_illum = self.select(positions, points)
        rows, cols = np.nonzero(selected)
        if len(rows) == 0:
            return None
        # Read only the span of times holding samples (nights and snow-free days are skipped).
        span = slice(rows.min(), rows.max() + 1)
        rows_in_span = rows - span.start
        pro_path = self.pair.pro_file
        pro_times = self.pro_index[positions[span]]

        def block_nan_error(name, values):
            return self._nan_error(pro_path, name, values, positions[span], points)

        layers = {}
        for fieldname, name in self.names.items():
            if name is None:
                layers[fieldname] = np.zeros((len(rows), N_LAYERS))
                continue
            values = _read(self.pro, pro_path, name, pro_times, points, self.layer_dim)[rows_in_span, :, cols]
            layers[fieldname] = np.pad(values, ((0, 0), (0, N_LAYERS - self.n_layers)), constant_values=np.nan)
        present = np.isfinite(layers["dz"]) & (layers["dz"] > 0)
        empty = ~present.any(axis=1)
        if np.any(empty):
            i = int(np.flatnonzero(empty)[0])
            raise InputError(pro_path, self.names["dz"], f"no snow layer at {self.times[positions[rows[i]]]} point "
                                                         f"{points.start + cols[i]} although WSN_T_ISBA > 0")
        for fieldname, values in layers.items():
            bad = present & np.isnan(values)
            if np.any(bad):
                i = int(np.flatnonzero(bad.any(axis=1))[0])
                raise InputError(pro_path, self.names[fieldname], f"NaN in present layer "
                                 f"{int(np.argmax(bad[i])) + 1} at {self.times[positions[rows[i]]]} point "
                                 f"{points.start + cols[i]}")

        depth = _read(self.pro, pro_path, "DSN_T_ISBA", pro_times, points)
        direct, diffuse, mu, mu_illum = direct[rows, cols], diffuse[rows, cols], mu[rows, cols], mu_illum[rows, cols]
        snow_depth = depth[rows_in_span, cols]
        if np.any(np.isnan(snow_depth)):
            raise block_nan_error("DSN_T_ISBA", np.where(selected[span], depth, 0.0))
        albedo = absorbed = soil = None
        if self.target is not None:
            absent = {k: np.where(present, v, np.nan) for k, v in layers.items()}
            try:
                budget = energy_budget(*(absent[k] for k in LAYER_VARIABLES), mu_illum, direct, diffuse)
            except ValueError as e:
                raise self._profile_error(e, positions[rows], cols + points.start) from e
            albedo, absorbed, soil = budget.albedo, np.nan_to_num(budget.absorbed, nan=0.0), budget.soil
        if self.target == "crocus":
            asn_veg = _read(self.pro, pro_path, "ASN_VEG", pro_times, points)
            albedo = asn_veg[rows_in_span, cols]
            if np.any(np.isnan(albedo)):
                raise block_nan_error("ASN_VEG", np.where(selected[span], asn_veg, 0.0))

        layer_array = np.stack([np.where(present, layers[k], 0.0) for k in LAYER_VARIABLES], axis=1)
        columns = {"cos_illum": mu_illum, "direct_sw": direct, "diffuse_sw": diffuse, "cos_sza": mu,
                   "snow_depth": snow_depth}
        scalars = np.stack([columns[name] for name in SCALAR_VARIABLES], axis=1)
        point = points.start + cols
        meta = pd.DataFrame({
            "region": pd.Categorical([self.pair.region] * len(rows)),
            "season": pd.Categorical([self.pair.season] * len(rows)),
            "time": self.times[positions[rows]],
            "point": point,
            "massif": self.points["massif"][point],
            "ZS": self.points["ZS"][point],
            "slope": self.points["slope"][point],
            "aspect": self.points["aspect"][point],
        })
        return Samples(layer_array, present, scalars, albedo, absorbed, soil, meta)

    def _profile_error(self, error: ValueError, positions: np.ndarray, points: np.ndarray) -> InputError:
        """The labeller's "<field>: row <i>[, layer <k>]: <problem>" as the PRO variable, time, point
        (and layer) at fault."""
        match = re.fullmatch(r"(\w+): row (\d+)(, layer \d+)?: (.*)", str(error))
        if not match:
            return InputError(self.pair.pro_file, None, f"the TARTES labeller rejects a profile ({error})")
        field, row, layer, problem = match.groups()
        i = int(row)
        return InputError(self.pair.pro_file, self.names.get(field) or field,
                          f"{problem} at {self.times[positions[i]]} point {points[i]}{layer or ''}")

    def info(self) -> dict:
        """What a shard records about where its samples come from."""
        names = {k: v if v else "absent from PRO: 0" for k, v in self.names.items()}
        if self.names["soot"] and self.names["dust"]:
            impurities = "SNOWIMP1 (soot) and SNOWIMP2 (dust) from PRO"
        else:
            impurities = ("SNOWIMP1 and/or SNOWIMP2 absent from PRO (e.g. public S2M runs, without impurities): "
                          "the missing ones are set to 0, i.e. clean snow, in the inputs and, with the TARTES "
                          "labeller, in the labels")
        target = ("ASN_VEG, the broadband albedo computed by TARTES inside Crocus" if self.target == "crocus" else
                  "preprocessing.tartes_labels.broadband_albedo (shared/reference/TARTES_LABELS.md)")
        return {
            "region": self.pair.region,
            "season": self.pair.season,
            "pro_file": str(self.pair.pro_file.resolve()),
            "forcing_file": str(self.pair.forcing_file.resolve()),
            "target_source": TARGET_SOURCES[self.target],
            "target": target,
            "selection": SELECTION,
            "variables": names,
            "impurities": impurities,
            "layers_in_file": self.n_layers,
            "n_points": self.n_points,
            "time_axes": self.time_axes,
        }

    def close(self) -> None:
        for ds in (self.pro, self.forcing):
            if ds is not None:
                ds.close()


# ---------------------------------------------------------------------------------------------
# Running pairs

@dataclass
class PairResult:
    name: str
    status: str  # "written", "skipped" (already complete) or "failed"
    n_samples: int = 0
    error: str = ""
    seconds: float = 0.0


@dataclass
class Summary:
    results: list[PairResult] = field(default_factory=list)

    def _names(self, status):
        return [r.name for r in self.results if r.status == status]

    @property
    def written(self) -> list[str]:
        return self._names("written")

    @property
    def skipped(self) -> list[str]:
        return self._names("skipped")

    @property
    def failed(self) -> dict[str, str]:
        return {r.name: r.error for r in self.results if r.status == "failed"}

    @property
    def n_samples(self) -> int:
        return sum(r.n_samples for r in self.results if r.status == "written")

    def __str__(self) -> str:
        lines = []
        for r in self.results:
            if r.status == "failed":
                lines.append(f"FAILED   {r.name}: {r.error}")
            else:
                lines.append(f"{r.status:8} {r.name}: {r.n_samples} samples" +
                             (f" in {r.seconds:.1f} s" if r.status == "written" else ""))
        lines.append(f"{len(self.results)} seasons: {len(self.written)} written, {len(self.skipped)} skipped "
                     f"(already complete), {len(self.failed)} failed")
        return "\n".join(lines)


@dataclass
class Job:
    pair: Pair
    output_dir: Path
    target: str
    time_chunk: int | None
    point_chunk: int
    software: dict


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(shard: Path) -> None:
    """Remove temporary directories left by killed runs (ShardWriter names them <shard>.tmp-<pid>)."""
    for tmp in shard.parent.glob(f"{shard.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


_BAR_LINE: int | None = None  # terminal line of this process' progress bars: workers get 1, 2, ...


def _init_worker(counter, lock) -> None:
    global _BAR_LINE
    tqdm.set_lock(lock)
    with counter.get_lock():
        counter.value += 1
        _BAR_LINE = counter.value


def _bar(**kwargs) -> tqdm:
    # Logs (screen, SLURM) get a line every 30 s rather than a stream of carriage returns.
    return tqdm(position=_BAR_LINE, mininterval=1 if sys.stderr.isatty() else 30, **kwargs)


def _write_shard(job: Job, shard: Path) -> int:
    season = Season(job.pair, job.target, job.time_chunk, job.point_chunk)
    try:
        with _bar(total=2 * season.n_blocks(), desc=job.pair.name, unit="block", leave=False) as bar:
            n_samples = 0
            for positions, points in season.blocks():
                n_samples += int(season.select(positions, points)[0].sum())
                bar.update()
            info = {**season.info(), "software": job.software,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            with ShardWriter(shard, n_samples, info) as writer:
                target_equal_1 = 0
                for positions, points in season.blocks():
                    samples = season.samples(positions, points)
                    if samples is not None:
                        writer.write(samples)
                        target_equal_1 += int(np.sum(samples.albedo == 1))
                    bar.update()
                # In T17 runs ASN_VEG is 1 where TARTES did not run: a daylight sample at 1 is suspect.
                writer.info["samples_with_target_1"] = target_equal_1
    finally:
        season.close()
    return n_samples


def _run(job: Job) -> PairResult:
    """Process one pair; any error becomes a failed result, so other pairs go on."""
    start = time.perf_counter()
    shard = job.output_dir / job.pair.region / job.pair.season
    try:
        if is_complete(shard):
            recorded = json.loads((shard / INFO_FILE).read_text()).get("target_source")
            if shard_format(shard) != SHARD_FORMAT:
                raise InputError(shard, None, f"already holds a shard of an older format ({shard_format(shard)}, not "
                                              f"{SHARD_FORMAT}): re-run preprocessing into a new directory, or remove it")
            if recorded != TARGET_SOURCES[job.target]:
                raise InputError(shard, None, f"already holds a shard labelled by {recorded}, not "
                                              f"{TARGET_SOURCES[job.target]}: remove it or choose another output")
            return PairResult(job.pair.name, "skipped", json.loads((shard / INFO_FILE).read_text())["n_samples"])
        _remove_stale(shard)
        n_samples = _write_shard(job, shard)
        return PairResult(job.pair.name, "written", n_samples, seconds=time.perf_counter() - start)
    except Exception as e:
        message = str(e) if isinstance(e, InputError) else f"{job.pair.pro_file}: {type(e).__name__}: {e}"
        return PairResult(job.pair.name, "failed", error=message, seconds=time.perf_counter() - start)


def preprocess(input_dir: str | Path, output_dir: str | Path, target: str = "crocus", workers: int = 1, *,
               time_chunk: int | None = None, point_chunk: int = POINT_CHUNK) -> Summary:
    """Turn every PRO + FORCING pair under input_dir into a shard under output_dir.

    target: "crocus" (ASN_VEG) or "tartes" (the TARTES labeller). workers: pairs processed in
    parallel (spawned processes). time_chunk, point_chunk: block shape (block_shape), which sets
    memory and the order of the rows in a shard. Returns the Summary of written, skipped and failed pairs.
    """
    if target not in TARGET_SOURCES:
        raise ValueError(f"target: {target!r}, expected one of {sorted(TARGET_SOURCES)}")
    pairs = find_pairs(input_dir)
    if not pairs:
        raise FileNotFoundError(f"{input_dir}: no <region>/PRO/PRO_<season>.nc file")
    software = provenance()
    jobs = [Job(pair, Path(output_dir), target, time_chunk, point_chunk, software) for pair in pairs]
    # Folders this run creates, removed at the end if they stay empty (every pair of a region failed).
    created = [d for d in sorted({Path(output_dir) / pair.region for pair in pairs}) if not d.exists()]
    created += [Path(output_dir)] if not Path(output_dir).exists() else []
    summary = Summary()
    ctx = mp.get_context("spawn")
    if workers > 1:
        tqdm.set_lock(ctx.RLock())  # one lock for the bars of all processes
    with _bar(total=len(jobs), desc="seasons", unit="season") as bar, ExitStack() as stack:
        if workers <= 1:
            results = map(_run, jobs)
        else:
            pool = stack.enter_context(ctx.Pool(min(workers, len(jobs)), initializer=_init_worker,
                                                initargs=(ctx.Value("i", 0), tqdm.get_lock())))
            results = pool.imap_unordered(_run, jobs)
        for result in results:
            summary.results.append(result)
            bar.update()
    for folder in created:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    summary.results.sort(key=lambda r: r.name)
    return summary


# ---------------------------------------------------------------------------------------------
# One pair per task (preprocessing/launch.sh slurm --array): a pair list, a status file per pair

PAIR_LIST = ".pairs.txt"  # OUT/.pairs.txt: one <region>/<season> a line; array task i is line i + 1
STATUS_DIR = ".status"  # OUT/.status/<region>__<season>.json: what the last task of the pair did


def pair_from_name(input_dir: str | Path, name: str) -> Pair:
    """The Pair <region>/<season> under input_dir (its files may be missing: the run says so)."""
    region, season = name.split("/")
    region_dir = Path(input_dir) / region
    return Pair(region, season, region_dir / "PRO" / f"PRO_{season}.nc",
                region_dir / "FORCING" / f"FORCING_{season}.nc")


def read_pair_list(path: str | Path) -> list[str]:
    """The pair names of a pair list, in task order; UsageError when it is not there or malformed."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--pair-list {path}: no such file (launch.sh slurm --array writes it at submission)")
    names = path.read_text().splitlines()
    bad = [i for i, name in enumerate(names) if len(name.split("/")) != 2 or not all(name.split("/"))]
    if bad:
        raise UsageError(f"--pair-list {path}: line {bad[0] + 1} is {names[bad[0]]!r}, not <region>/<season>")
    return names


def update_pair_list(input_dir: str | Path, path: str | Path, write: bool = True) -> list[str]:
    """The pair list of input_dir: the pairs already in the list at `path`, in their order (task i
    stays the same pair from one submission to the next), then the pairs it does not hold yet."""
    listed = read_pair_list(path) if Path(path).exists() else []
    found = [pair.name for pair in find_pairs(input_dir)]
    names = listed + sorted(set(found) - set(listed), key=found.index)
    gone = sorted(set(listed) - set(found))
    if gone:
        print(f"warning: {len(gone)} pair(s) of {path} no longer under {input_dir} (their tasks will fail): "
              f"{', '.join(gone[:5])}{' ...' if len(gone) > 5 else ''}", file=sys.stderr)
    if write and names != listed:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, "".join(f"{name}\n" for name in names))
    return names


def array_spec(indices: list[int]) -> str:
    """SLURM's --array list of task indices: 0-3,7,9-10."""
    ranges = []
    for i in indices:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def status_path(output_dir: str | Path, name: str) -> Path:
    return Path(output_dir) / STATUS_DIR / (name.replace("/", "__") + ".json")


def save_status(output_dir: str | Path, name: str, record: dict) -> None:
    path = status_path(output_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_json(record, path)


def read_status(output_dir: str | Path, name: str) -> dict | None:
    path = status_path(output_dir, name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"pair": name, "status": "failed", "error": f"{path}: unreadable status file"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_task(input_dir: str | Path, output_dir: str | Path, names: list[str], task: int, target: str,
             time_chunk: int | None = None, point_chunk: int = POINT_CHUNK) -> PairResult:
    """Preprocess pair `task` of the pair list `names` (one array task) and record what happened in
    its status file (atomically): first "running" (a task killed by a time or memory limit leaves
    it so), then written, skipped or failed with the error, seconds and samples."""
    name = names[task]
    previous = read_status(output_dir, name)
    record = {"pair": name, "task": task, "target": target, "host": os.uname().nodename,
              "job": "_".join(os.environ[k] for k in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID") if k in os.environ),
              "log": os.environ.get("PREPROCESS_LOG", ""), "started": _now()}
    save_status(output_dir, name, {**record, "status": "running"})
    job = Job(pair_from_name(input_dir, name), Path(output_dir), target, time_chunk, point_chunk, provenance())
    result = _run(job)
    if result.status == "skipped" and previous and previous.get("status") == "written":
        save_status(output_dir, name, previous)  # keep the record of the task that wrote it
    else:
        save_status(output_dir, name, {**record, "status": result.status, "n_samples": result.n_samples,
                                       "seconds": round(result.seconds, 3), "error": result.error, "finished": _now()})
    return result


def task_summary(output_dir: str | Path, names: list[str]) -> tuple[str, bool]:
    """(report, all done) of the pairs of a pair list from their status files: written, skipped
    (complete before the task ran, or made by another run), then what is left to do: unfinished
    (started, no result: running, or killed by a limit), missing (never ran, or its shard is gone)
    and failed, with their errors."""
    order = ("written", "skipped", "unfinished", "missing", "failed")
    lines = {status: [] for status in order}
    samples = seconds = 0
    for task, name in enumerate(names):
        record = read_status(output_dir, name)
        shard = Path(output_dir) / name
        complete = is_complete(shard)
        status = record["status"] if record else "missing"
        log = f" (log {record['log']})" if record and record.get("log") else ""
        job = f", job {record['job']}" if record and record.get("job") else ""
        if complete and (record is None or (status in ("running", "failed") and (shard / INFO_FILE).stat().st_mtime
                                            > status_path(output_dir, name).stat().st_mtime)):
            # made by a run of its own, or after the task recorded: done
            origin = "no task record" if record is None else f"made after the {status} record{job}"
            status = "skipped"
            text = f"{json.loads((shard / INFO_FILE).read_text()).get('n_samples', '?')} samples ({origin})"
        elif status in ("written", "skipped") and not complete:
            status, text = "missing", f"recorded {record['status']}{job} but the shard is not complete any more"
        elif status == "written":
            samples, seconds = samples + record["n_samples"], seconds + record["seconds"]
            text = f"{record['n_samples']} samples in {record['seconds']:.1f} s{job}"
        elif status == "skipped":
            text = f"{record['n_samples']} samples (complete before the task ran{job})"
        elif status == "running":
            status = "unfinished"
            text = (f"started {record['started']} on {record['host']}{job}, no result: still running, or killed "
                    f"(time or memory limit: see its log){log}")
        elif status == "failed":
            text = f"{record['error']}{log}"
        else:
            text = "never ran"
        lines[status].append(f"{status.upper() if status in order[2:] else status:10} task {task:>4} {name}: {text}")
    counts = ", ".join(f"{len(lines[s])} {s}" for s in order)
    total = (f"{len(names)} pairs: {counts}; {samples} samples written in {seconds / 3600:.2f} h of task time")
    return "\n".join([line for s in order for line in lines[s]] + [total]), not any(lines[s] for s in order[2:])


def add_block_arguments(parser: argparse.ArgumentParser) -> None:
    """--time-chunk and --point-chunk, the block read at once, for the commands that stream pairs."""
    parser.add_argument("--time-chunk", type=int, default=None,
                        help=f"times per block read (default: {BLOCK_SAMPLES} samples / points per block)")
    parser.add_argument("--point-chunk", type=int, default=POINT_CHUNK, help="points per block read, at most")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preprocessing.preprocess", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="directory of <region>/PRO and <region>/FORCING")
    parser.add_argument("--output", help="directory of the shards <region>/<season>")
    parser.add_argument("--target", choices=sorted(TARGET_SOURCES), default="crocus",
                        help="crocus: Crocus' ASN_VEG; tartes: the TARTES labeller (runs without TARTES)")
    parser.add_argument("--workers", type=int, default=1, help="pairs processed in parallel")
    add_block_arguments(parser)
    cluster = parser.add_argument_group("one pair per task (preprocessing/launch.sh slurm --array)")
    cluster.add_argument("--pair-list", help=f"the pair list (default: OUTPUT/{PAIR_LIST})")
    cluster.add_argument("--task", type=int, help="process pair TASK (from 0) of the pair list only, and record "
                                                  f"its result in OUTPUT/{STATUS_DIR}/")
    cluster.add_argument("--array-plan", action="store_true",
                         help="write the pair list (new pairs appended) and print: pairs, pairs to do, their tasks")
    cluster.add_argument("--dry-run", action="store_true", help="with --array-plan: write nothing")
    cluster.add_argument("--summary", metavar="OUTPUT", help="what the tasks of OUTPUT's pair list did; exit "
                                                             "status 1 if a pair is failed, unfinished or missing")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except UsageError as e:
        # Usage errors: one line naming the option, exit status 2 (argparse's parser.error).
        parser.error(str(e))


def _main(args: argparse.Namespace) -> int:
    if args.summary is not None:
        given = [o for o in ("input", "output", "task") if getattr(args, o) is not None] + \
                [o for o in ("array_plan", "dry_run") if getattr(args, o)]
        if given:
            raise UsageError(f"--summary: takes no --{given[0].replace('_', '-')} (only --pair-list)")
        if not Path(args.summary).is_dir():
            raise UsageError(f"--summary {args.summary}: no such directory")
        names = read_pair_list(args.pair_list or Path(args.summary) / PAIR_LIST)
        report, done = task_summary(args.summary, names)
        print(report)
        return 0 if done else 1
    missing = [o for o in ("input", "output") if getattr(args, o) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join('--' + o for o in missing)}")
    for option, value in (("--workers", args.workers), ("--time-chunk", args.time_chunk),
                          ("--point-chunk", args.point_chunk)):
        if value is not None and value < 1:
            raise UsageError(f"{option}: must be >= 1, got {value}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"--output {args.output}: not a directory")
    if args.task is not None and args.array_plan:
        raise UsageError("--task and --array-plan: one or the other")
    if (args.task is not None or args.array_plan) and args.workers != 1:
        raise UsageError(f"--workers {args.workers}: a task processes one pair (give it threads with "
                         "launch.sh --cpus-per-task)")
    if args.pair_list is not None and args.task is None and not args.array_plan:
        raise UsageError("--pair-list: only with --task, --array-plan or --summary")
    if args.dry_run and not args.array_plan:
        raise UsageError("--dry-run: only with --array-plan")
    pair_list = Path(args.pair_list) if args.pair_list else Path(args.output) / PAIR_LIST
    if args.task is not None:
        if not Path(args.input).is_dir():
            raise UsageError(f"--input {args.input}: {'not a directory' if Path(args.input).exists() else 'no such directory'}")
        names = read_pair_list(pair_list)
        if not 0 <= args.task < len(names):
            raise UsageError(f"--task {args.task}: the pair list {pair_list} has {len(names)} pairs (tasks 0 to "
                             f"{len(names) - 1})")
        print(f"task {args.task}: {names[args.task]} of {pair_list}, on {os.uname().nodename}", flush=True)
        result = run_task(args.input, args.output, names, args.task, args.target,
                          time_chunk=args.time_chunk, point_chunk=args.point_chunk)
        print(str(Summary([result])).splitlines()[0])
        return 1 if result.status == "failed" else 0
    try:
        pairs = find_pairs(args.input)
    except FileNotFoundError as e:
        raise UsageError(f"--input {e}") from None
    if not pairs:
        raise UsageError(f"--input {args.input}: no <region>/PRO/PRO_<season>.nc file in it")
    if args.array_plan:
        names = update_pair_list(args.input, pair_list, write=not args.dry_run)
        todo = [i for i, name in enumerate(names) if not is_complete(Path(args.output) / name)]
        print(len(names), len(todo), array_spec(todo))
        return 0
    summary = preprocess(args.input, args.output, args.target, args.workers,
                         time_chunk=args.time_chunk, point_chunk=args.point_chunk)
    print(summary)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
