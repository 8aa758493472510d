"""The on-disk sample format shared by preprocessing, the profile sampler and training.

A shard is one directory (one region and season, or one sampler draw) holding:

    layers.npy    float32 (N, 5, 50)  dz, ssa, density, soot, dust; 0 where no layer
    mask.npy      bool    (N, 50)     layer present
    scalars.npy   float32 (N, 4)      snow_depth, direct_sw, diffuse_sw, cos_sza
    target.npy    float32 (N,)        broadband albedo
    meta.parquet  one row per sample  region, season, time, point, massif, ZS, slope, aspect
    info.json     units, provenance, number of samples

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

N_LAYERS = 50
LAYER_VARIABLES = ("dz", "ssa", "density", "soot", "dust")
SCALAR_VARIABLES = ("snow_depth", "direct_sw", "diffuse_sw", "cos_sza")
UNITS = {
    "dz": "m",
    "ssa": "m2 kg-1",
    "density": "kg m-3",
    "soot": "kg kg-1",
    "dust": "kg kg-1",
    "snow_depth": "m",
    "direct_sw": "W m-2",
    "diffuse_sw": "W m-2",
    "cos_sza": "1",
    "albedo": "1",
}
META_COLUMNS = ("region", "season", "time", "point", "massif", "ZS", "slope", "aspect")
INFO_FILE = "info.json"


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
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        n = self.n_samples
        self.arrays = {  # name: (dtype, shape of one row)
            "layers": (np.float32, (len(LAYER_VARIABLES), N_LAYERS)),
            "mask": (np.bool_, (N_LAYERS,)),
            "scalars": (np.float32, (len(SCALAR_VARIABLES),)),
            "target": (np.float32, ()),
        }
        self.files = {}
        for name, (dtype, row) in self.arrays.items():
            f = open(self.tmp / f"{name}.npy", "wb")
            np.lib.format.write_array_header_2_0(
                f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n, *row)})
            self.files[name] = f
        self.meta_writer: pq.ParquetWriter | None = None
        self.filled = 0

    def write(self, layers: np.ndarray, mask: np.ndarray, scalars: np.ndarray, target: np.ndarray,
              meta: pd.DataFrame) -> None:
        """Append the next rows: layers (n, 5, 50) with absent layers already 0, mask (n, 50),
        scalars (n, 4), target (n,), meta with META_COLUMNS."""
        n = len(target)
        end = self.filled + n
        if end > self.n_samples:
            raise ValueError(f"{self.path}: {end} rows written into a shard of {self.n_samples}")
        missing = set(META_COLUMNS) - set(meta.columns)
        if missing:
            raise ValueError(f"{self.path}: metadata lacks columns {sorted(missing)}")
        for name, values in (("layers", layers), ("mask", mask), ("scalars", scalars), ("target", target)):
            dtype, row = self.arrays[name]
            values = np.ascontiguousarray(values, dtype=dtype)
            if values.shape != (n, *row):
                raise ValueError(f"{self.path}: {name} of shape {values.shape}, expected {(n, *row)}")
            self.files[name].write(values.tobytes())
        self._write_meta(meta.loc[:, list(META_COLUMNS)].reset_index(drop=True))
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
class Shard:
    """A published shard, its arrays memory-mapped (read-only)."""

    path: Path
    info: dict
    layers: np.ndarray
    mask: np.ndarray
    scalars: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def meta(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "meta.parquet")


def is_complete(path: str | Path) -> bool:
    return (Path(path) / INFO_FILE).is_file()


def open_shard(path: str | Path) -> Shard:
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path}: not a complete shard (no {INFO_FILE})")
    info = json.loads((path / INFO_FILE).read_text())

    def load(name):
        return np.load(path / f"{name}.npy", mmap_mode="r")

    return Shard(path, info, load("layers"), load("mask"), load("scalars"), load("target"))


def find_shards(root: str | Path) -> list[Path]:
    """Every complete shard under root, in a stable order."""
    return sorted(p.parent for p in Path(root).rglob(INFO_FILE) if ".tmp-" not in str(p.parent))
