"""The wide-domain profile sampler: coverage, structure, determinism and its shards."""
import numpy as np

from preprocessing.profile_sampler import DOMAIN, sample_profiles, write_sampled_shard
from preprocessing.shards import open_shard
from preprocessing.tartes_labels import broadband_albedo, validate_inputs


def test_profiles_are_valid_and_span_the_domain():
    profiles = sample_profiles(5000, seed=0)
    _, _, n_layers = validate_inputs(**profiles)
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
    assert np.mean(profiles["density"] > 800) > 0.001  # ice layers
    fraction = profiles["direct_sw"] / (profiles["direct_sw"] + profiles["diffuse_sw"])
    assert fraction.min() == 0 and fraction.max() == 1
    assert profiles["cos_sza"].min() < 0.05 and profiles["cos_sza"].max() > 0.97


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
              for i, name in enumerate(("dz", "ssa", "density", "soot", "dust"))}
    direct_sw, diffuse_sw, cos_sza = (shard.scalars[:, i].astype(np.float64) for i in (1, 2, 3))
    albedo = broadband_albedo(**layers, cos_sza=cos_sza, direct_sw=direct_sw, diffuse_sw=diffuse_sw)
    # float32 storage of inputs and target
    np.testing.assert_allclose(shard.target, albedo, atol=2e-5)
    np.testing.assert_allclose(shard.scalars[:, 0], np.nansum(layers["dz"], axis=1), rtol=1e-5)
    assert np.all((shard.target > 0) & (shard.target < 1))
    # a complete shard is kept as it is
    mtime = (path / "target.npy").stat().st_mtime_ns
    write_sampled_shard(path, 300, seed=3)
    assert (path / "target.npy").stat().st_mtime_ns == mtime
