"""The batched labeller against the tartes package and against known physics."""
import numpy as np
import pytest

from preprocessing import tartes_labels
from preprocessing.tartes_labels import (
    broadband_albedo,
    broadband_albedo_components,
    combine_components,
    reference_broadband_albedo,
)


def random_profiles(n, seed):
    """Profiles spanning the whole input domain: 1..50 layers, log-uniform SSA, impurities and dz."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(1, 51, n)
    n_layers[:2] = (1, 50)
    absent = np.arange(50)[None, :] >= n_layers[:, None]

    def layer_field(low, high, log=False, zero_fraction=0.0):
        if log:
            a = np.exp(rng.uniform(np.log(low), np.log(high), (n, 50)))
        else:
            a = rng.uniform(low, high, (n, 50))
        a[rng.random((n, 50)) < zero_fraction] = 0.0
        a[absent] = np.nan
        return a

    direct_fraction = rng.uniform(0, 1, n)
    direct_fraction[:2] = (0.0, 1.0)
    total = rng.uniform(5, 1000, n)
    return dict(
        dz=layer_field(0.002, 0.2, log=True),
        ssa=layer_field(2, 150, log=True),
        density=layer_field(50, 917),
        soot=layer_field(1e-10, 1e-5, log=True, zero_fraction=0.3),
        dust=layer_field(1e-8, 1e-2, log=True, zero_fraction=0.3),
        cos_sza=rng.uniform(0.02, 1, n),
        direct_sw=direct_fraction * total,
        diffuse_sw=(1 - direct_fraction) * total,
    )


def uniform_pack(n_layers=10, dz=0.1, ssa=30.0, density=250.0, soot=0.0, dust=0.0, cos_sza=0.5,
                 direct_sw=500.0, diffuse_sw=100.0):
    """One profile of identical layers, as the keyword arguments of the labeller (N = 1)."""
    def layer(value):
        return np.full((1, n_layers), float(value))
    return dict(dz=layer(dz), ssa=layer(ssa), density=layer(density), soot=layer(soot), dust=layer(dust),
                cos_sza=np.array([cos_sza]), direct_sw=np.array([direct_sw]), diffuse_sw=np.array([diffuse_sw]))


def label(**profile):
    return broadband_albedo(**profile)[0]


def test_matches_tartes_package_on_200_random_profiles():
    profiles = random_profiles(200, seed=1)
    fast = broadband_albedo(**profiles)
    reference = reference_broadband_albedo(**profiles)
    assert np.max(np.abs(fast - reference)) <= 1e-8
    assert np.all((fast > 0) & (fast < 1))


def test_components_recombine_to_the_label():
    profiles = random_profiles(50, seed=2)
    layers = {k: profiles[k] for k in ("dz", "ssa", "density", "soot", "dust", "cos_sza")}
    albedo_direct, albedo_diffuse = broadband_albedo_components(**layers)
    combined = combine_components(albedo_direct, albedo_diffuse, profiles["direct_sw"], profiles["diffuse_sw"])
    np.testing.assert_allclose(combined, broadband_albedo(**profiles), rtol=0, atol=1e-14)
    # purely direct and purely diffuse light give the two components
    only_direct = dict(profiles, direct_sw=np.ones(50), diffuse_sw=np.zeros(50))
    np.testing.assert_allclose(broadband_albedo(**only_direct), albedo_direct, rtol=0, atol=1e-14)


def test_chunking_does_not_change_results_and_reports_global_rows(monkeypatch):
    profiles = random_profiles(40, seed=3)
    whole = broadband_albedo(**profiles)
    monkeypatch.setattr(tartes_labels, "CHUNK_PROFILES", 7)
    np.testing.assert_array_equal(broadband_albedo(**profiles), whole)
    profiles["ssa"][23, 0] = -1.0
    with pytest.raises(ValueError, match="ssa: row 23"):
        broadband_albedo(**profiles)


def test_more_dust_lowers_albedo():
    albedos = [label(**uniform_pack(dust=d)) for d in (0.0, 1e-6, 1e-5, 1e-4, 1e-3)]
    assert np.all(np.diff(albedos) < 0)


def test_more_soot_lowers_albedo():
    albedos = [label(**uniform_pack(soot=s)) for s in (0.0, 1e-8, 1e-7, 1e-6)]
    assert np.all(np.diff(albedos) < 0)


def test_larger_ssa_raises_albedo():
    albedos = [label(**uniform_pack(ssa=s)) for s in (2, 5, 10, 20, 50, 100, 150)]
    assert np.all(np.diff(albedos) > 0)


def test_thin_pack_over_soil_is_darker_than_deep_pack():
    thin = label(**uniform_pack(n_layers=1, dz=0.02, ssa=20))
    deep = label(**uniform_pack(n_layers=20, dz=0.1, ssa=20))
    assert thin < deep - 0.05
    # below a few centimetres the pack lets the soil (albedo 0.2) show through
    assert 0.2 < thin < 0.8


def test_albedo_rises_with_zenith_angle_under_direct_light():
    albedos = [label(**uniform_pack(cos_sza=mu, diffuse_sw=0.0)) for mu in (1.0, 0.8, 0.6, 0.4, 0.2, 0.05)]
    assert np.all(np.diff(albedos) > 0)


def test_fresh_clean_snow_brighter_than_old_dusty_snow():
    fresh = label(**uniform_pack(ssa=60, density=100, soot=1e-9))
    old = label(**uniform_pack(ssa=8, density=450, soot=5e-8, dust=5e-4))
    assert 0.8 < fresh < 1
    assert old < fresh - 0.15


def test_soil_albedo_only_matters_for_thin_packs():
    thin = uniform_pack(n_layers=1, dz=0.01)
    deep = uniform_pack(n_layers=30, dz=0.1)
    assert broadband_albedo(**thin, soil_albedo=0.6)[0] > broadband_albedo(**thin, soil_albedo=0.1)[0] + 0.02
    assert abs(broadband_albedo(**deep, soil_albedo=0.6)[0] - broadband_albedo(**deep, soil_albedo=0.1)[0]) < 1e-6


def with_value(profile, field, row_value):
    profile = {k: v.copy() for k, v in profile.items()}
    profile[field][(0,) * profile[field].ndim] = row_value
    return profile


@pytest.mark.parametrize("field,value,message", [
    ("ssa", -5.0, "ssa: row 0: negative value"),
    ("dust", -1e-6, "dust: row 0: negative value"),
    ("density", np.nan, "density: row 0: NaN inside a present layer"),
    ("dz", 0.0, "dz: row 0: zero inside a present layer"),
    ("cos_sza", 0.0, "cos_sza: row 0: .* outside"),
    ("cos_sza", 1.2, "cos_sza: row 0: .* outside"),
    ("direct_sw", -3.0, "direct_sw: row 0"),
])
def test_invalid_values_raise(field, value, message):
    with pytest.raises(ValueError, match=message):
        broadband_albedo(**with_value(uniform_pack(), field, value))


def test_no_incident_light_raises():
    with pytest.raises(ValueError, match="direct_sw \\+ diffuse_sw: row 0"):
        broadband_albedo(**uniform_pack(direct_sw=0.0, diffuse_sw=0.0))


def test_layer_below_absent_layer_raises():
    profile = random_profiles(5, seed=4)
    profile["dz"][3, :] = 0.05
    profile["dz"][3, 1] = np.nan
    with pytest.raises(ValueError, match="dz: row 3: a present layer lies below an absent one"):
        broadband_albedo(**profile)


def test_mismatched_shapes_raise():
    profile = uniform_pack()
    with pytest.raises(ValueError, match="ssa: shape"):
        broadband_albedo(**dict(profile, ssa=np.ones((1, 9))))
    with pytest.raises(ValueError, match="cos_sza: expected shape"):
        broadband_albedo(**dict(profile, cos_sza=np.array([0.5, 0.5])))
    with pytest.raises(ValueError, match="dz: expected an \\(N, L\\) array"):
        broadband_albedo(**dict(profile, dz=np.ones((1, 51))))
