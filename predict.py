"""Apply an emulator to a Crocus run: the emulated broadband snow albedo of every time and point
and, with an emulator of the whole energy budget, the shortwave absorbed in each snow layer and by the soil.

    python predict.py --model data/emulator.pt --pro PRO.nc --forcing FORCING.nc --out OUT.nc
                      [--overwrite] [--device auto] [--time-chunk N] [--point-chunk 512] [--batch-size 4096]
                      [--soil_albedo 0.2|VARIABLE] [--surface_step 900] [--lslope T|F] [--skip-invalid]

The PRO and FORCING files are read, checked and aligned as preprocessing reads them
(preprocessing.crocus_files.Season: same errors, same samples, and the same light, that of Crocus'
last surface step before each time stamp, utils.solar.crocus_light; same --soil_albedo and run
settings), and each sample's light, soil albedo and cos_zenith go to the emulator as preprocessing
gives them to the labeller; a FORCING of another season than the PRO's is refused. On the times common to both
files, where preprocessing takes a sample (snow and daylight for Crocus), the output holds the
emulated values below; where there is snow but no daylight (Crocus does not call TARTES: the dark
rows of docs/labels.md, "Night and no light"), albedo 1 and nothing absorbed, as Crocus writes; fill
(NaN) without snow:

  albedo_emulated       (time, Number_of_points)             1      the emulated albedo
  cos_illum             (time, Number_of_points)             1      the illumination cosine given to the emulator
  absorbed_sw_emulated  (time, snow_layer, Number_of_points) W m-2  shortwave absorbed in each layer (1: the
                                                                    surface), fill below the pack
  soil_sw_emulated      (time, Number_of_points)             W m-2  shortwave absorbed by the soil under the snow

the last two only for an emulator of the energy budget (optical_budget; an albedo-only model such
as cnn_seed writes the albedo alone), with albedo * SW + sum of absorbed + soil = SW, the shortwave
of Crocus' last step (from DIR_SWdown and SCA_SWdown). When the PRO has Crocus' own ASN_VEG: ASN_VEG
alongside, as Crocus wrote it, and the error of albedo_emulated against it at the samples, by point
(variables albedo_error_*), by slope and aspect and overall (attributes), also printed as a table.
And the point metadata and the provenance (emulator file and its hash, source files, versions, git
commit, date).

The files are streamed in blocks of times x points, so memory depends on the block size only; the
output is written under a temporary name and renamed when complete (utils.files). It never replaces
one of the inputs, nor an existing file unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
from tqdm import tqdm

import utils
from models import DOMAIN_WARNING, Emulator
from preprocessing.crocus_files import LIGHT, POINT_CHUNK, SELECTION, Fault, InputError, Pair, Season
from preprocessing.preprocess import add_block_arguments, add_run_arguments, run_settings
from utils.config import UsageError
from utils.devices import device_argument, resolve_device
from utils.domain import outside_domain
from utils.files import written
from utils.provenance import provenance, sha256
from utils.schema import (COS_ILLUM, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, LONG_NAMES, MODEL_SCALARS,
                          SCALAR_VARIABLES, UNITS)
from utils.solar import S2M_LIGHT, LightSettings
from utils.tartes_constants import SOIL_ALBEDO

FILL = 1e20  # SURFEX's fill value; readers decode it to NaN
NO_SAMPLE = ("fill where there is no sample: no snow (WSN_T_ISBA = 0) or no daylight for Crocus (cos_zenith or the "
             "shortwave of its last surface step <= 1e-8)")
DARK = ("where there is snow but no daylight for Crocus (TARTES not called: docs/labels.md, \"Night and no light\"), "
        "{value} as Crocus writes; fill without snow")
STEP_SW = "SW: the shortwave of Crocus' last surface step before the time stamp (utils.solar.crocus_light)"
# Output variables of the samples: name -> (dimensions, attributes); the layered and soil ones for
# emulators of the energy budget only. No CF standard name fits these quantities.
SURFACE = ("time", "Number_of_points")
OUTPUTS = {
    "albedo_emulated": (SURFACE, {
        "long_name": "broadband snow albedo emulated from TARTES (Crocus CSNOWRAD='T17')", "units": UNITS["albedo"],
        "comment": DARK.format(value="1")}),
    "cos_illum": (SURFACE, {
        "long_name": LONG_NAMES["cos_illum"], "units": UNITS["cos_illum"],
        "comment": f"the emulator's input ({LIGHT}); below 0.0017 the sun is behind the slope and all "
                   f"the light is taken as diffuse; {NO_SAMPLE}"}),
    "absorbed_sw_emulated": (("time", "snow_layer", "Number_of_points"), {
        "long_name": "shortwave radiation absorbed in the snow layer, emulated from TARTES (Crocus CSNOWRAD='T17')",
        "units": UNITS["direct_sw"],
        "comment": f"the emulated fraction of the incident shortwave absorbed in the layer times SW, "
                   f"{STEP_SW}; layer 1 at the surface; fill below the pack; {DARK.format(value='0')}"}),
    "soil_sw_emulated": (SURFACE, {
        "long_name": "shortwave radiation crossing the snowpack and absorbed by the soil, emulated from TARTES "
                     "(Crocus CSNOWRAD='T17')", "units": UNITS["direct_sw"],
        "comment": f"the emulated fraction of the incident shortwave absorbed by the soil times SW, "
                   f"{STEP_SW}; albedo_emulated * SW + sum of absorbed_sw_emulated + soil_sw_emulated = "
                   f"SW; {DARK.format(value='0')}"}),
}
BUDGET_OUTPUTS = ("absorbed_sw_emulated", "soil_sw_emulated")
# Per point, the error of albedo_emulated against ASN_VEG over the point's samples.
ERROR_VARIABLES = {
    "albedo_error_samples": ("samples with both albedos", None),
    "albedo_error_mae": ("mean absolute error of albedo_emulated against ASN_VEG", "1"),
    "albedo_error_bias": ("mean error of albedo_emulated against ASN_VEG (albedo_emulated - ASN_VEG)", "1"),
    "albedo_error_rmse": ("root mean square error of albedo_emulated against ASN_VEG", "1"),
}
# Season.points key -> (output name as in PRO files, attributes)
POINT_VARIABLES = {
    "lat": ("latitude", {"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north"}),
    "lon": ("longitude", {"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east"}),
    "ZS": ("ZS", {"long_name": "altitude", "standard_name": "surface_altitude", "units": "m"}),
    "slope": ("slope", {"long_name": "slope angle", "units": "degrees"}),
    "aspect": ("aspect", {"long_name": "slope aspect, clockwise from north; -1 for flat", "units": "degrees"}),
    "massif": ("massif_num", {"long_name": "massif number (-1: unknown)"}),
}
MODEL_COLUMNS = [SCALAR_VARIABLES.index(name) for name in MODEL_SCALARS]  # the models' scalars
MAX_POINTS_PRINTED = 30  # more points: the per-point errors are in the output only
MAX_SKIPPED_LISTED = 1000  # samples listed by name in the output's attribute (all are counted)


# The emulator's input errors (the labeller's validate_inputs): "<field>: row <i>[, layer <k>]: <problem>".
REJECTED_ROW = re.compile(r"(?P<field>[\w +]+): row (?P<row>\d+)(?:, layer (?P<layer>\d+))?: (?P<problem>.+)", re.S)
FORCING_NAMES = {"direct_sw": "DIR_SWdown", "diffuse_sw": "SCA_SWdown",
                 "direct_sw + diffuse_sw": "DIR_SWdown + SCA_SWdown"}
INPUTS = (("--model", "emulator"), ("--pro", "PRO"), ("--forcing", "FORCING"))


def same_file(a: Path, b: Path) -> bool:
    """Whether a and b name the same file: the same path once links are resolved, or the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_paths(model_file: Path, pro_file: Path, forcing_file: Path, out: Path, overwrite: bool) -> None:
    """UsageError unless the inputs are files and `out` is none of them, nor an existing file
    without `overwrite`."""
    for (option, _), path in zip(INPUTS, (model_file, pro_file, forcing_file)):
        if not path.exists():
            raise UsageError(f"{option} {path}: no such file")
        if not path.is_file():
            raise UsageError(f"{option} {path}: not a file")
    for (option, kind), path in zip(INPUTS, (model_file, pro_file, forcing_file)):
        if same_file(out, path):
            raise UsageError(f"--out {out}: is the {kind} file given as {option}; the output must be a new file")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; the output is a netCDF file")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no directory {out.parent} (create it first)")
    if out.exists() and not overwrite:
        raise UsageError(f"--out {out}: exists; --overwrite replaces it")


def load_emulator(model_file: Path, device) -> Emulator:
    """Emulator.load, with a UsageError naming --model or --device when the file or the device is wrong."""
    try:
        device = resolve_device(device)
    except ValueError as e:  # "device 'cuda:7': ..."
        raise UsageError(f"--{e}") from None
    if not model_file.is_file():
        raise UsageError(f"--model {model_file}: no such file")
    try:
        return Emulator.load(model_file, device=device)
    except Exception as e:  # torch.load of another kind of file, another format, other weights
        raise UsageError(f"--model {model_file}: not an emulator file (a file saved by Emulator.save, such as "
                         f"data/emulator.pt or a run's best.pt; {type(e).__name__})") from None


def rejected_profile(error: ValueError, season: Season, emulator: Emulator, profile: dict[str, np.ndarray],
                     scalars: np.ndarray, meta: pd.DataFrame) -> InputError | None:
    """The emulator's "<field>: row <i>[, layer <k>]: <problem>" about the samples of a block as an
    InputError naming the file, its variable, the time and point of that row and, for a layer
    variable, the layer (1 at the top; when the message does not say, the first with which the
    emulator rejects that profile cut below it). None for another kind of message."""
    match = REJECTED_ROW.fullmatch(str(error))
    if match is None or int(match["row"]) >= len(meta):
        return None
    name, row, problem = match["field"], int(match["row"]), match["problem"]
    where = f"at {meta.time.iloc[row]} point {meta.point.iloc[row]}"
    if name in FORCING_NAMES:
        return InputError(season.pair.forcing_file, FORCING_NAMES[name], f"{where}: {problem}")
    if name not in profile:  # cos_illum, computed from the time and the point's position, slope and aspect
        return InputError(season.pair.pro_file, None, f"{name} {where}: {problem}")
    arguments = dict(zip(MODEL_SCALARS, scalars[row:row + 1].T))
    layer = int(match["layer"]) if match["layer"] else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(1, profile["dz"].shape[1] + 1) if layer is None else ():
            try:
                emulator.predict(**{n: values[row:row + 1, :k] for n, values in profile.items()}, **arguments)
            except ValueError:
                layer = k
                break
    variable = season.names.get(name) or name
    return InputError(season.pair.pro_file, variable, f"{problem}: {f'layer {layer} ' if layer else ''}{where}")


def open_season(pro_file: Path, forcing_file: Path, time_chunk: int | None, point_chunk: int, **run) -> Season:
    """The pair opened and checked as preprocessing does, ASN_VEG read where present; run: the
    soil_albedo and light settings of preprocessing.preprocess.run_settings."""
    pair = Pair(pro_file.parent.parent.name, pro_file.stem.removeprefix("PRO_"), pro_file, forcing_file)
    return Season(pair, None, time_chunk, point_chunk, **run)


SEASON_NAME = re.compile(r"\d{10}_\d{10}")  # <first>_<last> time stamps, YYYYMMDDHH: PRO_<season>.nc


def check_pairing(season: Season) -> None:
    """UsageError when the FORCING is not that of the PRO: the seasons in their names (PRO_<season>.nc,
    FORCING_<season>.nc) differ, or the FORCING holds fewer than half of the PRO's times."""
    pro_file, forcing_file = season.pair.pro_file, season.pair.forcing_file
    seasons = pro_file.stem.removeprefix("PRO_"), forcing_file.stem.removeprefix("FORCING_")
    if all(SEASON_NAME.fullmatch(name) for name in seasons) and seasons[0] != seasons[1]:
        raise UsageError(f"--forcing {forcing_file}: the FORCING of season {seasons[1]}, not of the PRO's season "
                         f"{seasons[0]} ({pro_file})")
    axes = season.time_axes
    if axes["common_times"] < axes["pro_times"] / 2:
        raise UsageError(f"--forcing {forcing_file}: holds only {axes['common_times']} of the {axes['pro_times']} "
                         f"times of --pro {pro_file}: not the FORCING of this PRO")


def refused_rows(emulator: Emulator, profile: dict[str, np.ndarray], scalars: np.ndarray) -> dict[int, ValueError]:
    """{row: error} of the samples of a block that the emulator's input checks refuse, found by halves
    (the checks alone, no model run: a few passes for a few bad samples)."""
    def check(rows: np.ndarray) -> dict[int, ValueError]:
        try:
            emulator.outside_domain(**{name: values[rows] for name, values in profile.items()},
                                    **dict(zip(MODEL_SCALARS, scalars[rows].T)))
        except ValueError as e:
            if len(rows) == 1:
                return {int(rows[0]): e}
            return check(rows[:len(rows) // 2]) | check(rows[len(rows) // 2:])
        return {}

    return check(np.arange(len(scalars)))


class AlbedoErrors:
    """albedo_emulated - ASN_VEG at the samples, summed per point: n, sum of errors, of |errors|, of squares."""

    def __init__(self, n_points: int):
        self.sums = np.zeros((4, n_points))

    def add(self, points: np.ndarray, error: np.ndarray) -> None:
        keep = np.isfinite(error)
        points, error = points[keep], error[keep].astype(np.float64)
        for k, values in enumerate((np.ones_like(error), error, np.abs(error), error ** 2)):
            np.add.at(self.sums[k], points, values)

    @staticmethod
    def _statistics(sums: np.ndarray) -> dict[str, np.ndarray]:
        n = sums[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"samples": n.astype(np.int64), "mae": sums[2] / n, "bias": sums[1] / n, "rmse": np.sqrt(sums[3] / n)}

    def by_point(self) -> dict[str, np.ndarray]:
        """Per point: samples, mae, bias, rmse (NaN without a sample)."""
        return self._statistics(self.sums)

    def overall(self) -> dict[str, float]:
        return {k: v.item() for k, v in self._statistics(self.sums.sum(axis=1, keepdims=True)).items()}

    def by_slope_aspect(self, points: dict[str, np.ndarray]) -> pd.DataFrame:
        """Per (slope, aspect) of the points: points, samples, mae, bias, rmse."""
        frame = pd.DataFrame({"slope": points["slope"], "aspect": points["aspect"], "n": self.sums[0],
                              "sum": self.sums[1], "abs": self.sums[2], "square": self.sums[3]})
        groups = frame.groupby(["slope", "aspect"], sort=True)
        sums = groups[["n", "sum", "abs", "square"]].sum()
        table = pd.DataFrame(self._statistics(sums.to_numpy().T), index=sums.index)
        table.insert(0, "points", groups.size())
        return table.reset_index()

    def table(self, points: dict[str, np.ndarray]) -> str:
        """The errors in words: overall, by slope and aspect and, for few points, by point."""
        overall = self.overall()
        if not overall["samples"]:
            return "albedo_emulated - ASN_VEG: no sample with both albedos"

        def line(cells, stats):
            return (cells + f" {stats['samples']:>8d} {stats['mae']:>8.5f} {stats['bias']:>+9.5f} "
                    f"{stats['rmse']:>8.5f}")

        header = f"{'samples':>8} {'MAE':>8} {'bias':>9} {'RMSE':>8}"
        lines = [f"albedo_emulated - ASN_VEG over {overall['samples']} samples: MAE {overall['mae']:.5f}, bias "
                 f"{overall['bias']:+.5f}, RMSE {overall['rmse']:.5f}", "",
                 f"{'slope':>6} {'aspect':>7} {'points':>6} {header}"]
        for row in self.by_slope_aspect(points).itertuples():
            if row.samples:
                lines.append(line(f"{row.slope:>6g} {row.aspect:>7g} {row.points:>6d}", row._asdict()))
        by_point = self.by_point()
        if len(by_point["samples"]) <= MAX_POINTS_PRINTED:
            lines += ["", f"{'point':>6} {'ZS':>7} {'slope':>6} {'aspect':>7} {header}"]
            for i in np.flatnonzero(by_point["samples"]):
                lines.append(line(f"{i:>6d} {points['ZS'][i]:>7g} {points['slope'][i]:>6g} {points['aspect'][i]:>7g}",
                                  {k: v[i] for k, v in by_point.items()}))
        else:
            lines += ["", "per point: the variables albedo_error_* of the output"]
        return "\n".join(lines)


def _create_output(path: Path, season: Season, emulator: Emulator, model_file: Path, chunks: tuple[int, int],
                   asn_veg_attrs: dict | None) -> netCDF4.Dataset:
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    budget = emulator.model.BUDGET
    ds.setncatts({
        "Conventions": "CF-1.8",
        "title": "Broadband snow albedo" + (" and absorbed shortwave" if budget else "") +
                 " emulated by TARTES-Emulator",
        "source": f"TARTES-Emulator {utils.__version__} predict.py, model {emulator.model_name}",
        "history": f"{created} predict.py --model {model_file} --pro {season.pair.pro_file} "
                   f"--forcing {season.pair.forcing_file}",
        "emulator_file": str(model_file.resolve()),
        "emulator_sha256": sha256(model_file),
        "emulator_model": emulator.model_name,
        "emulator_settings": json.dumps(emulator.settings),
        "emulator_outputs": "albedo, absorbed per layer and soil" if budget else "albedo only",
        "pro_file": str(season.pair.pro_file.resolve()),
        "forcing_file": str(season.pair.forcing_file.resolve()),
        "selection": SELECTION,
        "illumination": LIGHT,
        "light_settings": json.dumps(season.light_settings.describe()),
        "soil_albedo": season.soil_albedo_source,
        "software": json.dumps(provenance()),
        "created": created,
    })
    ds.createDimension("time", len(season.times))
    ds.createDimension("snow_layer", season.n_layers)
    ds.createDimension("Number_of_points", season.n_points)
    start = season.times[0]
    time = ds.createVariable("time", np.float64, ("time",))
    time.setncatts({"standard_name": "time", "units": f"seconds since {start:%Y-%m-%d %H:%M:%S}",
                    "calendar": "standard"})
    time[:] = ((season.times - start) / pd.Timedelta(seconds=1)).to_numpy()
    layer = ds.createVariable("snow_layer", np.int32, ("snow_layer",))
    layer.setncatts({"long_name": "snow layer, 1 at the surface (Crocus' order)", "units": "1"})
    layer[:] = np.arange(1, season.n_layers + 1)
    for key, (name, attrs) in POINT_VARIABLES.items():
        var = ds.createVariable(name, np.int32 if key == "massif" else np.float64, ("Number_of_points",))
        var.setncatts(attrs)
        var[:] = season.points[key]

    def field(name, dtype, dims, attrs):
        sizes = {"time": chunks[0], "snow_layer": season.n_layers, "Number_of_points": chunks[1]}
        var = ds.createVariable(name, dtype, dims, fill_value=FILL, zlib=True, complevel=4, shuffle=True,
                                chunksizes=[sizes[d] for d in dims])
        var.setncatts({k: v for k, v in attrs.items() if k not in ("_FillValue", "missing_value")})
        var.coordinates = "latitude longitude"
        return var

    for name, (dims, attrs) in OUTPUTS.items():
        if budget or name not in BUDGET_OUTPUTS:
            field(name, np.float32, dims, attrs)
    if asn_veg_attrs is not None:
        # Crocus writes units "-" for an albedo; CF's dimensionless unit is "1", as albedo_emulated's.
        field("ASN_VEG", np.float64, SURFACE, {**asn_veg_attrs, "units": "1", "comment": "copied from the PRO file "
              "(patch 0) as Crocus wrote it: 1 where TARTES did not run (night), fill without snow"})
    return ds


@dataclass
class Tally:
    """What the blocks of a file add up to."""

    samples: int = 0
    outside: int = 0
    outside_variables: set = field(default_factory=set)
    errors: AlbedoErrors | None = None
    skipped: list[str] | None = None  # with --skip-invalid: the samples failing the input checks, in words


def _model_inputs(samples) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The model's float32 layers and scalars of samples (on which Emulator.predict checks the
    domain too; each sample's soil_albedo and cos_zenith among them), and the profiles as the
    emulator takes them (NaN below the pack)."""
    layers = samples.layers.astype(np.float32)
    scalars = samples.scalars[:, MODEL_COLUMNS].astype(np.float32)
    return layers, scalars, {name: np.where(samples.mask, layers[:, i], np.nan)
                                  for i, name in enumerate(LAYER_VARIABLES)}


def _emulate_block(ds: netCDF4.Dataset, season: Season, emulator: Emulator, positions: np.ndarray, points: slice,
                   batch_size: int, tally: Tally) -> None:
    """Emulate the samples of one block and write its outputs: at the times with snow where Crocus
    did not call TARTES (no daylight), albedo 1 and nothing absorbed, as Crocus; fill elsewhere."""
    times, n_points = slice(positions[0], positions[-1] + 1), points.stop - points.start
    blank = np.full((len(positions), n_points), np.nan, dtype=np.float32)
    out = {"albedo_emulated": blank, "cos_illum": blank.copy()}
    if emulator.model.BUDGET:
        out["absorbed_sw_emulated"] = np.full((len(positions), season.n_layers, n_points), np.nan, dtype=np.float32)
        out["soil_sw_emulated"] = blank.copy()
    faults: list[Fault] | None = None if tally.skipped is None else []
    samples = season.samples(positions, points, faults)
    dark = season.read_pro("WSN_T_ISBA", positions, points) > 0  # snow; the samples are the daylight ones
    for fault in faults or ():  # the files' faults: fill, not taken for night
        dark[season.times.get_loc(fault.time) - positions[0], fault.point - points.start] = False
        tally.skipped.append(str(fault.error))
    if samples is not None:
        rows = season.times.get_indexer(samples.meta.time) - positions[0]
        cols = samples.meta.point.to_numpy() - points.start
        dark[rows, cols] = False
        layers, scalars, profile = _model_inputs(samples)
        if tally.skipped is not None:
            refused = refused_rows(emulator, profile, scalars)
            if refused:
                tally.skipped += [str(rejected_profile(e, season, emulator, {n: v[[r]] for n, v in profile.items()},
                                                       scalars[[r]], samples.meta.iloc[[r]]) or e)
                                  for r, e in refused.items()]
                keep = ~np.isin(np.arange(len(rows)), list(refused))
                samples = replace(samples, layers=samples.layers[keep], mask=samples.mask[keep],
                                  scalars=samples.scalars[keep], meta=samples.meta[keep])
                rows, cols = rows[keep], cols[keep]
                layers, scalars, profile = _model_inputs(samples)
        outside, variables = outside_domain(emulator.domain, layers, samples.mask, scalars)
        tally.samples, tally.outside = tally.samples + len(rows), tally.outside + int(outside.sum())
        tally.outside_variables.update(variables)
        arguments = dict(zip(MODEL_SCALARS, scalars.T))
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=DOMAIN_WARNING)
                if emulator.model.BUDGET:
                    budget = emulator.energy_budget(**profile, **arguments, batch_size=batch_size)
                else:
                    budget = None
                    albedo = emulator.predict(**profile, **arguments, batch_size=batch_size)
        except ValueError as e:
            raise rejected_profile(e, season, emulator, profile, scalars, samples.meta) or InputError(
                season.pair.pro_file, None, f"the emulator rejects a profile between {season.times[positions[0]]} and "
                f"{season.times[positions[-1]]}, points {points.start} to {points.stop - 1}: {e}") from e
        out["cos_illum"][rows, cols] = scalars[:, COS_ILLUM]
        if budget is not None:
            albedo = budget.albedo
            shortwave = samples.scalars[:, DIRECT_SW] + samples.scalars[:, DIFFUSE_SW]  # W m-2, as in the FORCING
            out["absorbed_sw_emulated"][rows, :, cols] = budget.absorbed[:, :season.n_layers] * shortwave[:, None]
            out["soil_sw_emulated"][rows, cols] = budget.soil * shortwave
        out["albedo_emulated"][rows, cols] = albedo
    if dark.any():  # docs/labels.md, "Night and no light"
        out["albedo_emulated"][dark] = 1.0
        if emulator.model.BUDGET:
            present = season.read_pro(season.names["dz"], positions, points, layered=True) > 0  # NaN: absent
            out["absorbed_sw_emulated"][dark[:, None, :] & present] = 0.0
            out["soil_sw_emulated"][dark] = 0.0
    for name, values in out.items():
        index = (times, slice(None), points) if values.ndim == 3 else (times, points)
        ds[name][index] = np.ma.masked_invalid(values)
    if tally.errors is not None:
        crocus = season.read_pro("ASN_VEG", positions, points)
        ds["ASN_VEG"][times, points] = np.ma.masked_invalid(crocus)
        if samples is not None:
            tally.errors.add(cols + points.start, out["albedo_emulated"][rows, cols] - crocus[rows, cols])


def _write_errors(ds: netCDF4.Dataset, errors: AlbedoErrors, points: dict[str, np.ndarray]) -> str:
    """The errors against ASN_VEG into the output (per-point variables, attributes); returns the table."""
    for (name, (long_name, units)), values in zip(ERROR_VARIABLES.items(), errors.by_point().values()):
        var = ds.createVariable(name, np.int32 if units is None else np.float64, ("Number_of_points",),
                                **({} if units is None else {"fill_value": FILL}))
        var.setncatts({"long_name": f"{long_name}, over the point's samples", **({"units": units} if units else {})})
        var[:] = values if units is None else np.ma.masked_invalid(values)
    overall = errors.overall()
    summary = (f"MAE {overall['mae']:.6f}, bias {overall['bias']:+.6f}, RMSE {overall['rmse']:.6f} over "
               f"{overall['samples']} samples" if overall["samples"] else "no sample")
    table = errors.table(points)
    ds["albedo_emulated"].setncattr("error_against_ASN_VEG", summary)
    ds.setncatts({"albedo_error_against_ASN_VEG": summary, "albedo_error_samples": overall["samples"],
                  **({f"albedo_error_{k}": overall[k] for k in ("mae", "bias", "rmse")} if overall["samples"] else {}),
                  "albedo_error_by_slope_aspect": table})
    return table


def predict_files(model: str | Path, pro_file: str | Path, forcing_file: str | Path, out: str | Path, *,
                  device: str | None = "auto", time_chunk: int | None = None, point_chunk: int = POINT_CHUNK,
                  batch_size: int = 4096, overwrite: bool = False, soil_albedo: float | str = SOIL_ALBEDO,
                  light: LightSettings = S2M_LIGHT, skip_invalid: bool = False) -> Path:
    """Write `out`, the emulated albedo (and energy budget) of the pair (see the module's
    docstring); returns its path. With ASN_VEG in the PRO, prints the table of the errors against it.
    soil_albedo (a number, or a per-point variable of the files) and light (the run's settings) as
    preprocessing.preprocess takes them. With skip_invalid, the samples that fail a check of the files
    (Season.samples: no layer, NaN in a present layer, NaN snow depth or light) or that the emulator's
    input checks refuse are left out (fill), listed in the output's attribute samples_skipped_list
    and counted in a printed line, instead of stopping at the first.

    Raises UsageError when an input file is missing, the model file is not an emulator, the device
    is not here, `out` is one of the inputs, exists (without `overwrite`) or is in a directory that
    does not exist, or the FORCING is not that of the PRO (check_pairing); preprocessing's
    InputError on a bad PRO or FORCING file (with skip_invalid, only for what no sample can be
    left out for: a missing variable, NaN snow mass, ...), and (without skip_invalid) an InputError
    naming the time, point and layer of a profile that the emulator rejects.
    """
    model_file, pro_file, forcing_file, out = Path(model), Path(pro_file), Path(forcing_file), Path(out)
    check_paths(model_file, pro_file, forcing_file, out, overwrite)
    emulator = load_emulator(model_file, device)
    season = open_season(pro_file, forcing_file, time_chunk, point_chunk, soil_albedo=soil_albedo, light=light)
    table = None
    try:
        check_pairing(season)
        chunks = (min(season.time_chunk, len(season.times)), season.point_chunk)
        asn_veg = season.pro["ASN_VEG"].attrs if "ASN_VEG" in season.pro else None
        tally = Tally(errors=AlbedoErrors(season.n_points) if asn_veg is not None else None,
                      skipped=[] if skip_invalid else None)
        with written(out) as tmp, _create_output(tmp, season, emulator, model_file, chunks, asn_veg) as ds, \
                tqdm(total=season.n_blocks(), desc=out.name, unit="block",
                     mininterval=1 if sys.stderr.isatty() else 30) as bar:
            for positions, points in season.blocks():
                _emulate_block(ds, season, emulator, positions, points, batch_size, tally)
                bar.update()
            ds.setncatts({"samples": tally.samples, "samples_outside_training_domain": tally.outside,
                          "variables_outside_training_domain": ", ".join(sorted(tally.outside_variables)) or "none"})
            if tally.skipped is not None:
                listed = tally.skipped[:MAX_SKIPPED_LISTED]
                more = len(tally.skipped) - len(listed)
                ds.setncatts({"samples_skipped": len(tally.skipped), "samples_skipped_list": "\n".join(
                    listed + ([f"and {more} more"] if more else [])) or "none"})
            if tally.errors is not None:
                table = _write_errors(ds, tally.errors, season.points)
    finally:
        season.close()
    if table is not None:
        print(table)
    if tally.skipped:
        print(f"skipped {len(tally.skipped)} sample(s) that fail the input checks (fill in the output, listed in its "
              f"attribute samples_skipped_list), the first: {tally.skipped[0]}")
    if tally.outside:
        warnings.warn(f"{out}: {tally.outside} of {tally.samples} samples lie outside the input domain of the "
                      f"emulator's training data ({', '.join(sorted(tally.outside_variables))}); their outputs are "
                      "extrapolated", stacklevel=2)
    return out


EPILOG = textwrap.fill(
    "Outputs: albedo_emulated and cos_illum; with an emulator of the energy budget (optical_budget) also "
    "absorbed_sw_emulated (W m-2 per layer) and soil_sw_emulated (W m-2). An albedo-only emulator (cnn_seed) "
    "writes the albedo only (albedo_emulated and cos_illum). With ASN_VEG in the PRO file, the error of "
    "albedo_emulated against it by point, slope and aspect, printed and in the output.", width=100)


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when the output is written, 1 on a bad PRO or FORCING file; bad options
    (UsageError) exit with status 2 after one line naming the option."""
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="emulator file (data/emulator.pt, or a run's best.pt)")
    parser.add_argument("--pro", required=True, help="Crocus PRO file")
    parser.add_argument("--forcing", required=True, help="its SAFRAN FORCING file")
    parser.add_argument("--out", required=True, help="netCDF file to write: a new file, never one of the inputs")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--device", type=device_argument, default="auto",
                        help="cpu, cuda, cuda:N or auto (cuda when available)")
    add_block_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=4096, help="profiles per forward pass")
    add_run_arguments(parser)
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave out (fill) the samples that fail the checks of the files or of the emulator's "
                             "inputs instead of stopping at the first; they are listed in the output's attribute "
                             "samples_skipped_list")
    args = parser.parse_args(argv)
    for option, value in (("--time-chunk", args.time_chunk), ("--point-chunk", args.point_chunk),
                          ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            parser.error(f"{option}: must be >= 1, got {value}")
    try:
        out = predict_files(args.model, args.pro, args.forcing, args.out, device=args.device,
                            time_chunk=args.time_chunk, point_chunk=args.point_chunk, batch_size=args.batch_size,
                            overwrite=args.overwrite, skip_invalid=args.skip_invalid, **run_settings(args))
    except UsageError as e:
        parser.error(str(e))
    except InputError as e:
        print(f"predict.py: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
