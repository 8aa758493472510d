"""The wide-domain profile sampler: coverage, structure, determinism and its shards."""
import numpy as np

from preprocessing.profile_sampler import DOMAIN, sample_profiles, write_sampled_shard
from preprocessing.shards import open_shard
from preprocessing.tartes_labels import energy_budget, validate_inputs
from utils.schema import COS_ILLUM, COS_SZA, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, SNOW_DEPTH


def test_profiles_are_valid_and_span_the_domain():
    profiles = sample_profiles(5000, seed=0)
    _, _, n_layers, _ = validate_inputs(**profiles)
    assert n_layers.min() == 1 and n_layers.max() == 50
    assert np.mean(n_layers <= 5) > 0.2  # thin packs over soil
    for name in ("dz", "ssa", "density", "soot", "dust"):
        values = profiles[name][~np.isnan(profiles[name])]
        low, high = DOMAIN[name]
        assert low <= values.min() and values.max() <= high
        # each range is covered near both ends
        span = high - low
        assert values.max() > high - 0.05 * span
    assert np.mean(profiles["soot"][:, 0] == 0) > 0.1 and np.mean(profiles["dust"][:, 0] == 0) > 0.1
    assert np.mean(profiles["dust"][:, 0] > 1e-4) > 0.05  # dusty surfaces
    ice = profiles["density"] >= 850  # Crocus's ice layers, at the surface and at depth
    assert np.mean(ice[~np.isnan(profiles["dz"])]) > 0.02 and np.mean(ice[:, 0]) > 0.02
    assert np.mean(profiles["ssa"][:, 0] > 100) > 0.05  # above Crocus's SSA limit
    deep_clean = (np.sum(~np.isnan(profiles["dz"]), axis=1) >= 27) & (np.nanmax(profiles["dust"], axis=1) == 0)
    assert np.mean(deep_clean) > 0.1
    fraction = profiles["direct_sw"] / (profiles["direct_sw"] + profiles["diffuse_sw"])
    assert fraction.min() == 0 and fraction.max() == 1
    cos_illum = profiles["cos_illum"]
    assert cos_illum.max() > 0.97 and 0.02 < np.mean(cos_illum < 0.0017) < 0.05 and cos_illum.min() < -0.25


def test_snow_mostly_ages_downwards():
    profiles = sample_profiles(2000, seed=1)
    deep = ~np.isnan(profiles["dz"][:, 9])
    ssa, density = profiles["ssa"][deep], profiles["density"][deep]
    assert np.mean(ssa[:, 0] > ssa[:, 9]) > 0.6
    assert np.mean(density[:, 0] < density[:, 9]) > 0.6


def test_draw_is_deterministic():
    a, b = sample_profiles(100, seed=7), sample_profiles(100, seed=7)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["ssa"], sample_profiles(100, seed=8)["ssa"], equal_nan=True)


def test_shard_holds_the_labelled_profiles(tmp_path):
    path = write_sampled_shard(tmp_path / "sampled", 300, seed=3)
    shard = open_shard(path)
    assert len(shard) == 300 and shard.info["region"] == "sampled"
    # rebuild the labeller's inputs from the shard and label again
    layers = {name: np.where(shard.mask, shard.layers[:, i], np.nan).astype(np.float64)
              for i, name in enumerate(LAYER_VARIABLES)}
    cos_illum, direct_sw, diffuse_sw = (shard.scalars[:, i].astype(np.float64) for i in (COS_ILLUM, DIRECT_SW, DIFFUSE_SW))
    budget = energy_budget(**layers, cos_illum=cos_illum, direct_sw=direct_sw, diffuse_sw=diffuse_sw)
    # float32 storage of inputs and targets
    np.testing.assert_allclose(shard.albedo, budget.albedo, atol=2e-5)
    np.testing.assert_allclose(shard.absorbed, np.nan_to_num(budget.absorbed), atol=2e-5)
    np.testing.assert_allclose(shard.soil, budget.soil, atol=2e-5)
    np.testing.assert_array_equal(shard.absorbed[~shard.mask], 0)
    np.testing.assert_allclose(shard.albedo + shard.absorbed.sum(axis=1) + shard.soil, 1, atol=1e-5)
    np.testing.assert_allclose(shard.scalars[:, SNOW_DEPTH], np.nansum(layers["dz"], axis=1), rtol=1e-5)
    assert np.isnan(shard.scalars[:, COS_SZA]).all()  # drawn profiles have no sun position
    assert np.all((shard.albedo > 0) & (shard.albedo < 1))
    # a complete shard is kept as it is
    mtime = (path / "albedo.npy").stat().st_mtime_ns
    write_sampled_shard(path, 300, seed=3)
    assert (path / "albedo.npy").stat().st_mtime_ns == mtime
