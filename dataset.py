"""Training data: shards split by whole seasons, read memory-mapped, served as batches of model inputs.

A `ShardDataset` indexes the rows of several shards as one sequence. Its items are whole batches:
the DataLoader hands it an array of row indices (from a `BatchSampler`), it gathers those rows from
the memory-mapped arrays (so a dataset larger than RAM works) and serves them in physical units,
as the models take them (features.py): the models compute their own features.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler

from preprocessing.shards import ARRAYS, find_shards, open_shard
from preprocessing.tartes_labels import energy_budget
from utils.crocus_rules import cleanup_rows
from utils.domain import input_domain
from utils.report import impurity_kind, light_rule, truncation_regime
from utils.schema import (COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DIRECT_SW, DUST, DZ, LAYER_VARIABLES, MODEL_SCALARS,
                          SCALAR_VARIABLES, SOIL_ALBEDO, SOOT)

N_MODEL_SCALARS = len(MODEL_SCALARS)  # the models' scalars: the first columns of the shards' scalars (utils/schema.py)
ROWS_PER_PASS = 65536  # rows per pass when streaming through a whole dataset


def profile_arguments(layers: np.ndarray, mask: np.ndarray, scalars: np.ndarray) -> dict[str, np.ndarray]:
    """Shard rows (layers (N, 5, 50), mask (N, 50), scalars (N, 6)) as the labeller and `Emulator`
    take them, by argument name: the layer arrays (N, 50), NaN where absent, and the MODEL_SCALARS
    (N,), each row's soil_albedo and cos_zenith (NaN: not known) as it was labelled."""
    arguments = {name: np.where(mask, layers[:, i], np.nan) for i, name in enumerate(LAYER_VARIABLES)}
    return arguments | {name: scalars[:, SCALAR_VARIABLES.index(name)] for name in MODEL_SCALARS}


def shard_key(path: Path) -> tuple[str, str]:
    info = open_shard(path).info
    return str(info["region"]), str(info["season"])


def split_shards(shard_dir: str | Path, train: list[str], validation: list[str], test: list[str]) -> dict[str, list[Path]]:
    """Shards of shard_dir into train / validation / test by whole seasons and regions.

    An entry matches a shard's region, season or "region/season". With validation and test
    empty, the last season (by name) is the test and the one before it the validation; an empty
    train takes every shard that is in neither.
    """
    paths = find_shards(shard_dir)
    if not paths:
        raise FileNotFoundError(f"{shard_dir}: no complete shard")
    return split_seasons({path: shard_key(path) for path in paths}, train, validation, test, shard_dir)


def split_seasons(keys: dict, train: list[str], validation: list[str], test: list[str], where) -> dict[str, list]:
    """split_shards on {item: (region, season)}, in the order of keys: so that a run checks its
    split on the seasons it will have before any data is made. ValueError starting with "the
    <split> split" or "<where>" says what is wrong."""
    items = list(keys)
    seasons = sorted({season for _, season in keys.values()})
    if not validation and not test:
        if len(seasons) < 3:
            raise ValueError(f"{where}: {len(seasons)} season(s) {seasons}; the default split needs 3 "
                             "(train, validation, test): name the splits in the configuration")
        validation, test = [seasons[-2]], [seasons[-1]]

    def matching(entries: list[str]) -> list:
        return [p for p, (region, season) in keys.items() if {region, season, f"{region}/{season}"} & set(entries)]

    splits = {"validation": matching(validation), "test": matching(test)}
    splits["train"] = matching(train) if train else [p for p in items if p not in splits["validation"] + splits["test"]]
    for name, entries in (("train", train), ("validation", validation), ("test", test)):
        if not splits[name]:
            raise ValueError(f"{where}: the {name} split {entries or '(the rest)'} matches no shard; "
                             f"shards: {sorted('/'.join(k) for k in keys.values())}")
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = set(splits[a]) & set(splits[b])
        if shared:
            raise ValueError(f"shards in both {a} and {b}: {sorted('/'.join(keys[p]) for p in shared)}")
    return {name: splits[name] for name in ("train", "validation", "test")}


class ShardDataset(Dataset):
    """The rows of several shards; item `indices` (an array of row numbers) is one batch:
    {"layers": (n, 5, 50), "scalars": (n, 5) (the models' MODEL_SCALARS), "albedo": (n,),
    "absorbed": (n, 50), "soil": (n,)} float32 tensors.

    With learnable, the rows of SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows) are left
    out: their labels depend on the fluxes by steps no model of the direct fraction follows, and
    `Emulator` hands them to the labeller. Training and validation see the other rows only."""

    def __init__(self, paths: list[Path], learnable: bool = False):
        self.paths = [Path(p) for p in paths]
        self._open()
        self.index = None  # the rows kept (positions over all the shards), None: all of them
        if learnable:
            flagged = [cleanup_rows(*(profile_arguments(rows["layers"], rows["mask"], rows["scalars"])[name]
                                      for name in ("ssa", "density", "soot", "dust"))) for rows in self.chunks()]
            self.index = np.flatnonzero(~np.concatenate([np.zeros(0, bool), *flagged]))

    def _open(self) -> None:
        self.shards = [open_shard(p) for p in self.paths]
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])

    # Worker processes reopen the memory maps rather than receive copies of the arrays.
    def __getstate__(self) -> dict:
        return {"paths": self.paths, "index": self.index}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return int(self.offsets[-1]) if self.index is None else len(self.index)

    def rows(self, indices) -> dict[str, np.ndarray]:
        """Physical rows, every array of a shard (preprocessing.shards.ARRAYS), in the order of
        `indices`; each shard is read in increasing row order, which suits memory maps."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.index is not None:
            indices = self.index[indices]
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        shard_of = np.searchsorted(self.offsets, ordered, side="right") - 1
        parts = {name: [] for name in ARRAYS}
        for k in np.unique(shard_of):
            shard, local = self.shards[k], ordered[shard_of == k] - self.offsets[k]
            for name in ARRAYS:
                parts[name].append(getattr(shard, name)[local])
        rows = {}
        for name, pieces in parts.items():
            rows[name] = np.empty((len(indices), *ARRAYS[name][1]), dtype=ARRAYS[name][0])
            if pieces:
                rows[name][order] = np.concatenate(pieces)
        return rows

    def __getitem__(self, indices) -> dict[str, torch.Tensor]:
        rows = self.rows(indices)
        return {"layers": torch.from_numpy(rows["layers"]),
                "scalars": torch.from_numpy(np.ascontiguousarray(rows["scalars"][:, :N_MODEL_SCALARS])),
                **{name: torch.from_numpy(rows[name]) for name in ("albedo", "absorbed", "soil")}}

    def chunks(self):
        """Physical rows (`rows`), ROWS_PER_PASS at a time, in order."""
        for start in range(0, len(self), ROWS_PER_PASS):
            yield self.rows(np.arange(start, min(start + ROWS_PER_PASS, len(self))))

    def model_inputs(self):
        """(layers, model scalars) of every row, ROWS_PER_PASS at a time: to fit a model's normalisation."""
        for rows in self.chunks():
            yield rows["layers"], np.ascontiguousarray(rows["scalars"][:, :N_MODEL_SCALARS])

    def input_domain(self) -> dict[str, list[float]]:
        """[min, max] of each physical input over the rows (utils.domain.DOMAIN_VARIABLES)."""
        return input_domain((rows["layers"], rows["mask"], rows["scalars"]) for rows in self.chunks())

    def report_columns(self, truncation: bool = True) -> dict[str, np.ndarray]:
        """Per row, the quantities the test report breaks its errors down by (utils.report): cos_illum,
        cos_zenith, snow depth (m, the sum of the layer thicknesses), number of layers, surface dust
        (kg kg-1, top layer), soil albedo, the light rule, the impurity kind and, with truncation,
        the truncation regime (codes of utils.report.CATEGORIES; it takes two passes of the labeller
        over the rows); and the incident shortwave (W m-2) that turns fractions into energy."""
        columns = {"cos_illum": [], "cos_zenith": [], "snow_depth": [], "n_layers": [], "surface_dust": [],
                   "soil_albedo": [], "light_rule": [], "impurity_kind": [], "shortwave": []}
        if truncation:
            columns["truncation"] = []
        for rows in self.chunks():
            layers, mask, scalars = rows["layers"], rows["mask"], rows["scalars"]
            columns["cos_illum"].append(scalars[:, COS_ILLUM])
            columns["cos_zenith"].append(scalars[:, COS_ZENITH])
            columns["snow_depth"].append(np.where(mask, layers[:, DZ], 0.0).sum(axis=1))
            columns["n_layers"].append(mask.sum(axis=1))
            columns["surface_dust"].append(layers[:, DUST, 0])
            columns["soil_albedo"].append(scalars[:, SOIL_ALBEDO])
            columns["light_rule"].append(light_rule(scalars[:, COS_ILLUM], scalars[:, DIFFUSE_SW],
                                                    scalars[:, COS_ZENITH]))
            columns["impurity_kind"].append(impurity_kind(layers[:, SOOT], layers[:, DUST]))  # 0 where absent
            columns["shortwave"].append(scalars[:, DIRECT_SW] + scalars[:, DIFFUSE_SW])
            if truncation:
                profiles = profile_arguments(layers, mask, scalars)
                columns["truncation"].append(truncation_regime(energy_budget(**profiles).albedo,
                                                               energy_budget(**profiles, truncation=False).albedo))
        return {name: np.concatenate(parts) for name, parts in columns.items()}


def training_loader(dataset: ShardDataset, batch_size: int, seed: int, rank: int, world_size: int,
                    num_workers: int, pin_memory: bool) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled batches, a new order every epoch (call `sampler.set_epoch`), each process of a
    distributed run taking its own share. The order depends only on seed and epoch."""
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    loader = DataLoader(dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None,
                        num_workers=num_workers, pin_memory=pin_memory, persistent_workers=num_workers > 0)
    return loader, sampler


def evaluation_loader(dataset: ShardDataset, batch_size: int, rank: int = 0, world_size: int = 1,
                      num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Batches in row order over this process's rows: rank, rank + world_size, ... (each row once)."""
    rows = np.arange(rank, len(dataset), world_size)
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=num_workers, pin_memory=pin_memory)
