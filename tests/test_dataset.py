import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from dataset import ShardDataset, evaluation_loader, split_shards, training_loader
from features import fit_normalisation
from models import build_model
from preprocessing.shards import ARRAYS, open_shard
from tests.conftest import SEASONS, TINY_BUDGET
from utils.schema import MODEL_SCALARS, N_LAYERS, SCALAR_VARIABLES


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


def test_default_split_needs_three_seasons(tmp_path, write_profiles_shard):
    for season in SEASONS[:2]:
        write_profiles_shard(tmp_path / "Alpes" / season, "Alpes", season, 5, seed=0)
    with pytest.raises(ValueError, match="2 season"):
        split_shards(tmp_path, [], [], [])


def test_rows_gather_across_shards_in_the_order_asked(shard_dir):
    splits = split_shards(shard_dir, [], [], [])
    paths = splits["train"] + splits["validation"]
    dataset = ShardDataset(paths)
    indices = np.random.default_rng(0).permutation(len(dataset))[:200]
    rows = dataset.rows(indices)
    assert set(rows) == set(ARRAYS)
    for name in ARRAYS:
        whole = np.concatenate([np.asarray(getattr(s, name)) for s in dataset.shards])
        np.testing.assert_array_equal(rows[name], whole[indices])
    assert isinstance(dataset.shards[0].layers, np.memmap)


def test_batches_are_physical_rows_and_the_model_normalises_them(shard_dir):
    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["train"])
    batch = dataset[np.arange(len(dataset))]
    layers, scalars = batch["layers"], batch["scalars"]
    assert layers.shape == (len(dataset), 5, N_LAYERS) and scalars.shape == (len(dataset), 5)
    shard = dataset.shards[0]
    np.testing.assert_array_equal(layers.numpy(), shard.layers)
    np.testing.assert_array_equal(scalars.numpy(), shard.scalars[:, [SCALAR_VARIABLES.index(k) for k in MODEL_SCALARS]])
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_array_equal(batch[name].numpy(), getattr(shard, name))
    # cnn_seed's z-scores, fitted on these rows, are centred and scaled over the present layers
    model, _ = build_model("cnn_seed")
    fit_normalisation(model, dataset.model_inputs())
    captured = {}
    model.layer_norm.register_forward_hook(lambda module, inputs, output: captured.update(out=output))
    with torch.no_grad():
        model(layers, scalars)
    z = captured["out"].numpy().transpose(0, 2, 1)
    mask = shard.mask
    np.testing.assert_allclose(z[mask].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z[mask].std(axis=0), 1, atol=1e-3)
    assert np.all(z[~mask] == 0)
    # the soil albedo, a feature of every model, z-scored on the rows like the others
    soil_albedo = scalars[:, MODEL_SCALARS.index("soil_albedo")].double()
    budget_model, _ = build_model("optical_budget", TINY_BUDGET)
    fit_normalisation(budget_model, dataset.model_inputs())
    for norm in (model.scalar_norm, budget_model.norm):
        torch.testing.assert_close(norm.mean[-1].double(), soil_albedo.mean(), rtol=1e-5, atol=0)
        torch.testing.assert_close(norm.std[-1].double(), soil_albedo.std(correction=0), rtol=1e-4, atol=0)
    domain = dataset.input_domain()
    assert domain["cos_illum"][0] >= 0.05 and domain["cos_illum"][1] <= 0.95 and domain["soot"][0] == 0
    assert domain["dz"][0] >= 0.005 and domain["direct_fraction"][0] == 0
    assert 0.1 <= domain["soil_albedo"][0] < domain["soil_albedo"][1] <= 0.35  # the shards' per-row soil albedos


def test_workers_reopen_the_memory_maps(shard_dir):
    dataset = ShardDataset(split_shards(shard_dir, [], [], [])["test"])
    copy = pickle.loads(pickle.dumps(dataset))
    assert isinstance(copy.shards[0].absorbed, np.memmap)
    np.testing.assert_array_equal(copy.rows([3, 1])["absorbed"], dataset.shards[0].absorbed[[3, 1]])


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
    np.testing.assert_array_equal(np.concatenate([b["albedo"] for b in batches]), dataset.shards[0].albedo[1::2])


def test_a_shard_of_an_older_format_asks_to_rerun_preprocessing(shard_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(split_shards(shard_dir, [], [], [])["test"][0], old)
    info = json.loads((old / "info.json").read_text())
    del info["format"]
    (old / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="re-run preprocessing"):
        open_shard(old)
