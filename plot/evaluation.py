"""The evaluation set of a trained emulator: one row per sample of a split of its run, with the
sample's metadata, a summary of its inputs, the TARTES labels and the emulator's outputs; and,
for the figures, the whole absorbed profile of one sample and the errors layer by layer.

    df = evaluation_set("runs/optical_budget-20260101-120000")   # the test seasons of that run
    north = select(df, aspect=0, altitude=(1800, 2400), start="2014-01-01", end="2014-04-01", hours=[11, 12])
    budget = sample_budget(run, df.iloc[0])                       # its absorbed profile, emulator and TARTES
    by_layer = layer_errors(run)                                  # MAE of the absorbed fraction per layer

A run is either a run directory of main.py (best.pt, splits.json, config.json, metrics.csv) or a
directory holding a shipped model (data/: the names of utils.run_files.SHIPPED, emulator.pt and
emulator_report.json, and when shipped emulator_splits.json and emulator_metrics.csv). `open_run()`
without a path takes the default run: the run directory that produced the shipped model
data/emulator.pt (`python main.py --ship true`) when it is still here and holds that same model,
else data/ itself (without emulator_splits.json, its seasons are split again from the configuration
saved in the model).

Columns (units in utils/schema.py where they are its variables):
- metadata: region, season, time (UTC; the SAFRAN time stamp, which ends the hour the radiation
  belongs to; none for the wide-domain profiles of preprocessing/profile_sampler.py), point, massif,
  ZS (m), slope, aspect (degrees, -1 flat), row (in its shard);
- the test report's per-sample quantities, `dataset.ShardDataset.report_columns`: cos_illum,
  cos_zenith, snow_depth (m), n_layers, surface_dust (kg kg-1), soil_albedo, light_rule and
  impurity_kind (codes of utils.report.CATEGORIES), shortwave (W m-2, direct + diffuse);
- the other inputs summary, `input_columns`: surface_ssa (m2 kg-1), surface_density (kg m-3) and
  surface_soot (kg kg-1) of the top layer, direct_sw and diffuse_sw (W m-2), direct_fraction;
- the albedo: albedo_target (the shard's label), albedo_prediction (the emulator as users call it,
  `Emulator.predict` / `Emulator.energy_budget` of the profile) and albedo_error (prediction -
  target);
- for models that give the energy budget (`model.BUDGET`), as fractions of the incident
  shortwave: top_target, top_prediction, top_error (absorbed in the top layer), soil_target,
  soil_prediction, soil_error, profile_error (the sum over layers and soil of |absorbed error|),
  and in W m-2 top_error_w_m2 and pack_error_w_m2 (the whole pack). Errors are those of
  utils.report.profile_errors, so they are the test report's.

The set is computed once, in passes of dataset.ROWS_PER_PASS rows (shards may be larger than memory), and
cached as evaluation_<split>.parquet next to the run (cache/evaluation/ for data/), with a
fingerprint of the model file (SHA-256) and of the shards (info.json, file sizes and modification
times) in the parquet metadata, beside the errors by layer of the same pass: a changed model or
changed data recomputes it.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from dataset import ShardDataset, profile_arguments, split_shards
from models import Emulator
from preprocessing.shards import INFO_FILE, open_shard
from utils.devices import resolve_device
from utils.files import written
from utils.provenance import sha256
from utils.report import bin_index, error_metrics, profile_errors
from utils.run_files import CONFIG, METRICS, SELECTED, SHIPPED, SPLITS, TEST_REPORT
from utils.schema import COS_ILLUM, DENSITY, DIFFUSE_SW, DIRECT_SW, DZ, N_LAYERS, SOOT, SSA

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DIR = REPO / "data"
SHIPPED_MODEL, SHIPPED_REPORT = SHIPPED[SELECTED], SHIPPED[TEST_REPORT]
SHIPPED_METRICS, SHIPPED_SPLITS = SHIPPED[METRICS], SHIPPED[SPLITS]  # when shipped
# 2: cos_illum, energy budget columns, errors by layer; 3: soil_albedo, light_rule, impurity_kind; bump when
# columns change
EVALUATION_FORMAT = "evaluation/3"
FINGERPRINT_KEY = b"tartes_emulator_fingerprint"
LAYER_ERRORS_KEY = b"tartes_emulator_layer_errors"
# Depth of a layer's middle below the snow surface (m): the bins of the error by depth.
LAYER_DEPTH_BINS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, np.inf]
TARGETS = ("albedo", "top", "soil")  # the quantities with <name>_target, <name>_prediction, <name>_error columns
MODEL_WORDS = {"optical_budget": "energy-budget emulator", "cnn_seed": "albedo-only CNN emulator"}  # for titles


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
        """The model in words, for titles: 'energy-budget emulator (optical_budget), run <directory>',
        or '..., shipped model data/emulator.pt'."""
        model = self.config.get("model", "model")
        where = (f"run {self.path.name}" if self.model_file.name == SELECTED else
                 f"shipped model {self.path.name}/{self.model_file.name}")
        return f"{MODEL_WORDS.get(model, 'emulator')} ({model}), {where}"

    @property
    def folder(self) -> str:
        """The folder of its figures under runs/graphs/: the run directory's name, or for a shipped
        model its directory's name and the start of its hash (figures of two models never mix)."""
        if self.model_file.name == SELECTED:
            return self.path.name
        return f"{self.path.name}-{sha256(self.model_file)[:8]}"


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
        raise FileNotFoundError(f"{model}: no shipped model, hence no default run; train and ship one with "
                                "`python main.py --ship true`, or name a run directory")
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
        for name in (SPLITS, CONFIG):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path / name}: missing; is {path} a complete run directory of main.py?")
        splits = read_splits(path / SPLITS)
        config = json.loads((path / CONFIG).read_text())
        return Run(path, path / SELECTED, splits, config, existing(path / METRICS), existing(path / TEST_REPORT), path)
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


def resolve(run: Run | str | Path | None) -> Run:
    """A Run as it is, or the run in a path (None: the default run)."""
    return run if isinstance(run, Run) else open_run(run)


def fingerprint(run: Run, split: str) -> dict:
    """What the evaluation set of `split` depends on."""
    shards = []
    for path in run.splits[split]:
        files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(path.iterdir()) if p.is_file()}
        shards.append({"path": str(path), "info_sha256": sha256(path / INFO_FILE), "files": files})
    return {"format": EVALUATION_FORMAT, "split": split, "model_sha256": sha256(run.model_file), "shards": shards}


def _cached_metadata(path: Path) -> dict:
    try:
        return pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return {}  # unreadable: recomputed


def cached_fingerprint(path: Path) -> dict | None:
    stamp = _cached_metadata(path).get(FINGERPRINT_KEY)
    return json.loads(stamp) if stamp else None


# ---------------------------------------------------------------------------------------------
# Per-sample columns

def input_columns(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs summary of shard rows (ShardDataset.rows) that the test report does not bin by
    (those are `ShardDataset.report_columns`): the top layer's SSA, density and soot, the direct and
    diffuse shortwave and the direct fraction."""
    layers, scalars = rows["layers"], rows["scalars"]
    direct, diffuse = scalars[:, DIRECT_SW].astype(np.float64), scalars[:, DIFFUSE_SW].astype(np.float64)
    return {"surface_ssa": layers[:, SSA, 0], "surface_density": layers[:, DENSITY, 0], "surface_soot": layers[:, SOOT, 0],
            "direct_sw": scalars[:, DIRECT_SW], "diffuse_sw": scalars[:, DIFFUSE_SW],
            "direct_fraction": (direct / (direct + diffuse)).astype(np.float32)}


def emulate(emulator: Emulator, rows: dict[str, np.ndarray], batch_size: int = 4096) -> dict[str, np.ndarray]:
    """The emulator's outputs on shard rows, called as users call it (the labeller's layout: NaN
    where a layer is absent), stored as the labels are: albedo, and for an energy-budget model
    absorbed (n, 50), 0 where absent, and soil. float64."""
    arguments = profile_arguments(rows["layers"], rows["mask"], rows["scalars"])
    if not emulator.model.BUDGET:
        return {"albedo": emulator.predict(**arguments, batch_size=batch_size)}
    budget = emulator.energy_budget(**arguments, batch_size=batch_size)
    return {"albedo": budget.albedo, "absorbed": np.nan_to_num(budget.absorbed, nan=0.0), "soil": budget.soil}


def layer_depths(layers: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) depth below the snow surface of each layer (m), (n, 50); NaN where absent."""
    dz = np.where(mask, layers[:, DZ], 0.0).astype(np.float64)
    bottom = np.cumsum(dz, axis=1)
    return np.where(mask, bottom - dz, np.nan), np.where(mask, bottom, np.nan)


class LayerErrors:
    """Sums of the absorbed fraction's errors by layer index and by depth bin, over passes."""

    def __init__(self):
        self.by_layer = np.zeros((4, N_LAYERS))  # n, sum |error|, sum error, sum |error| * shortwave
        self.by_depth = np.zeros((4, len(LAYER_DEPTH_BINS) - 1))
        self.soil = np.zeros(4)

    @staticmethod
    def _sums(error, shortwave):
        return np.stack([np.ones_like(error), np.abs(error), error, np.abs(error) * shortwave])

    def add(self, rows: dict, prediction: dict, shortwave: np.ndarray) -> None:
        mask = rows["mask"]
        error = np.where(mask, prediction["absorbed"] - rows["absorbed"], 0.0)
        sums = self._sums(error, np.asarray(shortwave, np.float64)[:, None]) * mask
        self.by_layer += sums.sum(axis=1)
        top, bottom = layer_depths(rows["layers"], mask)
        index = bin_index((top + bottom) / 2, LAYER_DEPTH_BINS)
        for k in range(self.by_depth.shape[1]):
            self.by_depth[:, k] += sums[:, index == k].sum(axis=1)
        self.soil += self._sums(prediction["soil"] - rows["soil"], shortwave).sum(axis=1)

    def as_dict(self) -> dict:
        def table(sums):
            n = np.maximum(sums[0], 1)
            return {"n": sums[0].astype(int).tolist(), "mae": np.where(sums[0] > 0, sums[1] / n, np.nan).tolist(),
                    "bias": np.where(sums[0] > 0, sums[2] / n, np.nan).tolist(),
                    "mae_w_m2": np.where(sums[0] > 0, sums[3] / n, np.nan).tolist()}
        return {"by_layer": table(self.by_layer), "by_depth": {**table(self.by_depth), "edges": LAYER_DEPTH_BINS},
                "soil": table(self.soil[:, None])}


def compute(run: Run, split: str, device=None, batch_size: int = 4096) -> tuple[pd.DataFrame, dict | None]:
    """The evaluation set of `split` and its errors by layer (None for an albedo-only model), without the cache."""
    emulator = Emulator.load(run.model_file, device=resolve_device(device))
    dataset = ShardDataset(run.splits[split])
    metas = []
    for shard in dataset.shards:
        meta = shard.meta()
        if len(meta) != len(shard):
            raise ValueError(f"{shard.path / 'meta.parquet'}: {len(meta)} rows for {len(shard)} samples")
        metas.append(meta.assign(row=np.arange(len(shard))))
    df = pd.concat(metas, ignore_index=True)
    columns = dataset.report_columns()
    for name, values in columns.items():
        df[name] = values
    parts, caught = [], []
    by_layer = LayerErrors() if emulator.model.BUDGET else None
    progress = tqdm(total=len(dataset), desc=f"evaluating {run.name} on {split}", unit="profile", leave=False)
    start = 0
    for rows in dataset.chunks():
        shortwave = columns["shortwave"][start:start + len(rows["mask"])].astype(np.float64)
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always")
            prediction = emulate(emulator, rows, batch_size)
        caught += [str(w.message) for w in found]
        target = {name: rows[name].astype(np.float64) for name in prediction}
        errors = profile_errors(prediction, target, shortwave)
        part = {**input_columns(rows), "albedo_target": target["albedo"], "albedo_prediction": prediction["albedo"],
                "albedo_error": errors["albedo"]}
        if by_layer is not None:
            by_layer.add(rows, prediction, shortwave)
            part.update({"top_target": target["absorbed"][:, 0], "top_prediction": prediction["absorbed"][:, 0],
                         "top_error": errors["top_layer"], "soil_target": target["soil"],
                         "soil_prediction": prediction["soil"], "soil_error": prediction["soil"] - target["soil"],
                         "profile_error": errors["profile"], "top_error_w_m2": errors["top_layer_w_m2"],
                         "pack_error_w_m2": errors["pack_w_m2"]})
        parts.append(pd.DataFrame(part))
        progress.update(len(rows["mask"]))
        start += len(rows["mask"])
    progress.close()
    if caught:
        print(f"the emulator warned on {len(caught)} pass(es) over {split}, e.g.: {caught[0]}")
    df = pd.concat([df, pd.concat(parts, ignore_index=True)], axis=1) if parts else df
    for name in ("region", "season"):
        df[name] = df[name].astype(str).astype("category")
    df["time"] = pd.to_datetime(df["time"]).dt.tz_localize("UTC")
    return df, by_layer.as_dict() if by_layer is not None else None


def _evaluated(run: Run | str | Path | None, split: str, refresh: bool, device) -> tuple[pd.DataFrame, Path]:
    """The evaluation set of `split` and its cache file, computed and cached unless the cache is up to date."""
    run = resolve(run)
    if split not in run.splits:
        raise ValueError(f"{run.path}: no split {split!r}; splits: {sorted(run.splits)}")
    if not run.splits[split]:
        raise ValueError(f"{run.path}: the {split} split holds no shard")
    cache = run.cache_dir / f"evaluation_{split}.parquet"
    stamp = fingerprint(run, split)
    if not refresh and cache.is_file() and cached_fingerprint(cache) == stamp:
        return pd.read_parquet(cache), cache
    df, by_layer = compute(run, split, device)
    table = pa.Table.from_pandas(df, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), FINGERPRINT_KEY: json.dumps(stamp)}
    if by_layer is not None:
        metadata[LAYER_ERRORS_KEY] = json.dumps(by_layer)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with written(cache) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp)
    return df, cache


def evaluation_set(run: Run | str | Path | None = None, split: str = "test", refresh: bool = False,
                   device=None) -> pd.DataFrame:
    """The evaluation set of `split` (train, validation, test or wide_range) of `run` (a Run, a
    path, or None for the default run), from the cache when it is up to date."""
    return _evaluated(run, split, refresh, device)[0]


def error_summary(error) -> dict:
    """n, MAE, RMSE, bias and p99 |error| of errors (utils.report's summary; NaN left out)."""
    error = np.asarray(error, dtype=np.float64)
    error = error[~np.isnan(error)]
    return {"n": len(error), **error_metrics({"albedo": error})["albedo"]}


def is_budget(df: pd.DataFrame) -> bool:
    """Whether an evaluation set is that of a model giving the energy budget (its columns are there)."""
    return "profile_error" in df.columns


def layer_errors(run: Run | str | Path | None = None, split: str = "test", refresh: bool = False,
                 device=None) -> dict[str, pd.DataFrame]:
    """The errors of the absorbed fraction (prediction - target) over the present layers of the
    split's samples: "by_layer", indexed by layer number (1 at the top), and "by_depth", by bins of
    LAYER_DEPTH_BINS of the depth of the layer's middle below the surface (columns low, high, in
    m), each with columns n (layers), mae, bias (fractions of the incident shortwave) and mae_w_m2;
    and "soil", the same for the soil. Computed with the evaluation set and cached with it.
    ValueError for a model that gives the albedo only."""
    run = resolve(run)
    _, cache = _evaluated(run, split, refresh, device)
    stored = _cached_metadata(cache).get(LAYER_ERRORS_KEY)
    if stored is None:
        raise ValueError(f"{run.name} gives the albedo only: no absorbed profile, no error by layer")
    stored = json.loads(stored)
    by_depth = stored["by_depth"]
    edges = by_depth.pop("edges")
    return {"by_layer": pd.DataFrame(stored["by_layer"], index=pd.RangeIndex(1, N_LAYERS + 1, name="layer")),
            "by_depth": pd.DataFrame({"low": edges[:-1], "high": edges[1:], **by_depth}),
            "soil": pd.DataFrame(stored["soil"], index=["soil"])}


# ---------------------------------------------------------------------------------------------
# One sample's whole budget

@dataclass
class SampleBudget:
    """The energy budget of one sample, emulator against label. `layers`: one row per present
    layer, top first, with columns layer (1 at the top), top and bottom (depth below the surface,
    m), dz (m), target and prediction (fractions of the incident shortwave), target_w_m2 and
    prediction_w_m2 (W m-2)."""

    layers: pd.DataFrame
    albedo_target: float
    albedo_prediction: float
    soil_target: float
    soil_prediction: float
    shortwave: float  # W m-2, direct + diffuse
    cos_illum: float
    direct_fraction: float


def shard_of(run: Run, region: str, season: str) -> Path:
    """The shard of the run's data that holds the samples of region/season."""
    for paths in run.splits.values():
        for path in paths:
            info = open_shard(path).info
            if str(info.get("region")) == str(region) and str(info.get("season")) == str(season):
                return path
    raise ValueError(f"{run.path}: no shard of {region}/{season} among the run's splits")


def sample_budget(run: Run | str | Path | None, sample, device=None) -> SampleBudget:
    """The whole budget of `sample` (a row of an evaluation set: its region, season and row), read
    from its shard and run through `Emulator.energy_budget`. ValueError for an albedo-only model."""
    run = resolve(run)
    emulator = Emulator.load(run.model_file, device=resolve_device(device))
    if not emulator.model.BUDGET:
        raise ValueError(f"{run.name} gives the albedo only: no absorbed profile")
    shard = open_shard(shard_of(run, sample["region"], sample["season"]))
    row = int(sample["row"])
    rows = {name: np.asarray(getattr(shard, name)[row:row + 1]) for name in ("layers", "mask", "scalars", "albedo",
                                                                             "absorbed", "soil")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*outside the input domain.*")
        prediction = emulate(emulator, rows)
    mask = rows["mask"][0]
    top, bottom = layer_depths(rows["layers"], rows["mask"])
    shortwave = float(rows["scalars"][0, DIRECT_SW]) + float(rows["scalars"][0, DIFFUSE_SW])
    target, predicted = rows["absorbed"][0, mask].astype(np.float64), prediction["absorbed"][0, mask]
    layers = pd.DataFrame({"layer": np.flatnonzero(mask) + 1, "top": top[0, mask], "bottom": bottom[0, mask],
                           "dz": rows["layers"][0, DZ, mask].astype(np.float64), "target": target,
                           "prediction": predicted, "target_w_m2": target * shortwave,
                           "prediction_w_m2": predicted * shortwave})
    return SampleBudget(layers, float(rows["albedo"][0]), float(prediction["albedo"][0]), float(rows["soil"][0]),
                        float(prediction["soil"][0]), shortwave, float(rows["scalars"][0, COS_ILLUM]),
                        float(rows["scalars"][0, DIRECT_SW]) / shortwave)


# ---------------------------------------------------------------------------------------------
# Selections

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


def selection_label(criteria: dict) -> str:
    """A selection in words, for titles and messages ('' when everything is taken)."""
    def words(name, v):
        value = " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        return f"{name} {value}{' UTC' if name in ('hours', 'start', 'end') else ''}"
    return ", ".join(words(name, v) for name, v in criteria.items() if v is not None)


def selected_samples(run: Run, split: str, device, criteria: dict) -> pd.DataFrame:
    """The run's evaluation samples of `split` that match `criteria`; an error when none does."""
    df = select(evaluation_set(run, split, device=device), **criteria)
    if df.empty:
        raise ValueError(f"{run.path}: no {split} sample matches {selection_label(criteria)}")
    return df


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
