"""Crocus PRO and SAFRAN FORCING files as users have them (docs/crocus_files.md): their names and
layout, and a pair of them opened, checked, aligned on their common times and read in blocks.

    <input>/<region>/PRO/PRO_<begin>_<end>.nc  with  <input>/<region>/FORCING/FORCING_<begin>_<end>.nc

`Season` is the reader that preprocessing (preprocessing/preprocess.py, which adds the labels)
and predict.py share: the same checks, the same errors (`InputError`: the file, the variable and
what is wrong, one line), the same samples and the same light (utils.solar.crocus_light).
A sample is a time and point of the times common to both files where Crocus called TARTES: there
is snow (WSN_T_ISBA > 0) and it is daylight for Crocus (SELECTION). Memory depends on the block
size only, not on the size of the files.
"""
from __future__ import annotations

import argparse
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import scipy.io
import xarray as xr

from preprocessing.shards import Samples
from utils.schema import LAYER_VARIABLES, N_LAYERS, SCALAR_VARIABLES
from utils.solar import S2M_LIGHT, CrocusLight, LightSettings, crocus_light
from utils.tartes_constants import SOIL_ALBEDO

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
SELECTION = ("times common to PRO and FORCING where WSN_T_ISBA > 0 and Crocus called TARTES: cos_zenith > 1e-8 "
             "and the shortwave of its last surface step > 1e-8 (utils.solar.crocus_light), the FORCING's first "
             "stamp excepted (the run's initial state: no step ended there). Crocus' ASN_VEG "
             "(--target crocus) is kept as Crocus wrote it: in runs where some point of a call had no diffuse "
             "light, SURFEX split the light of the whole array of points by its diffuse fraction (a SURFEX "
             "defect, docs/labels.md step 0), and ASN_VEG carries it")
LIGHT = ("the light of Crocus' last surface step before the time stamp (utils.solar.crocus_light): direct_sw and "
         "diffuse_sw linear in time between the FORCING stamps at the step's start, the diffuse flux times the "
         "sky-view factor on slopes; cos_zenith from SURFEX's SUNPOS at the step's start (capped as the driver "
         "does); cos_illum, the cosine of the angle between the sun (azimuth at the stamp) and the normal to "
         "the slope (FORCING slope and aspect)")
# A block (times x points read at once) holds BLOCK_SAMPLES columns, about 3 MB per layer variable,
# of POINT_CHUNK points at most: its memory does not depend on the size of the files.
BLOCK_SAMPLES = 8192
POINT_CHUNK = 512
CHUNK_CACHE_CAP = 64 * 2**20  # bytes of HDF5 chunk cache per variable, at most (netCDF-C's default)


class InputError(ValueError):
    """Bad input, with the file and variable at fault."""

    def __init__(self, path, variable: str | None, problem: str):
        super().__init__(f"{path}: {variable}: {problem}" if variable else f"{path}: {problem}")


@dataclass(frozen=True)
class Fault:
    """A sample that fails a check of the files, handed back instead of raised when asked
    (predict.py --skip-invalid): its time, point and the error that would have stopped the file."""

    time: pd.Timestamp
    point: int
    error: InputError


def soil_albedo_argument(text: str) -> float | str:
    """--soil_albedo: a number in [0, 1] (every point), or the name of a per-point variable of the
    FORCING or PRO file (such as ALB_SOIL)."""
    try:
        value = float(text)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", text):
            raise argparse.ArgumentTypeError(f"{text!r}: neither a number nor a variable name") from None
        return text
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a soil albedo must be in [0, 1]")
    return value


# ---------------------------------------------------------------------------------------------
# Reading one file

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


def _point_values(ds: xr.Dataset, path: Path, name: str) -> np.ndarray:
    """A per-point variable as float64, fill values as NaN; InputError for other dimensions."""
    if ds[name].dims != (POINT,):
        raise InputError(path, name, f"dimensions {ds[name].dims}, expected ({POINT},)")
    values = ds[name].values.astype(np.float64)
    values[np.abs(values) >= ABSENT] = np.nan
    return values


# ---------------------------------------------------------------------------------------------
# Pairs of files

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


def pair_from_name(input_dir: str | Path, name: str) -> Pair:
    """The Pair <region>/<season> under input_dir (its files may be missing: the run says so)."""
    region, season = name.split("/")
    region_dir = Path(input_dir) / region
    return Pair(region, season, region_dir / "PRO" / f"PRO_{season}.nc",
                region_dir / "FORCING" / f"FORCING_{season}.nc")


class Season:
    """A PRO + FORCING pair opened lazily, checked, and aligned on their common times.

    Blocks are (positions on the common time axis, slice of points); `select` and `samples`
    read one block each, so memory depends on the block size only.
    asn_veg: True, Crocus' ASN_VEG is required and is the albedo of the samples (--target crocus);
    None, checked where present and read by the caller (predict.py); False, ignored.
    soil_albedo: a number, or the name of a per-point variable of the FORCING or the PRO file.
    light: the run's settings (utils.solar.LightSettings).
    """

    def __init__(self, pair: Pair, asn_veg: bool | None, time_chunk: int | None = None,
                 point_chunk: int = POINT_CHUNK, *, soil_albedo: float | str = SOIL_ALBEDO,
                 light: LightSettings = S2M_LIGHT):
        self.pair = pair
        self.asn_veg = asn_veg
        self.light_settings = light
        if not pair.forcing_file.is_file():
            raise InputError(pair.forcing_file, None, f"missing: no FORCING file for {pair.pro_file}")
        self.pro = self.forcing = None
        try:
            self.pro = _open(pair.pro_file, time_chunk, point_chunk)
            self.forcing = _open(pair.forcing_file, time_chunk, point_chunk)
            self._check_and_align()
            self.soil_albedo, self.soil_albedo_source = self._soil_albedo(soil_albedo)
            self.time_chunk, self.point_chunk = block_shape(self.n_points, time_chunk, point_chunk)
        except BaseException:
            self.close()
            raise

    def _check_and_align(self) -> None:
        """Find the variables, check their dimensions and the points, intersect the time axes."""
        pro_path, forcing_path = self.pair.pro_file, self.pair.forcing_file
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
        if self.asn_veg and "ASN_VEG" not in self.pro:
            raise InputError(pro_path, "ASN_VEG", "missing: this run has no TARTES albedo; "
                                                  "use --target tartes to compute the labels")
        read_asn_veg = self.asn_veg or (self.asn_veg is None and "ASN_VEG" in self.pro)
        for name in ["WSN_T_ISBA", "DSN_T_ISBA"] + (["ASN_VEG"] if read_asn_veg else []):
            _check_dims(self.pro, pro_path, name, layered=False)
        for name in ("DIR_SWdown", "SCA_SWdown"):
            _check_dims(self.forcing, forcing_path, name, layered=False)

        self.n_points = self.pro.sizes[POINT]
        if self.forcing.sizes[POINT] != self.n_points:
            raise InputError(pro_path, POINT, f"{self.n_points} points but {forcing_path} has "
                                              f"{self.forcing.sizes[POINT]}")
        self.points = self._point_metadata()

        pro_times, self.forcing_times = _times(self.pro, pro_path), _times(self.forcing, forcing_path)
        common, self.pro_index, self.forcing_index = np.intersect1d(pro_times.values, self.forcing_times.values,
                                                                    return_indices=True)
        if len(common) == 0:
            raise InputError(pro_path, TIME, f"no time in common with {forcing_path} (PRO {pro_times[0]} to "
                                             f"{pro_times[-1]}, FORCING {self.forcing_times[0]} to "
                                             f"{self.forcing_times[-1]})")
        self.times = pd.DatetimeIndex(common)
        self.time_axes = {"pro_times": len(pro_times), "forcing_times": len(self.forcing_times),
                          "common_times": len(common), "first": str(common[0]), "last": str(common[-1])}

    def _point_metadata(self) -> dict[str, np.ndarray]:
        """Per-point lat, lon, ZS, slope, aspect, massif; FORCING's position (what drove the run) first."""
        pro_path, forcing_path = self.pair.pro_file, self.pair.forcing_file
        points = {}
        for key, (pro_name, forcing_name) in POINT_NAMES.items():
            found = {path: _point_values(ds, path, name)
                     for ds, path, name in ((self.forcing, forcing_path, forcing_name), (self.pro, pro_path, pro_name))
                     if name in ds}
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

    def _soil_albedo(self, soil_albedo: float | str) -> tuple[np.ndarray, str]:
        """The soil albedo of each point and where it comes from: a number for every point, or a
        per-point variable of the FORCING (first: what drove the run) or of the PRO file."""
        if not isinstance(soil_albedo, str):
            if not 0 <= soil_albedo <= 1:
                raise ValueError(f"soil_albedo: {soil_albedo} is outside [0, 1]")
            return np.full(self.n_points, float(soil_albedo)), f"{soil_albedo:g} at every point"
        for ds, path in ((self.forcing, self.pair.forcing_file), (self.pro, self.pair.pro_file)):
            if soil_albedo in ds:
                values = _point_values(ds, path, soil_albedo)
                bad = ~((values >= 0) & (values <= 1))
                if np.any(bad):
                    p = int(np.argmax(bad))
                    raise InputError(path, soil_albedo, f"{values[p]} at point {p}: a soil albedo must be in [0, 1]")
                return values, f"{soil_albedo} of {path.resolve()}"
        raise InputError(self.pair.pro_file, soil_albedo, f"missing variable (also not in {self.pair.forcing_file}): "
                                                          "give --soil_albedo a number or a per-point variable")

    def blocks(self):
        for start in range(0, len(self.times), self.time_chunk):
            positions = np.arange(start, min(start + self.time_chunk, len(self.times)))
            for p in range(0, self.n_points, self.point_chunk):
                yield positions, slice(p, min(p + self.point_chunk, self.n_points))

    def n_blocks(self) -> int:
        return -(-len(self.times) // self.time_chunk) * -(-self.n_points // self.point_chunk)

    @staticmethod
    def _nan_error(path, name, values, times, points):
        t, p = np.argwhere(np.isnan(values))[0]
        return InputError(path, name, f"NaN at {times[t]} point {points.start + p} where a value is required")

    def light(self, positions: np.ndarray, points: slice, check_fluxes: bool = True) -> CrocusLight:
        """The light TARTES saw for the PRO samples of a block (utils.solar.crocus_light), (time, point),
        from the FORCING's stamps of the block and the one before each. check_fluxes False: a NaN flux
        is left as NaN light where it is used (select hands back the samples it touches)."""
        path, rows = self.pair.forcing_file, self.forcing_index[positions]
        first = max(int(rows[0]) - 1, 0)
        span = np.arange(first, int(rows[-1]) + 1)
        times = self.forcing_times[span]
        direct = _read(self.forcing, path, "DIR_SWdown", span, points)
        diffuse = _read(self.forcing, path, "SCA_SWdown", span, points)
        used = np.zeros(len(span), dtype=bool)
        used[rows - first] = True
        used[rows[rows > first] - first - 1] = True  # the stamps before them, interpolated with
        for name, values in (("DIR_SWdown", direct), ("SCA_SWdown", diffuse)):
            if check_fluxes and np.any(np.isnan(values[used])):
                raise self._nan_error(path, name, np.where(used[:, None], values, 0.0), times, points)
        geometry = {key: self.points[key][points] for key in ("lat", "lon", "slope", "aspect")}
        for key in ("slope", "aspect"):
            if np.any(np.isnan(geometry[key])):
                p = points.start + int(np.argmax(np.isnan(geometry[key])))
                raise InputError(path, POINT_NAMES[key][1], f"NaN at point {p}, where the illumination angle needs it")
        try:
            light = crocus_light(times, direct, diffuse, geometry["lat"], geometry["lon"], geometry["slope"],
                                 geometry["aspect"], settings=self.light_settings)
        except ValueError as e:  # stamps closer than the surface step
            raise InputError(path, TIME, str(e)) from e
        return CrocusLight(*(values[rows - first] for values in light))

    def select(self, positions: np.ndarray, points: slice,
               faults: list[Fault] | None = None) -> tuple[np.ndarray, CrocusLight]:
        """Sample mask of a block (snow and Crocus' daylight) and its light, each (time, point).
        faults: a list, the snowy times and points whose light a NaN flux leaves unknown (daylight
        included, its threshold being on the flux) are appended to it, not samples, instead of
        stopping at the first NaN flux."""
        swe = self.read_pro("WSN_T_ISBA", positions, points)
        if np.any(np.isnan(swe)):
            raise self._nan_error(self.pair.pro_file, "WSN_T_ISBA", swe, self.times[positions], points)
        light = self.light(positions, points, check_fluxes=faults is None)
        if faults is not None:
            # The light at the FORCING's first stamp is NaN by design (no step ended there): no sample.
            unknown = (swe > 0) & (self.forcing_index[positions] > 0)[:, None]
            for name, values in (("DIR_SWdown", light.direct_sw), ("SCA_SWdown", light.diffuse_sw)):
                for t, p in np.argwhere(unknown & np.isnan(values)):
                    time, point = self.times[positions[t]], points.start + int(p)
                    faults.append(Fault(time, point, InputError(
                        self.pair.forcing_file, name, f"NaN at {time} or the stamp before, point {point}, where the "
                                                      "light over snow requires a value")))
                    unknown[t, p] = False
        return (swe > 0) & light.daylight, light

    def read_pro(self, name: str, positions: np.ndarray, points: slice, layered: bool = False) -> np.ndarray:
        """A (time, point) variable of the PRO file on a block; layered: a (time, layer, point) one."""
        return _read(self.pro, self.pair.pro_file, name, self.pro_index[positions], points,
                     self.layer_dim if layered else None)

    def samples(self, positions: np.ndarray, points: slice, faults: list[Fault] | None = None) -> Samples | None:
        """The Samples of a block, or None if it has none: the profiles, their light, soil albedo and
        snow depth, and with asn_veg True Crocus' ASN_VEG as the albedo. Absorbed and soil are None
        (PRO files hold no absorption profile: preprocessing labels them), and so is the albedo
        without asn_veg. A sample failing a check (no layer, NaN in a present layer, NaN snow depth,
        albedo or light) raises an InputError or, given a list `faults`, is appended to it as a
        Fault and left out."""
        selected, light = self.select(positions, points, faults)
        rows, cols = np.nonzero(selected)
        if len(rows) == 0:
            return None
        # Read only the span of times holding samples (nights and snow-free days are skipped).
        span = slice(rows.min(), rows.max() + 1)
        rows_in_span = rows - span.start
        pro_path = self.pair.pro_file
        pro_times = self.pro_index[positions[span]]
        keep = np.ones(len(rows), dtype=bool)

        def where(i):
            return f"{self.times[positions[rows[i]]]} point {points.start + cols[i]}"

        def reject(bad, name, problem):
            """The samples `bad` fail a check: raise for the first, or hand them all back as faults."""
            bad = bad & keep
            if faults is None and np.any(bad):
                raise InputError(pro_path, name, problem(int(np.argmax(bad))))
            for i in np.flatnonzero(bad):
                faults.append(Fault(self.times[positions[rows[i]]], points.start + int(cols[i]),
                                    InputError(pro_path, name, problem(i))))
            keep[bad] = False

        layers = {}
        for fieldname, name in self.names.items():
            if name is None:
                layers[fieldname] = np.zeros((len(rows), N_LAYERS))
                continue
            values = _read(self.pro, pro_path, name, pro_times, points, self.layer_dim)[rows_in_span, :, cols]
            layers[fieldname] = np.pad(values, ((0, 0), (0, N_LAYERS - self.n_layers)), constant_values=np.nan)
        present = np.isfinite(layers["dz"]) & (layers["dz"] > 0)
        reject(~present.any(axis=1), self.names["dz"], lambda i: f"no snow layer at {where(i)} although WSN_T_ISBA > 0")
        for fieldname, values in layers.items():
            bad = present & np.isnan(values)
            reject(bad.any(axis=1), self.names[fieldname],
                   lambda i, bad=bad: f"NaN in present layer {int(np.argmax(bad[i])) + 1} at {where(i)}")

        snow_depth = _read(self.pro, pro_path, "DSN_T_ISBA", pro_times, points)[rows_in_span, cols]
        reject(np.isnan(snow_depth), "DSN_T_ISBA", lambda i: f"NaN at {where(i)} where a value is required")
        albedo = None
        if self.asn_veg:
            albedo = _read(self.pro, pro_path, "ASN_VEG", pro_times, points)[rows_in_span, cols]
            reject(np.isnan(albedo), "ASN_VEG", lambda i: f"NaN at {where(i)} where a value is required")
        if not keep.all():
            rows, cols, snow_depth, present = rows[keep], cols[keep], snow_depth[keep], present[keep]
            layers = {k: values[keep] for k, values in layers.items()}
            albedo = None if albedo is None else albedo[keep]
            if len(rows) == 0:
                return None

        point = points.start + cols
        layer_array = np.stack([np.where(present, layers[k], 0.0) for k in LAYER_VARIABLES], axis=1)
        columns = {"cos_illum": light.cos_illum, "direct_sw": light.direct_sw, "diffuse_sw": light.diffuse_sw,
                   "cos_zenith": light.cos_zenith}
        columns = {name: values[rows, cols] for name, values in columns.items()}
        columns.update(soil_albedo=self.soil_albedo[point], snow_depth=snow_depth)
        scalars = np.stack([columns[name] for name in SCALAR_VARIABLES], axis=1)
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
        return Samples(layer_array, present, scalars, albedo, None, None, meta)

    def info(self) -> dict:
        """What a shard records about the files its samples come from."""
        names = {k: v if v else "absent from PRO: 0" for k, v in self.names.items()}
        if self.names["soot"] and self.names["dust"]:
            impurities = "SNOWIMP1 (soot) and SNOWIMP2 (dust) from PRO"
        else:
            impurities = ("SNOWIMP1 and/or SNOWIMP2 absent from PRO (e.g. public S2M runs, without impurities): "
                          "the missing ones are set to 0, i.e. clean snow, in the inputs and, with the TARTES "
                          "labeller, in the labels")
        return {
            "region": self.pair.region,
            "season": self.pair.season,
            "pro_file": str(self.pair.pro_file.resolve()),
            "forcing_file": str(self.pair.forcing_file.resolve()),
            "selection": SELECTION,
            "light": LIGHT,
            "light_settings": self.light_settings.describe(),
            "soil_albedo": self.soil_albedo_source,
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
