"""The evaluation set of a trained emulator: one row per sample of a split of its run, with the
sample's metadata, a summary of its inputs, the TARTES target and the emulator's prediction.

    df = evaluation_set("runs/cnn_seed-20260101-120000")       # the test seasons of that run
    north = select(df, aspect=0, altitude=(1800, 2400), start="2014-01-01", end="2014-04-01", hours=[11, 12])

A run is either a run directory of main.py (best.pt, splits.json, config.json, metrics.csv) or a
directory holding a shipped model (data/: emulator.pt, emulator_report.json, and when shipped
emulator_splits.json and emulator_metrics.csv). `open_run()` without a path takes the default run:
the run directory that produced the shipped model data/emulator.pt (`python main.py --ship true`)
when it is still here and holds that same model, else data/ itself (without emulator_splits.json,
its seasons are split again from the configuration saved in the model).

Columns: region, season, time (UTC; the SAFRAN time stamp, which ends the hour the radiation
belongs to; none for the wide-domain profiles of preprocessing/profile_sampler.py), point, massif, ZS (m), slope, aspect (degrees, -1 flat), row (in its shard); the
inputs summary surface_ssa (m2 kg-1), surface_density (kg m-3), surface_soot and surface_dust
(kg kg-1) of the top layer, snow_depth (m, the sum of the layer thicknesses), n_layers, cos_sza,
direct_sw and diffuse_sw (W m-2), direct_fraction; target (the shard's label), prediction
(`Emulator.predict` of the profile) and error (prediction - target).

The set is computed once, in chunks (shards may be larger than memory), and cached as
evaluation_<split>.parquet next to the run (cache/evaluation/ for data/), with a fingerprint of the
model file (SHA-256) and of the shards (info.json, file sizes and modification times) in the
parquet metadata: a changed model or changed data recomputes it.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from dataset import split_shards
from models import Emulator
from preprocessing.shards import INFO_FILE, LAYER_VARIABLES, SCALAR_VARIABLES, open_shard
from training import METRICS, SELECTED
from utils.devices import resolve_device
from utils.provenance import sha256

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DIR = REPO / "data"
SHIPPED_MODEL, SHIPPED_REPORT = "emulator.pt", "emulator_report.json"
SHIPPED_METRICS, SHIPPED_SPLITS = "emulator_metrics.csv", "emulator_splits.json"  # when shipped
EVALUATION_FORMAT = "evaluation/1"  # bump when the columns change: older caches are then recomputed
FINGERPRINT_KEY = b"tartes_emulator_fingerprint"
CHUNK = 16384  # rows per prediction pass: about 35 MB of float64 layer arrays
SSA, DENSITY, SOOT, DUST = (LAYER_VARIABLES.index(name) for name in ("ssa", "density", "soot", "dust"))
DIRECT_SW, DIFFUSE_SW, COS_SZA = (SCALAR_VARIABLES.index(name) for name in ("direct_sw", "diffuse_sw", "cos_sza"))
UNITS = {"ZS": "m", "slope": "degrees", "aspect": "degrees", "surface_ssa": "m2 kg-1", "surface_density": "kg m-3",
         "surface_soot": "kg kg-1", "surface_dust": "kg kg-1", "snow_depth": "m", "n_layers": "1", "cos_sza": "1",
         "direct_sw": "W m-2", "diffuse_sw": "W m-2", "direct_fraction": "1", "target": "1", "prediction": "1",
         "error": "1"}


@dataclass
class Run:
    """Where a trained model and its data are."""

    path: Path  # the run directory, or the directory of a shipped model
    model_file: Path
    splits: dict[str, list[Path]]  # split name -> shard directories
    config: dict  # the training configuration
    metrics_file: Path | None  # per-epoch metrics (metrics.csv), when there are any
    report_file: Path | None  # the test report (test_report.json), when there is one
    cache_dir: Path  # where the evaluation sets are cached

    @property
    def name(self) -> str:
        return f"{self.config.get('model', 'model')} ({self.path.name})"


def _repo_path(path: str | Path) -> Path:
    """Paths recorded by main.py are relative to where it ran, normally the repository root."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO / path


def existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def default_run() -> Path:
    """The run behind the shipped model (data/emulator.pt), or data/ itself."""
    report = SHIPPED_DIR / SHIPPED_REPORT
    model = SHIPPED_DIR / SHIPPED_MODEL
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no shipped model, hence no default run; train it with `python main.py` "
                                "(which ships to data/), or name a run directory")
    if report.is_file():
        run_dir = _repo_path(json.loads(report.read_text())["run_dir"])
        # The run directory may have been deleted or reused since it shipped.
        if (run_dir / SELECTED).is_file() and sha256(run_dir / SELECTED) == sha256(model):
            return run_dir
    return SHIPPED_DIR


def read_splits(path: Path) -> dict[str, list[Path]]:
    return {name: [_repo_path(p) for p in paths] for name, paths in json.loads(path.read_text()).items()}


def open_run(path: str | Path | None = None) -> Run:
    """The run in `path` (a run directory, or a directory with a shipped emulator.pt); None: the default run."""
    path = Path(path) if path is not None else default_run()
    if (path / SELECTED).is_file():
        for name in ("splits.json", "config.json"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name}: missing; is {path} a complete run directory of main.py?")
        splits = read_splits(path / "splits.json")
        config = json.loads((path / "config.json").read_text())
        return Run(path, path / SELECTED, splits, config, existing(path / METRICS), existing(path / "test_report.json"),
                   path)
    if (path / SHIPPED_MODEL).is_file():
        config = Emulator.load(path / SHIPPED_MODEL).config
        if (path / SHIPPED_SPLITS).is_file():
            splits = read_splits(path / SHIPPED_SPLITS)
        else:
            # The seasons as main.py split them (named in the configuration, or the latest ones);
            # wide-domain profiles, if the run had any, are not part of them.
            splits = split_shards(_repo_path(config["shard_dir"]), config["train"], config["validation"],
                                  config["test"])
        return Run(path, path / SHIPPED_MODEL, splits, config, existing(path / SHIPPED_METRICS),
                   existing(path / SHIPPED_REPORT), REPO / "cache" / "evaluation" / path.name)
    raise FileNotFoundError(f"{path}: neither a run directory (no {SELECTED}) nor a shipped model (no {SHIPPED_MODEL})")


def fingerprint(run: Run, split: str) -> dict:
    """What the evaluation set of `split` depends on."""
    shards = []
    for path in run.splits[split]:
        files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.iterdir()) if p.is_file()}
        shards.append({"path": str(path), "info_sha256": sha256(path / INFO_FILE), "files": files})
    return {"format": EVALUATION_FORMAT, "split": split, "model_sha256": sha256(run.model_file), "shards": shards}


def cached_fingerprint(path: Path) -> dict | None:
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None  # unreadable: recomputed
    stamp = metadata.get(FINGERPRINT_KEY)
    return json.loads(stamp) if stamp else None


def summarise(layers: np.ndarray, mask: np.ndarray, scalars: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs summary of shard rows: layers (n, 5, 50), mask (n, 50), scalars (n, 4)."""
    direct, diffuse = scalars[:, DIRECT_SW].astype(np.float64), scalars[:, DIFFUSE_SW].astype(np.float64)
    return {
        "surface_ssa": layers[:, SSA, 0], "surface_density": layers[:, DENSITY, 0],
        "surface_soot": layers[:, SOOT, 0], "surface_dust": layers[:, DUST, 0],
        # As the test report (dataset.report_columns) and the models define it: the sum of the layers.
        "snow_depth": np.where(mask, layers[:, 0], 0.0).sum(axis=1, dtype=np.float64).astype(np.float32),
        "n_layers": mask.sum(axis=1).astype(np.int16),
        "cos_sza": scalars[:, COS_SZA], "direct_sw": scalars[:, DIRECT_SW], "diffuse_sw": scalars[:, DIFFUSE_SW],
        "direct_fraction": (direct / (direct + diffuse)).astype(np.float32),
    }


def compute(run: Run, split: str, device=None, batch_size: int = 4096) -> pd.DataFrame:
    """The evaluation set of `split`, without the cache."""
    emulator = Emulator.load(run.model_file, device=resolve_device(device))
    shards = [open_shard(path) for path in run.splits[split]]
    parts, caught = [], []
    progress = tqdm(total=sum(len(s) for s in shards), desc=f"evaluating {run.name} on {split}", unit="profile",
                    leave=False)
    for shard in shards:
        meta = shard.meta()
        if len(meta) != len(shard):
            raise ValueError(f"{shard.path / 'meta.parquet'}: {len(meta)} rows for {len(shard)} samples")
        for start in range(0, len(shard), CHUNK):
            rows = slice(start, min(start + CHUNK, len(shard)))
            layers, mask, scalars = np.asarray(shard.layers[rows]), np.asarray(shard.mask[rows]), np.asarray(shard.scalars[rows])
            # Emulator.predict takes the labeller's layout: (n, 50) per variable, NaN where absent.
            absent_as_nan = [np.where(mask, layers[:, i], np.nan) for i in range(len(LAYER_VARIABLES))]
            with warnings.catch_warnings(record=True) as found:
                warnings.simplefilter("always")
                prediction = emulator.predict(*absent_as_nan, scalars[:, COS_SZA], scalars[:, DIRECT_SW],
                                              scalars[:, DIFFUSE_SW], batch_size=batch_size)
            caught += [str(w.message) for w in found]
            target = np.asarray(shard.target[rows], dtype=np.float64)
            part = meta.iloc[rows].reset_index(drop=True)
            part["row"] = np.arange(rows.start, rows.stop)
            for name, values in summarise(layers, mask, scalars).items():
                part[name] = values
            part["target"], part["prediction"], part["error"] = target, prediction, prediction - target
            parts.append(part)
            progress.update(rows.stop - rows.start)
    progress.close()
    if caught:
        print(f"the emulator warned on {len(caught)} chunk(s) of {split}, e.g.: {caught[0]}")
    df = pd.concat(parts, ignore_index=True)
    for name in ("region", "season"):
        df[name] = df[name].astype(str).astype("category")
    df["time"] = pd.to_datetime(df["time"]).dt.tz_localize("UTC")
    return df


def evaluation_set(run: Run | str | Path | None = None, split: str = "test", refresh: bool = False,
                   device=None) -> pd.DataFrame:
    """The evaluation set of `split` (train, validation or test) of `run` (a Run, a path, or None
    for the default run), from the cache when it is up to date."""
    run = run if isinstance(run, Run) else open_run(run)
    if split not in run.splits:
        raise ValueError(f"{run.path}: no split {split!r}; splits: {sorted(run.splits)}")
    cache = run.cache_dir / f"evaluation_{split}.parquet"
    stamp = fingerprint(run, split)
    if not refresh and cache.is_file() and cached_fingerprint(cache) == stamp:
        return pd.read_parquet(cache)
    df = compute(run, split, device)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), FINGERPRINT_KEY: json.dumps(stamp)})
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, cache)
    return df


def utc(when) -> pd.Timestamp:
    """A date or time as a UTC timestamp (naive ones are taken as UTC)."""
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def select(df: pd.DataFrame, region=None, point=None, massif=None, altitude: tuple[float, float] | None = None,
           slope=None, aspect=None, season=None, start=None, end=None, hours=None) -> pd.DataFrame:
    """The rows of an evaluation set matching every criterion given: region, point (its number in
    the region's files), massif, slope, aspect and season are a value or a list of values; altitude an inclusive (low, high) range of ZS in m;
    start (inclusive) and end (exclusive) dates or times, in UTC when naive; hours a list of UTC
    hours of the time stamp (which ends the hour of the sample's radiation)."""
    keep = np.ones(len(df), dtype=bool)
    for column, wanted in (("region", region), ("point", point), ("massif", massif), ("slope", slope),
                           ("aspect", aspect), ("season", season)):
        if wanted is not None:
            keep &= df[column].isin(np.atleast_1d(wanted)).to_numpy()
    if altitude is not None:
        low, high = altitude
        keep &= df["ZS"].between(low, high).to_numpy()
    if start is not None:
        keep &= (df["time"] >= utc(start)).to_numpy()
    if end is not None:
        keep &= (df["time"] < utc(end)).to_numpy()
    if hours is not None:
        keep &= df["time"].dt.hour.isin(np.atleast_1d(hours)).to_numpy()
    return df[keep]


def season_files(run: Run, region: str, season: str) -> tuple[Path, Path]:
    """The Crocus PRO and FORCING files of a season of the run's data: those its shard records,
    else <crocus_dir>/<region>/{PRO,FORCING}/ of the run's configuration."""
    infos = (open_shard(p).info for paths in run.splits.values() for p in paths)
    info = next((i for i in infos if i.get("region") == region and i.get("season") == season), {})
    candidates = []
    if "pro_file" in info:
        candidates.append((Path(info["pro_file"]), Path(info["forcing_file"])))
    if run.config.get("crocus_dir"):
        root = _repo_path(run.config["crocus_dir"]) / region
        candidates.append((root / "PRO" / f"PRO_{season}.nc", root / "FORCING" / f"FORCING_{season}.nc"))
    for pro, forcing in candidates:
        if pro.is_file() and forcing.is_file():
            return pro, forcing
    tried = ", ".join(f"{pro} and {forcing}" for pro, forcing in candidates) or "no recorded file"
    raise FileNotFoundError(f"{run.path}: the Crocus files of {region}/{season} are not here (tried {tried})")
