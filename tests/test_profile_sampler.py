"""The wide-domain profile sampler: coverage, the shares of its categories, the light's geometry,
determinism, and its shards labelled as SURFEX's TARTES computes them."""
import numpy as np
import pytest

from preprocessing.profile_sampler import (COS_ZENITH_CAP, DOMAIN, FORCING, IMPURITIES, KINDS, LIGHT, draw_profiles,
                                           realistic_profiles, sample_profiles, write_sampled_shard)
from preprocessing.shards import open_shard
from preprocessing.tartes_labels import energy_budget
from utils.report import TRUNCATION_EFFECT
from utils.schema import ILLUMINATION, LAYER_VARIABLES, SCALAR_VARIABLES
from utils.tartes_constants import COS_ILLUM_MIN, ICE_DENSITY

N = 5000


@pytest.fixture(scope="module")
def drawn():
    return draw_profiles(N, seed=0)


def assert_share(mask, share, n):
    """A seeded draw's share within four binomial standard deviations of the designed one."""
    assert abs(np.mean(mask) - share) < 4 * np.sqrt(share * (1 - share) / n) + 1e-9, (np.mean(mask), share)


def test_profiles_are_valid_and_span_the_domain(drawn):
    profiles, _ = drawn
    present = ~np.isnan(profiles["dz"])
    n_layers = present.sum(axis=1)
    # layers from the top, none missing in between, the same in every layer variable
    np.testing.assert_array_equal(present, np.arange(50)[None, :] < n_layers[:, None])
    for name in LAYER_VARIABLES:
        np.testing.assert_array_equal(~np.isnan(profiles[name]), present, err_msg=name)
    assert n_layers.min() == 1 and n_layers.max() == 50
    assert np.mean(n_layers <= 5) > 0.15  # thin packs over soil
    for name in ("dz", "ssa", "density", "soot", "dust", "soil_albedo"):
        values = profiles[name][~np.isnan(profiles[name])]
        low, high = DOMAIN[name]
        assert low <= values.min() and values.max() <= high, name
        span = high - low  # each range is covered near both ends
        assert values.min() < low + 0.05 * span and values.max() > high - 0.05 * span, name
    assert np.mean(profiles["soot"][:, 0] == 0) > 0.1 and np.mean(profiles["dust"][:, 0] == 0) > 0.1
    ice = profiles["density"] >= ICE_DENSITY  # Crocus's ice layers, at the surface and at depth
    assert np.mean(ice[present]) > 0.02 and np.mean(ice[:, 0]) > 0.02
    assert np.mean(profiles["ssa"][:, 0] > 100) > 0.05  # above Crocus's SSA limit
    shortwave = profiles["direct_sw"] + profiles["diffuse_sw"]
    assert shortwave.min() >= DOMAIN["shortwave"][0] * (1 - 1e-12)  # no dark row
    assert shortwave.max() <= DOMAIN["shortwave"][1] * (1 + 1e-12)


def test_shares_of_each_category_are_as_designed(drawn):
    profiles, drawn = drawn
    for name, shares in (("kind", KINDS), ("forcing", FORCING)):
        assert set(drawn[name]) == set(shares)
        for category, share in shares.items():
            assert_share(drawn[name] == category, share, N)
    not_deep = drawn["kind"] != "deep_clean"  # deep clean packs are clean
    assert set(drawn["impurity"][~not_deep]) == {"clean"}
    for category, share in IMPURITIES.items():
        assert_share(drawn["impurity"][not_deep] == category, share, not_deep.sum())
    assert_share(drawn["behind_slope"], LIGHT["behind_slope"], N)
    front = ~drawn["behind_slope"]
    assert_share(drawn["slope"][front] == 0, LIGHT["flat"], front.sum())
    assert_share(profiles["cos_zenith"] == COS_ZENITH_CAP, LIGHT["zenith_cap"], N)


def test_each_category_is_what_it_says(drawn):
    profiles, drawn = drawn
    dz, ssa, density, dust, soot = (profiles[k] for k in ("dz", "ssa", "density", "dust", "soot"))
    n_layers = (~np.isnan(dz)).sum(axis=1)
    kind, impurity = drawn["kind"], drawn["impurity"]

    deep = kind == "deep_clean"
    assert n_layers[deep].min() >= 27 and np.nanmax(dust[deep]) == 0 and np.nanmax(soot[deep]) <= 2e-9
    clean = impurity == "clean"
    assert np.nanmax(dust[clean]) == 0 and np.nanmax(soot[clean]) <= 2e-9
    # thin layers (2 cm at most) over an ice or dense (>= 550 kg m-3) layer of 2 cm or more
    thin = kind == "thin_over_dense"
    over_dense = np.zeros(N, bool)
    for k in (1, 2, 3):
        over_dense |= (np.all(dz[:, :k] < 0.0201, axis=1) & (density[:, k] >= 550) & (dz[:, k] > 0.0199))
    assert over_dense[thin].all()
    assert 0.3 < np.mean(density[thin, :4].max(axis=1) >= ICE_DENSITY) < 0.8  # ice below in about half
    # surface dust events: 1e-4..3e-3 in the top layer of packs of 10 layers or more
    surface = impurity == "surface_dust"
    assert n_layers[surface].min() >= 10
    assert np.all((dust[surface, 0] >= 1e-4) & (dust[surface, 0] <= 3e-3))
    assert np.mean(dust[surface, 2] >= 1e-4) > 0.2  # some events reach the third layer
    # buried dust layers: under at least one layer
    buried = impurity == "buried_dust"
    assert n_layers[buried].min() >= 4 and np.all(np.nanmax(dust[buried, 1:], axis=1) >= 1e-4)
    # very dark surfaces: a coarse, very dusty top layer, not ice (which Crocus would make clean)
    dark = impurity == "dark_surface"
    assert np.all((ssa[dark, 0] >= 2) & (ssa[dark, 0] <= 4) & (dust[dark, 0] >= 3e-3))
    assert np.all(density[dark, 0] < ICE_DENSITY)
    assert np.mean((ssa[~dark, 0] <= 4) & (dust[~dark, 0] >= 3e-3)) < 0.002  # and hardly anywhere else
    # forcing: no diffuse light (exactly 0), overcast (no direct light), or both
    forcing = drawn["forcing"]
    direct, diffuse = profiles["direct_sw"], profiles["diffuse_sw"]
    assert np.all(diffuse[forcing == "no_diffuse"] == 0) and np.all(direct[forcing == "overcast"] == 0)
    mixed = forcing == "mixed"
    assert np.all((direct[mixed] > 0) & (diffuse[mixed] > 0))


def test_cos_illum_follows_the_geometry(drawn):
    profiles, drawn = drawn
    cos_zenith, cos_illum = profiles["cos_zenith"], profiles["cos_illum"]
    assert COS_ZENITH_CAP == pytest.approx(0.0099998, abs=1e-7)  # SURFEX's cap: zenith <= pi/2 - 0.01
    assert cos_zenith.min() == COS_ZENITH_CAP and cos_zenith.max() <= 1 and cos_zenith.max() > 0.99
    # the sun and the slope's normal as unit vectors (east, north, up): cos_illum is their dot product
    zenith = np.arccos(cos_zenith)
    azimuth, slope, aspect = (np.deg2rad(drawn[k]) for k in ("azimuth", "slope", "aspect"))
    sun = np.stack([np.sin(zenith) * np.sin(azimuth), np.sin(zenith) * np.cos(azimuth), cos_zenith])
    normal = np.stack([np.sin(slope) * np.sin(aspect), np.sin(slope) * np.cos(aspect), np.cos(slope)])
    np.testing.assert_allclose(cos_illum, np.sum(sun * normal, axis=0), rtol=0, atol=1e-12)
    # within what the geometry allows, whatever the azimuths
    assert np.all(cos_illum >= np.cos(zenith + slope) - 1e-12) and np.all(cos_illum <= np.cos(zenith - slope) + 1e-12)
    assert 0 <= drawn["slope"].min() and drawn["slope"].max() <= DOMAIN["slope"][1] and drawn["slope"].max() > 49
    flat = drawn["slope"] == 0
    np.testing.assert_allclose(cos_illum[flat], cos_zenith[flat], rtol=0, atol=1e-15)
    aspect_deg = drawn["aspect"]
    assert np.all(aspect_deg[flat] == -1) and np.all((aspect_deg[~flat] >= 0) & (aspect_deg[~flat] < 360))
    # the sun behind the slope exactly where drawn so, down to well behind it; and facing it
    np.testing.assert_array_equal(cos_illum < COS_ILLUM_MIN, drawn["behind_slope"])
    assert cos_illum.min() < -0.4 and cos_illum.max() > 0.99
    assert np.mean(cos_illum[~flat] > cos_zenith[~flat]) > 0.3  # slopes facing the sun get more of it


def test_snow_mostly_ages_downwards():
    profiles = sample_profiles(2000, seed=1)
    deep = ~np.isnan(profiles["dz"][:, 9])
    ssa, density = profiles["ssa"][deep], profiles["density"][deep]
    assert np.mean(ssa[:, 0] > ssa[:, 9]) > 0.6
    assert np.mean(density[:, 0] < density[:, 9]) > 0.6


def test_draw_is_deterministic_and_sample_profiles_is_what_the_emulator_takes():
    (a, tags_a), (b, tags_b) = draw_profiles(100, seed=7), draw_profiles(100, seed=7)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    for name in tags_a:
        np.testing.assert_array_equal(tags_a[name], tags_b[name])
    assert not np.array_equal(a["ssa"], draw_profiles(100, seed=8)[0]["ssa"], equal_nan=True)
    plain, full = sample_profiles(100, seed=7), sample_profiles(100, seed=7, soil_and_zenith=True)
    assert list(plain) == [*LAYER_VARIABLES, *ILLUMINATION]  # models.Emulator's arguments, in its order
    assert list(full) == [*plain, "soil_albedo", "cos_zenith"]
    for name in full:
        np.testing.assert_array_equal(full[name], a[name])


def test_realistic_profiles_add_soil_and_zenith_on_request():
    plain = realistic_profiles(200, n_layers=50, seed=5)
    full = realistic_profiles(200, n_layers=50, seed=5, soil_and_zenith=True)
    assert list(plain) == [*LAYER_VARIABLES, *ILLUMINATION]
    for name in plain:  # the option changes none of the other values
        np.testing.assert_array_equal(full[name], plain[name])
    np.testing.assert_array_equal(full["cos_zenith"], plain["cos_illum"])  # flat ground
    assert 0.1 <= full["soil_albedo"].min() and full["soil_albedo"].max() <= 0.35 and full["soil_albedo"].std() > 0.05


def test_labels_are_physically_sound_in_every_category():
    profiles, drawn = draw_profiles(600, seed=4)
    budget = energy_budget(**profiles)
    present = ~np.isnan(profiles["dz"])
    np.testing.assert_array_equal(np.isnan(budget.absorbed), ~present)
    np.testing.assert_allclose(budget.albedo + np.nansum(budget.absorbed, axis=1) + budget.soil, 1, rtol=0, atol=1e-10)
    assert np.all((budget.albedo > 0) & (budget.albedo < 1))  # no row is dark
    assert np.all(budget.absorbed[present] >= -1e-12)
    impurity = drawn["impurity"]
    mean = {kind: budget.albedo[impurity == kind].mean() for kind in IMPURITIES}
    assert mean["dark_surface"] < 0.6 < mean["typical"] < mean["clean"]  # dust and wet coarse snow darken
    assert budget.absorbed[impurity == "dark_surface", 0].mean() > 0.3  # most of it in the dusty top layer
    # thin packs over a dark soil let light through to it
    thin = present.sum(axis=1) == 1
    assert budget.soil[thin].max() > 0.05


def test_shard_holds_the_v3_labels_of_the_drawn_profiles(tmp_path):
    path = write_sampled_shard(tmp_path / "sampled", 300, seed=3)
    shard = open_shard(path)
    assert len(shard) == 300 and shard.info["region"] == "sampled"
    assert shard.info["shares"]["kinds"] == KINDS and shard.info["shares"]["forcing"] == FORCING
    # rebuild the labeller's inputs from the shard, by the schema's names, and label again
    layers = {name: np.where(shard.mask, shard.layers[:, i], np.nan).astype(np.float64)
              for i, name in enumerate(LAYER_VARIABLES)}
    scalars = {name: shard.scalars[:, i].astype(np.float64) for i, name in enumerate(SCALAR_VARIABLES)}
    depth = scalars.pop("snow_depth")
    budget = energy_budget(**layers, **scalars)
    # float32 storage of inputs and targets
    np.testing.assert_allclose(shard.albedo, budget.albedo, atol=2e-5)
    np.testing.assert_allclose(shard.absorbed, np.nan_to_num(budget.absorbed), atol=2e-5)
    np.testing.assert_allclose(shard.soil, budget.soil, atol=2e-5)
    np.testing.assert_array_equal(shard.absorbed[~shard.mask], 0)
    np.testing.assert_allclose(shard.albedo + shard.absorbed.sum(axis=1) + shard.soil, 1, atol=1e-5)
    np.testing.assert_allclose(depth, np.nansum(layers["dz"], axis=1), rtol=1e-5)
    assert np.all((shard.albedo > 0) & (shard.albedo < 1))
    # each profile's soil albedo and sun: the labels depend on them
    assert 0.05 <= scalars["soil_albedo"].min() and scalars["soil_albedo"].max() <= 0.5
    assert np.all(scalars["cos_zenith"] >= np.float32(COS_ZENITH_CAP))
    no_diffuse = scalars["diffuse_sw"] == 0
    assert 15 < no_diffuse.sum() < 50
    as_given = energy_budget(**layers, **{**scalars, "cos_zenith": None})  # a zero diffuse flux taken as it is
    assert np.mean(np.abs(as_given.albedo - shard.albedo)[no_diffuse & (scalars["cos_illum"] >= COS_ILLUM_MIN)]) > 0.005
    default_soil = energy_budget(**layers, **{**scalars, "soil_albedo": 0.2})
    assert np.max(np.abs(default_soil.soil - shard.soil)) > 0.01
    # the geometry in the metadata: flat ground, where cos_illum is cos_zenith
    meta = shard.meta()
    assert meta["slope"].between(0, DOMAIN["slope"][1]).all()
    flat = (meta["slope"] == 0).to_numpy()
    assert 0.15 < flat.mean() < 0.45 and (meta["aspect"][flat] == -1).all()
    np.testing.assert_array_equal(scalars["cos_illum"][flat], scalars["cos_zenith"][flat])
    # a complete shard is kept as it is
    mtime = (path / "albedo.npy").stat().st_mtime_ns
    write_sampled_shard(path, 300, seed=3)
    assert (path / "albedo.npy").stat().st_mtime_ns == mtime


def test_a_truncation_regime_shard_keeps_the_draws_where_surfex_truncation_changes_the_albedo(tmp_path, monkeypatch):
    """The same draws, kept only where the labeller's albedo with and without SURFEX's truncation
    differ by more than utils.report.TRUNCATION_EFFECT (some 7 % of them), until there are n."""
    from preprocessing import profile_sampler
    monkeypatch.setattr(profile_sampler, "PROFILES_PER_DRAW", 2000)
    path = write_sampled_shard(tmp_path / "truncation", 250, seed=4, truncation_regime=True)
    shard = open_shard(path)
    assert len(shard) == 250 and shard.info["kept"] == "rows in SURFEX's truncation regime"
    layers = {name: np.where(shard.mask, shard.layers[:, i], np.nan).astype(np.float64)
              for i, name in enumerate(LAYER_VARIABLES)}
    scalars = {name: shard.scalars[:, i].astype(np.float64) for i, name in enumerate(SCALAR_VARIABLES)}
    del scalars["snow_depth"]
    kept, solved = energy_budget(**layers, **scalars), energy_budget(**layers, **scalars, truncation=False)
    np.testing.assert_allclose(shard.albedo, kept.albedo, atol=2e-5)
    assert np.all(np.abs(kept.albedo - solved.albedo) > TRUNCATION_EFFECT * 0.9)  # float32 inputs
    # the rows are those of the plain draw, in order: the first 2000 draws hold fewer than 250
    first, _ = draw_profiles(2000, seed=np.random.SeedSequence([4, 0]).generate_state(1)[0])
    plain = energy_budget(**first)
    regime = np.abs(plain.albedo - energy_budget(**first, truncation=False).albedo) > TRUNCATION_EFFECT
    assert 50 < regime.sum() < 250
    np.testing.assert_allclose(shard.layers[:regime.sum(), 0], np.nan_to_num(first["dz"][regime]), rtol=1e-7)
