"""The batched labeller against the tartes package, Crocus's rules and known physics."""
import numpy as np
import pytest

from preprocessing import tartes_labels
from preprocessing.tartes_labels import broadband_albedo, energy_budget, reference_energy_budget
from utils.tartes_constants import ICE_SOOT, ICE_SSA


def random_profiles(n, seed):
    """Profiles spanning the whole input domain: 1..50 layers, log-uniform SSA (above Crocus's
    limit of 100 too), impurities and dz, densities up to ice, ice layers at the surface and at
    depth, and illumination cosines down to the sun behind the slope."""
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

    density = layer_field(50, 917)
    ice = rng.random((n, 50)) < 0.05
    ice[2:12, 0] = True  # ice at the surface
    density[ice & ~absent] = rng.uniform(850, 917, (ice & ~absent).sum())
    direct_fraction = rng.uniform(0, 1, n)
    direct_fraction[:2] = (0.0, 1.0)
    total = rng.uniform(5, 1000, n)
    cos_illum = rng.uniform(0.02, 1, n)
    if n >= 34:
        cos_illum[12:30] = rng.uniform(-0.5, 0.0017, 18)  # the sun behind the slope
        cos_illum[30:34] = (0.0017, 0.00169, -1.0, 1.0)
    return dict(
        dz=layer_field(0.002, 0.2, log=True),
        ssa=layer_field(2, 250, log=True),
        density=density,
        soot=layer_field(1e-10, 1e-5, log=True, zero_fraction=0.3),
        dust=layer_field(1e-8, 1e-2, log=True, zero_fraction=0.3),
        cos_illum=cos_illum,
        direct_sw=direct_fraction * total,
        diffuse_sw=(1 - direct_fraction) * total,
    )


def uniform_pack(n_layers=10, dz=0.1, ssa=30.0, density=250.0, soot=0.0, dust=0.0, cos_illum=0.5,
                 direct_sw=500.0, diffuse_sw=100.0):
    """One profile of identical layers, as the keyword arguments of the labeller (N = 1)."""
    def layer(value):
        return np.full((1, n_layers), float(value))
    return dict(dz=layer(dz), ssa=layer(ssa), density=layer(density), soot=layer(soot), dust=layer(dust),
                cos_illum=np.array([cos_illum]), direct_sw=np.array([direct_sw]), diffuse_sw=np.array([diffuse_sw]))


def label(**profile):
    return broadband_albedo(**profile)[0]


def budget(**profile):
    return energy_budget(**profile)


@pytest.fixture(scope="module")
def random_200():
    profiles = random_profiles(200, seed=1)
    return profiles, energy_budget(**profiles), reference_energy_budget(**profiles)


def test_energy_budget_matches_tartes_package_on_200_random_profiles(random_200):
    profiles, fast, reference = random_200
    assert (profiles["density"] >= 850).sum() > 100 and (profiles["ssa"] > 100).sum() > 100
    assert (profiles["cos_illum"] < 0.0017).sum() >= 20
    assert np.max(np.abs(fast.albedo - reference.albedo)) <= 1e-8
    assert np.max(np.abs(fast.soil - reference.soil)) <= 1e-8
    np.testing.assert_array_equal(np.isnan(fast.absorbed), np.isnan(profiles["dz"]))
    np.testing.assert_array_equal(np.isnan(reference.absorbed), np.isnan(profiles["dz"]))
    assert np.nanmax(np.abs(fast.absorbed - reference.absorbed)) <= 1e-8
    assert np.all((fast.albedo > 0) & (fast.albedo < 1))
    assert np.nanmin(fast.absorbed) >= -1e-15 and fast.soil.min() >= 0


def test_energy_is_conserved(random_200):
    _, fast, _ = random_200
    total = fast.albedo + np.nansum(fast.absorbed, axis=1) + fast.soil
    assert np.max(np.abs(total - 1)) <= 1e-10


def test_broadband_albedo_is_the_budget_albedo(random_200):
    profiles, fast, _ = random_200
    np.testing.assert_allclose(broadband_albedo(**profiles), fast.albedo, rtol=0, atol=1e-12)


def test_absorbed_keeps_the_width_of_the_inputs():
    profile = uniform_pack(n_layers=7)
    profile = {k: (np.pad(v, ((0, 0), (0, 3)), constant_values=np.nan) if v.ndim == 2 else v)
               for k, v in profile.items()}
    result = budget(**profile)
    assert result.absorbed.shape == (1, 10)
    assert np.isnan(result.absorbed[0, 7:]).all() and np.isfinite(result.absorbed[0, :7]).all()


def test_chunking_does_not_change_results_and_reports_global_rows(monkeypatch):
    profiles = random_profiles(40, seed=3)
    whole = energy_budget(**profiles)
    albedo = broadband_albedo(**profiles)
    monkeypatch.setattr(tartes_labels, "CHUNK_PROFILES", 7)
    chunked = energy_budget(**profiles)
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_array_equal(getattr(chunked, name), getattr(whole, name))
    np.testing.assert_array_equal(broadband_albedo(**profiles), albedo)
    profiles["ssa"][23, 0] = -1.0
    with pytest.raises(ValueError, match="ssa: row 23, layer 1: negative"):
        energy_budget(**profiles)


# --- Crocus's rules (TARTES_LABELS.md, step 1) -------------------------------------------------

def test_ice_layers_take_crocus_ice_properties():
    for density in (850.0, 900.0, 917.0):
        ice = uniform_pack(n_layers=3, dz=0.05, ssa=20, density=density, soot=1e-9, dust=1e-4)
        explicit = uniform_pack(n_layers=3, dz=0.05, ssa=ICE_SSA, density=density, soot=ICE_SOOT, dust=0.0)
        np.testing.assert_array_equal(budget(**ice).absorbed, budget(**explicit).absorbed)
    # just below the threshold the layer is snow
    snow = uniform_pack(n_layers=3, dz=0.05, ssa=20, density=849.0)
    assert label(**snow) > label(**uniform_pack(n_layers=3, dz=0.05, ssa=20, density=850.0)) + 0.1


def test_ssa_above_100_is_replaced_by_70():
    assert label(**uniform_pack(ssa=150)) == label(**uniform_pack(ssa=70))
    assert label(**uniform_pack(ssa=100)) != label(**uniform_pack(ssa=70))


def test_sun_behind_the_slope_makes_all_light_diffuse():
    behind = budget(**uniform_pack(cos_illum=-0.3, direct_sw=400.0, diffuse_sw=100.0))
    diffuse = budget(**uniform_pack(cos_illum=0.9, direct_sw=0.0, diffuse_sw=500.0))
    np.testing.assert_allclose(behind.absorbed, diffuse.absorbed, rtol=0, atol=1e-15)
    assert abs(behind.albedo[0] - diffuse.albedo[0]) < 1e-15
    lit = label(**uniform_pack(cos_illum=0.0017, diffuse_sw=0.0))
    assert lit != label(**uniform_pack(cos_illum=0.0016, diffuse_sw=0.0))


# --- Physics -------------------------------------------------------------------------------------

def test_more_dust_lowers_albedo():
    albedos = [label(**uniform_pack(dust=d)) for d in (0.0, 1e-6, 1e-5, 1e-4, 1e-3)]
    assert np.all(np.diff(albedos) < 0)


def test_more_soot_lowers_albedo():
    albedos = [label(**uniform_pack(soot=s)) for s in (0.0, 1e-8, 1e-7, 1e-6)]
    assert np.all(np.diff(albedos) < 0)


def test_larger_ssa_raises_albedo():
    albedos = [label(**uniform_pack(ssa=s)) for s in (2, 5, 10, 20, 50, 100)]
    assert np.all(np.diff(albedos) > 0)


def test_thin_pack_over_soil_is_darker_than_deep_pack():
    thin = label(**uniform_pack(n_layers=1, dz=0.02, ssa=20))
    deep = label(**uniform_pack(n_layers=20, dz=0.1, ssa=20))
    assert thin < deep - 0.05
    # below a few centimetres the pack lets the soil (albedo 0.2) show through
    assert 0.2 < thin < 0.8


def test_thinner_packs_send_more_to_the_soil():
    soil = [budget(**uniform_pack(n_layers=1, dz=dz, ssa=20)).soil[0] for dz in (0.005, 0.02, 0.05, 0.2, 1.0)]
    assert np.all(np.diff(soil) < 0)
    assert soil[0] > 0.1 and soil[-1] < 2e-3  # visible light still crosses a metre of snow


def test_dust_moves_absorption_to_the_top_layer():
    clean = budget(**uniform_pack(n_layers=20, dz=0.02, dust=0.0))
    dusty = budget(**uniform_pack(n_layers=20, dz=0.02, dust=1e-3))
    assert dusty.absorbed[0, 0] > clean.absorbed[0, 0] + 0.02
    share = lambda b: b.absorbed[0, 0] / np.nansum(b.absorbed[0])  # noqa: E731
    assert share(dusty) > share(clean)


def test_absorption_falls_with_depth_in_a_uniform_pack():
    result = budget(**uniform_pack(n_layers=20, dz=0.02))
    assert np.all(np.diff(result.absorbed[0]) < 0)


def test_albedo_rises_with_zenith_angle_under_direct_light():
    albedos = [label(**uniform_pack(cos_illum=mu, diffuse_sw=0.0)) for mu in (1.0, 0.8, 0.6, 0.4, 0.2, 0.05)]
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


# --- Invalid input ---------------------------------------------------------------------------------

def with_value(profile, field, row_value):
    profile = {k: v.copy() for k, v in profile.items()}
    profile[field][(0,) * profile[field].ndim] = row_value
    return profile


@pytest.mark.parametrize("function", [broadband_albedo, energy_budget])
@pytest.mark.parametrize("field,value,message", [
    ("ssa", -5.0, "ssa: row 0, layer 1: negative value"),
    ("dust", -1e-6, "dust: row 0, layer 1: negative value"),
    ("density", np.nan, "density: row 0, layer 1: NaN inside a present layer"),
    ("density", 1200.0, "density: row 0, layer 1: above 917 kg m-3"),
    ("dz", 0.0, "dz: row 0, layer 1: zero inside a present layer"),
    ("cos_illum", -1.01, "cos_illum: row 0: .* outside"),
    ("cos_illum", 1.2, "cos_illum: row 0: .* outside"),
    ("cos_illum", np.nan, "cos_illum: row 0: .* outside"),
    ("direct_sw", -3.0, "direct_sw: row 0"),
])
def test_invalid_values_raise(function, field, value, message):
    with pytest.raises(ValueError, match=message):
        function(**with_value(uniform_pack(), field, value))


def test_no_incident_light_raises():
    with pytest.raises(ValueError, match="direct_sw \\+ diffuse_sw: row 0"):
        energy_budget(**uniform_pack(direct_sw=0.0, diffuse_sw=0.0))
    with pytest.raises(ValueError, match="soil_albedo"):
        energy_budget(**uniform_pack(), soil_albedo=1.5)


def test_layer_below_absent_layer_raises():
    profile = random_profiles(5, seed=4)
    profile["dz"][3, :] = 0.05
    profile["dz"][3, 1] = np.nan
    with pytest.raises(ValueError, match=r"dz: row 3, layer 2: absent \(NaN\) above a present layer"):
        energy_budget(**profile)


def test_mismatched_shapes_raise():
    profile = uniform_pack()
    with pytest.raises(ValueError, match="ssa: shape"):
        energy_budget(**dict(profile, ssa=np.ones((1, 9))))
    with pytest.raises(ValueError, match="cos_illum: expected shape"):
        energy_budget(**dict(profile, cos_illum=np.array([0.5, 0.5])))
    with pytest.raises(ValueError, match="dz: expected an \\(N, L\\) array"):
        energy_budget(**dict(profile, dz=np.ones((1, 51))))
