import pickle

import numpy as np
import pandas as pd
import pytest

from dataset import ShardDataset, evaluation_loader, split_shards, training_loader
from preprocessing.shards import N_LAYERS, ShardWriter
from preprocessing.tartes_labels import broadband_albedo
import torch

from models import build_model
from utils.features import fit_normalisation

SEASONS = ("2001080106_2002080106", "2002080106_2003080106", "2003080106_2004080106")
_CACHE = {}


def write_profiles_shard(path, region, season, n, seed):
    """A shard of `n` random but plausible profiles labelled by the project's TARTES labeller."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(1, N_LAYERS + 1, n)
    mask = np.arange(N_LAYERS)[None, :] < n_layers[:, None]
    shape = (n, N_LAYERS)
    fields = {
        "dz": rng.uniform(0.005, 0.15, shape),
        "ssa": np.exp(rng.uniform(np.log(3), np.log(80), shape)),
        "density": rng.uniform(80, 550, shape),
        "soot": np.where(rng.random(shape) < 0.3, 0.0, 10 ** rng.uniform(-10, -7, shape)),
        "dust": np.where(rng.random(shape) < 0.3, 0.0, 10 ** rng.uniform(-8, -4, shape)),
    }
    layers = np.stack([np.where(mask, fields[k], 0.0) for k in fields], axis=1).astype(np.float32)
    cos_sza = rng.uniform(0.05, 0.95, n).astype(np.float32)
    direct_sw = np.where(rng.random(n) < 0.3, 0.0, rng.uniform(0, 800, n)).astype(np.float32)
    diffuse_sw = rng.uniform(5, 300, n).astype(np.float32)
    # Labels of exactly the float32 values stored, absent layers as NaN.
    as_nan = [np.where(mask, layers[:, i].astype(np.float64), np.nan) for i in range(5)]
    target = broadband_albedo(*as_nan, cos_sza, direct_sw, diffuse_sw).astype(np.float32)
    snow_depth = np.where(mask, layers[:, 0], 0).sum(axis=1).astype(np.float32)
    meta = pd.DataFrame({"region": region, "season": season, "time": pd.Timestamp(season[:8]), "point": 0,
                         "massif": 3, "ZS": 1800.0, "slope": 0.0, "aspect": -1.0}, index=range(n))
    with ShardWriter(path, n, {"region": region, "season": season}) as writer:
        writer.write(layers, mask, np.stack([snow_depth, direct_sw, diffuse_sw, cos_sza], axis=1), target, meta)
    return path


def tiny_shard_dir(tmp_path_factory):
    """Three seasons of a few hundred profiles, written once per test session."""
    if "shards" not in _CACHE:
        root = tmp_path_factory.mktemp("shards")
        for i, season in enumerate(SEASONS):
            write_profiles_shard(root / "Alpes" / season, "Alpes", season, 300 + 40 * i, seed=i)
        _CACHE["shards"] = root
    return _CACHE["shards"]


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    return tiny_shard_dir(tmp_path_factory)


def test_default_split_takes_the_last_seasons_for_validation_and_test(shard_dir):
    splits = split_shards(shard_dir, [], [], [])
    assert [[p.name for p in splits[k]] for k in ("train", "validation", "test")] == [[s] for s in SEASONS]


def test_named_split_and_its_errors(shard_dir):
    splits = split_shards(shard_dir, [SEASONS[2]], [f"Alpes/{SEASONS[0]}"], [SEASONS[1]])
    assert [p.name for p in splits["train"]] == [SEASONS[2]]
    assert [p.name for p in splits["validation"]] == [SEASONS[0]]
    with pytest.raises(ValueError, match="both train and validation"):
        split_shards(shard_dir, ["Alpes"], [SEASONS[0]], [SEASONS[1]])
    with pytest.raises(ValueError, match="validation split .* matches no shard"):
        split_shards(shard_dir, [], ["1999080106_2000080106"], [SEASONS[1]])


def test_default_split_needs_three_seasons(tmp_path):
    for season in SEASONS[:2]:
        write_profiles_shard(tmp_path / "Alpes" / season, "Alpes", season, 5, seed=0)
    with pytest.raises(ValueError, match="2 season"):
        split_shards(tmp_path, [], [], [])


def test_rows_gather_across_shards_in_the_order_asked(shard_dir):
    splits = split_shards(shard_dir, [], [], [])
    paths = splits["train"] + splits["validation"]
    dataset = ShardDataset(paths)
    whole = [np.concatenate([np.asarray(getattr(s, name)) for s in dataset.shards])
             for name in ("layers", "mask", "scalars", "target")]
    indices = np.random.default_rng(0).permutation(len(dataset))[:200]
    for got, expected in zip(dataset.rows(indices), whole):
        np.testing.assert_array_equal(got, expected[indices])
    assert isinstance(dataset.shards[0].layers, np.memmap)


def test_batches_are_physical_rows_and_the_model_normalises_them(shard_dir):
    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["train"])
    batch = dataset[np.arange(len(dataset))]
    layers, illumination = batch["layers"], batch["illumination"]
    assert layers.shape == (len(dataset), 5, N_LAYERS) and illumination.shape == (len(dataset), 3)
    shard = dataset.shards[0]
    np.testing.assert_array_equal(layers.numpy(), shard.layers)
    np.testing.assert_array_equal(illumination.numpy(), shard.scalars[:, [3, 1, 2]])  # cos_sza, direct, diffuse
    # cnn_seed's z-scores, fitted on these rows, are centred and scaled over the present layers
    model, _ = build_model("cnn_seed")
    fit_normalisation(model, dataset.model_inputs())
    captured = {}
    model.layer_norm.register_forward_hook(lambda module, inputs, output: captured.update(out=output))
    with torch.no_grad():
        model(layers, illumination)
    z = captured["out"].numpy().transpose(0, 2, 1)
    mask = shard.mask
    np.testing.assert_allclose(z[mask].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z[mask].std(axis=0), 1, atol=1e-3)
    assert np.all(z[~mask] == 0)
    domain = dataset.input_domain()
    assert domain["cos_sza"][0] >= 0.05 and domain["cos_sza"][1] <= 0.95 and domain["soot"][0] == 0
    assert domain["dz"][0] >= 0.005 and domain["direct_fraction"][0] == 0


def test_workers_reopen_the_memory_maps(shard_dir):
    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["test"])
    copy = pickle.loads(pickle.dumps(dataset))
    assert isinstance(copy.shards[0].target, np.memmap)
    np.testing.assert_array_equal(copy.rows([3, 1])[3], dataset.shards[0].target[[3, 1]])


def test_training_order_is_reshuffled_each_epoch_and_shared_out_between_ranks(shard_dir):
    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["train"])

    def order(epoch, rank=0, world=1):
        loader, sampler = training_loader(dataset, 64, seed=1, rank=rank, world_size=world, num_workers=0, pin_memory=False)
        sampler.set_epoch(epoch)
        return np.concatenate(list(loader.sampler))

    assert sorted(order(1)) == list(range(len(dataset)))
    assert np.array_equal(order(1), order(1)) and not np.array_equal(order(1), order(2))
    assert sorted(np.concatenate([order(1, 0, 2), order(1, 1, 2)])) == list(range(len(dataset)))
    batches = list(evaluation_loader(dataset, 128, rank=1, world_size=2))
    np.testing.assert_array_equal(np.concatenate([b["target"] for b in batches]), dataset.shards[0].target[1::2])
