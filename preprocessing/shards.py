"""The on-disk sample format shared by preprocessing, the profile sampler and training.

A shard is one directory (one region and season, or one sampler draw) holding the arrays of
utils/schema.py, one row per sample:

    layers.npy    float32 (N, 5, 50)  dz, ssa, density, soot, dust; 0 where no layer
    mask.npy      bool    (N, 50)     layer present
    scalars.npy   float32 (N, 6)      cos_illum, direct_sw, diffuse_sw, soil_albedo, cos_zenith, snow_depth
    albedo.npy    float32 (N,)        broadband albedo
    absorbed.npy  float32 (N, 50)     fraction of the incident shortwave absorbed per layer, 0 where no layer
    soil.npy      float32 (N,)        fraction absorbed by the soil
    meta.parquet  one row per sample  region, season, time, point, massif, ZS, slope, aspect
    info.json     format, units, provenance, number of samples

`.npy` files open memory-mapped, so training reads random rows of datasets larger than RAM;
they are written by appending, so writing needs the memory of one chunk only.
A shard is written under a temporary name and renamed when complete: a directory with
`info.json` under its final name is always whole.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from utils.files import temporary_name
from utils.schema import LAYER_VARIABLES, META_COLUMNS, N_LAYERS, SCALAR_VARIABLES, UNITS

SHARD_FORMAT = "tartes-emulator-shard/3"  # 2: absorbed profile and soil; 3: the light of Crocus' step, soil_albedo, cos_zenith
INFO_FILE = "info.json"
ARRAYS = {  # name: (dtype, shape of one row)
    "layers": (np.float32, (len(LAYER_VARIABLES), N_LAYERS)),
    "mask": (np.bool_, (N_LAYERS,)),
    "scalars": (np.float32, (len(SCALAR_VARIABLES),)),
    "albedo": (np.float32, ()),
    "absorbed": (np.float32, (N_LAYERS,)),
    "soil": (np.float32, ()),
}


@dataclass
class Arrays:
    """The ARRAYS of rows of a shard, absent layers 0."""

    layers: np.ndarray
    mask: np.ndarray
    scalars: np.ndarray
    albedo: np.ndarray
    absorbed: np.ndarray
    soil: np.ndarray

    def __len__(self) -> int:
        return len(self.albedo)


@dataclass
class Samples(Arrays):
    """Rows for a shard, with their metadata (META_COLUMNS)."""

    meta: pd.DataFrame = None


class ShardWriter:
    """Fills a shard of known size chunk by chunk, then publishes it atomically.

    Arrays are appended to their `.npy` files and metadata to a Parquet file as they come, so
    memory stays that of one chunk whatever the shard's size. Use as a context manager: on an
    exception the temporary directory is removed and nothing appears under the final name.
    """

    def __init__(self, path: str | Path, n_samples: int, info: dict):
        self.path = Path(path)
        self.n_samples = int(n_samples)
        self.info = dict(info)
        self.tmp = temporary_name(self.path)  # the project's temporary names (utils.files)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        n = self.n_samples
        self.files = {}
        for name, (dtype, row) in ARRAYS.items():
            f = open(self.tmp / f"{name}.npy", "wb")
            np.lib.format.write_array_header_2_0(
                f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n, *row)})
            self.files[name] = f
        self.meta_writer: pq.ParquetWriter | None = None
        self.filled = 0

    def write(self, samples: Samples) -> None:
        """Append the next rows."""
        n = len(samples)
        end = self.filled + n
        if end > self.n_samples:
            raise ValueError(f"{self.path}: {end} rows written into a shard of {self.n_samples}")
        missing = set(META_COLUMNS) - set(samples.meta.columns)
        if missing:
            raise ValueError(f"{self.path}: metadata lacks columns {sorted(missing)}")
        for name, (dtype, row) in ARRAYS.items():
            values = np.ascontiguousarray(getattr(samples, name), dtype=dtype)
            if values.shape != (n, *row):
                raise ValueError(f"{self.path}: {name} of shape {values.shape}, expected {(n, *row)}")
            self.files[name].write(values.tobytes())
        self._write_meta(samples.meta.loc[:, list(META_COLUMNS)].reset_index(drop=True))
        self.filled = end

    def _write_meta(self, meta: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(meta, preserve_index=False)
        if self.meta_writer is None:
            self.meta_writer = pq.ParquetWriter(self.tmp / "meta.parquet", table.schema)
        self.meta_writer.write_table(table.cast(self.meta_writer.schema))

    def close(self) -> Path:
        if self.filled != self.n_samples:
            raise ValueError(f"{self.path}: {self.filled} of {self.n_samples} rows written")
        for f in self.files.values():
            f.close()
        if self.meta_writer is None:
            self._write_meta(pd.DataFrame(columns=list(META_COLUMNS)))
        self.meta_writer.close()
        info = {
            "format": SHARD_FORMAT,
            "n_samples": self.n_samples,
            "layer_variables": list(LAYER_VARIABLES),
            "scalar_variables": list(SCALAR_VARIABLES),
            "units": UNITS,
            **self.info,
        }
        # info.json last: its presence marks a complete shard, even inside the temporary directory.
        (self.tmp / INFO_FILE).write_text(json.dumps(info, indent=1, default=str))
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        for f in self.files.values():
            f.close()
        if self.meta_writer is not None:
            self.meta_writer.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


@dataclass
class Shard(Arrays):
    """A published shard, its ARRAYS memory-mapped (read-only)."""

    path: Path = None
    info: dict = None

    def meta(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "meta.parquet")


def is_complete(path: str | Path) -> bool:
    return (Path(path) / INFO_FILE).is_file()


def shard_format(path: str | Path) -> str | None:
    """The format a complete shard records (None for shards older than format 2)."""
    return json.loads((Path(path) / INFO_FILE).read_text()).get("format")


def open_shard(path: str | Path) -> Shard:
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path}: not a complete shard (no {INFO_FILE})")
    info = json.loads((path / INFO_FILE).read_text())
    if info.get("format") != SHARD_FORMAT:
        raise ValueError(f"{path}: a shard of format {info.get('format', '1 (no absorbed profile)')}, not "
                         f"{SHARD_FORMAT}: re-run preprocessing into a new directory (or remove this one)")
    return Shard(*(np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS), path=path, info=info)


def find_shards(root: str | Path) -> list[Path]:
    """Every complete shard under root, in a stable order."""
    return sorted(p.parent for p in Path(root).rglob(INFO_FILE) if ".tmp-" not in str(p.parent))
