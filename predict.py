"""Apply an emulator to a Crocus run: the emulated broadband snow albedo of every time and point.

    python predict.py --model data/emulator.pt --pro PRO.nc --forcing FORCING.nc --out OUT.nc
                      [--overwrite] [--device auto] [--time-chunk N] [--point-chunk 512] [--batch-size 4096]

The PRO and FORCING files are read, checked and aligned by preprocessing.preprocess (same errors,
same samples): the output holds `albedo_emulated` (time, Number_of_points) on the times common to
both files, NaN (the fill value) where preprocessing takes no sample, i.e. no snow, no shortwave or
the sun down; Crocus' own `ASN_VEG` alongside when the PRO has it, as Crocus wrote it; the point
metadata; and the provenance (emulator file and its hash, source files, versions, date).

The files are streamed in blocks of times x points, so memory depends on the block size only; the
output is written under a temporary name and renamed when complete. It never replaces one of the
inputs, nor an existing file unless --overwrite is given.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import utils
from models import Emulator
from preprocessing.preprocess import POINT_CHUNK, SELECTION, InputError, Pair, Season, add_block_arguments
from preprocessing.shards import LAYER_VARIABLES
from utils.config import UsageError
from utils.devices import device_argument, resolve_device
from utils.features import ILLUMINATION, outside_domain
from utils.provenance import sha256

FILL = 1e20  # SURFEX's fill value; readers decode it to NaN
ALBEDO_ATTRS = {
    "long_name": "broadband snow albedo emulated from TARTES (Crocus CSNOWRAD='T17')",
    "units": "1",
    "comment": "fill where there is no sample: no snow (WSN_T_ISBA = 0), no shortwave (DIR_SWdown + "
               "SCA_SWdown = 0) or the sun down (cos_sza = 0)",
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
DOMAIN_WARNING = ".*outside the input domain.*"  # Emulator.predict's, summed up once per file here


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
                     illumination: np.ndarray, meta: pd.DataFrame) -> InputError | None:
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
    if name not in profile:  # cos_sza, computed from the time and the point's position
        return InputError(season.pair.pro_file, None, f"{name} {where}: {problem}")
    scalars = dict(zip(ILLUMINATION, illumination[row:row + 1].T))
    layer = int(match["layer"]) if match["layer"] else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(1, profile["dz"].shape[1] + 1) if layer is None else ():
            try:
                emulator.predict(**{n: values[row:row + 1, :k] for n, values in profile.items()}, **scalars)
            except ValueError:
                layer = k
                break
    variable = season.names.get(name) or name
    return InputError(season.pair.pro_file, variable, f"{problem}: {f'layer {layer} ' if layer else ''}{where}")


def open_season(pro_file: Path, forcing_file: Path, time_chunk: int | None, point_chunk: int) -> Season:
    """The pair opened and checked by preprocessing, without a target: nothing is labelled."""
    pair = Pair(pro_file.parent.parent.name, pro_file.stem.removeprefix("PRO_"), pro_file, forcing_file)
    return Season(pair, None, time_chunk, point_chunk)


def _create_output(path: Path, season: Season, emulator: Emulator, model_file: Path, chunks: tuple[int, int],
                   asn_veg_attrs: dict | None) -> netCDF4.Dataset:
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ds.setncatts({
        "Conventions": "CF-1.8",
        "title": "Broadband snow albedo emulated by TARTES-Emulator",
        "source": f"TARTES-Emulator {utils.__version__} predict.py, model {emulator.model_name}",
        "history": f"{created} predict.py --model {model_file} --pro {season.pair.pro_file} "
                   f"--forcing {season.pair.forcing_file}",
        "emulator_file": str(model_file.resolve()),
        "emulator_sha256": sha256(model_file),
        "emulator_model": emulator.model_name,
        "emulator_settings": json.dumps(emulator.settings),
        "pro_file": str(season.pair.pro_file.resolve()),
        "forcing_file": str(season.pair.forcing_file.resolve()),
        "selection": SELECTION,
        "software": json.dumps({"tartes_emulator": utils.__version__, "torch": torch.__version__,
                                "numpy": np.__version__, "netCDF4": netCDF4.__version__}),
        "created": created,
    })
    ds.createDimension("time", len(season.times))
    ds.createDimension("Number_of_points", season.n_points)
    start = season.times[0]
    time = ds.createVariable("time", np.float64, ("time",))
    time.setncatts({"standard_name": "time", "units": f"seconds since {start:%Y-%m-%d %H:%M:%S}",
                    "calendar": "standard"})
    time[:] = ((season.times - start) / pd.Timedelta(seconds=1)).to_numpy()
    for key, (name, attrs) in POINT_VARIABLES.items():
        var = ds.createVariable(name, np.int32 if key == "massif" else np.float64, ("Number_of_points",))
        var.setncatts(attrs)
        var[:] = season.points[key]

    def field(name, dtype, attrs):
        var = ds.createVariable(name, dtype, ("time", "Number_of_points"), fill_value=FILL, zlib=True,
                                complevel=4, shuffle=True, chunksizes=chunks)
        var.setncatts({k: v for k, v in attrs.items() if k not in ("_FillValue", "missing_value")})
        var.coordinates = "latitude longitude"
        return var

    field("albedo_emulated", np.float32, ALBEDO_ATTRS)
    if asn_veg_attrs is not None:
        # Crocus writes units "-" for an albedo; CF's dimensionless unit is "1", as albedo_emulated's.
        field("ASN_VEG", np.float64, {**asn_veg_attrs, "units": "1", "comment": "copied from the PRO file "
                                      "(patch 0) as Crocus wrote it: 1 where TARTES did not run (night), fill "
                                      "without snow"})
    return ds


def predict_files(model: str | Path, pro_file: str | Path, forcing_file: str | Path, out: str | Path, *,
                  device: str | None = "auto", time_chunk: int | None = None, point_chunk: int = POINT_CHUNK,
                  batch_size: int = 4096, overwrite: bool = False) -> Path:
    """Write `out`, the emulated albedo of the pair (see the module's docstring); returns its path.

    Raises UsageError when an input file is missing, the model file is not an emulator, the device
    is not here, or `out` is one of the inputs or exists (without `overwrite`); preprocessing's
    InputError on a bad PRO or FORCING file, and an InputError naming the time, point and layer of a
    profile that the emulator rejects.
    """
    model_file, pro_file, forcing_file, out = Path(model), Path(pro_file), Path(forcing_file), Path(out)
    check_paths(model_file, pro_file, forcing_file, out, overwrite)
    emulator = load_emulator(model_file, device)
    season = open_season(pro_file, forcing_file, time_chunk, point_chunk)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        chunks = (min(season.time_chunk, len(season.times)), season.point_chunk)
        asn_veg = season.pro["ASN_VEG"].attrs if "ASN_VEG" in season.pro else None
        n_samples, n_outside, outside_variables = 0, 0, set()
        with _create_output(tmp, season, emulator, model_file, chunks, asn_veg) as ds, \
                tqdm(total=season.n_blocks(), desc=out.name, unit="block",
                     mininterval=1 if sys.stderr.isatty() else 30) as bar:
            for positions, points in season.blocks():
                times = slice(positions[0], positions[-1] + 1)
                albedo = np.full((len(positions), points.stop - points.start), np.nan, dtype=np.float32)
                samples = season.samples(positions, points)
                if samples is not None:
                    layers, present, scalars, _, meta = samples
                    rows = season.times.get_indexer(meta.time) - positions[0]
                    cols = meta.point.to_numpy() - points.start
                    # The model's float32 inputs, on which Emulator.predict checks the domain too; shard
                    # order of scalars: snow_depth, direct_sw, diffuse_sw, cos_sza.
                    layers, illumination = layers.astype(np.float32), scalars[:, [3, 1, 2]].astype(np.float32)
                    outside, variables = outside_domain(emulator.domain, layers, present, illumination)
                    n_samples, n_outside = n_samples + len(rows), n_outside + int(outside.sum())
                    outside_variables.update(variables)
                    profile = {name: np.where(present, layers[:, i], np.nan) for i, name in enumerate(LAYER_VARIABLES)}
                    try:
                        with warnings.catch_warnings():
                            warnings.filterwarnings("ignore", message=DOMAIN_WARNING)
                            albedo[rows, cols] = emulator.predict(**profile, **dict(zip(ILLUMINATION, illumination.T)),
                                                                  batch_size=batch_size)
                    except ValueError as e:
                        raise rejected_profile(e, season, emulator, profile, illumination, meta) or InputError(
                            pro_file, None, f"the emulator rejects a profile between {season.times[positions[0]]} and "
                            f"{season.times[positions[-1]]}, points {points.start} to {points.stop - 1}: {e}") from e
                ds["albedo_emulated"][times, points] = np.ma.masked_invalid(albedo)
                if asn_veg is not None:
                    crocus = season.read_pro("ASN_VEG", positions, points)
                    ds["ASN_VEG"][times, points] = np.ma.masked_invalid(crocus)
                bar.update()
            ds.setncatts({"samples": n_samples, "samples_outside_training_domain": n_outside,
                          "variables_outside_training_domain": ", ".join(sorted(outside_variables)) or "none"})
        os.replace(tmp, out)
    finally:
        season.close()
        tmp.unlink(missing_ok=True)
    if n_outside:
        warnings.warn(f"{out}: {n_outside} of {n_samples} samples lie outside the input domain of the emulator's "
                      f"training data ({', '.join(sorted(outside_variables))}); their albedo is extrapolated",
                      stacklevel=2)
    return out


def main(argv: list[str] | None = None) -> int:
    """The command line: 0 when the output is written, 1 on a bad PRO or FORCING file; bad options
    (UsageError) exit with status 2 after one line naming the option."""
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0],
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
    args = parser.parse_args(argv)
    for option, value in (("--time-chunk", args.time_chunk), ("--point-chunk", args.point_chunk),
                          ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            parser.error(f"{option}: must be >= 1, got {value}")
    try:
        out = predict_files(args.model, args.pro, args.forcing, args.out, device=args.device,
                            time_chunk=args.time_chunk, point_chunk=args.point_chunk, batch_size=args.batch_size,
                            overwrite=args.overwrite)
    except UsageError as e:
        parser.error(str(e))
    except InputError as e:
        print(f"predict.py: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
