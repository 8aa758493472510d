"""The labeller against SURFEX's own TARTES (the yardstick data/surfex_tartes_cases.npz, 2,500
profiles through SNOWCRO_TARTES), against the `tartes` package with SURFEX's differences
(reference_energy_budget), Crocus's rules and known physics (docs/labels.md)."""
import importlib
from pathlib import Path

import numpy as np
import pytest
from tartes.impurities import SootChang90

from preprocessing import tartes_labels
from preprocessing.tartes_labels import (_clean_up, _infinite_medium_without_floor, _reference_band_energies,
                                         _tartes_without_gamma2_floor, broadband_albedo, energy_budget,
                                         reference_energy_budget)
from utils.crocus_rules import crocus_inputs, dark_rows, dumont_diffuse_fraction, light_rules
from utils.profiles import validate_inputs
from utils.report import truncation_regime
from utils.tartes_constants import (B0, BANDS, DUST, F_DIF_BEYOND, F_DIR_BEYOND, G0, ICE_SOOT, ICE_SSA,
                                    SHAPE_PARAMETERIZATION, SOOT)

YARDSTICK = Path(__file__).resolve().parents[1] / "data" / "surfex_tartes_cases.npz"
INPUTS = ("dz", "ssa", "density", "soot", "dust", "cos_illum", "direct_sw", "diffuse_sw")
# docs/labels.md: 1e-9 on rows without guarded layers; SURFEX's tridiagonal solver, which does not
# pivot, loses digits in the optically very thick layers of SSA 70, hence 1e-6 on rows with them.
TOLERANCE, GUARDED_TOLERANCE = 1e-9, 1e-6
IMPURITY_KINDS = ("clean", "typical", "surface dust event", "buried dust layer", "very dark surface")
LAYER_COUNTS = (1, 2, 3, 5, 8, 12, 20, 30, 40, 50)
CATEGORIES = (["ice", "SSA guard", "behind the slope", "no diffuse light", "dark rows"]
              + [f"impurities: {kind}" for kind in IMPURITY_KINDS]
              + ["soil albedo below 0.15", "soil albedo 0.15 to 0.3", "soil albedo above 0.3"]
              + [f"{n} layers" for n in LAYER_COUNTS])


@pytest.fixture(scope="module")
def yardstick():
    with np.load(YARDSTICK) as cases:
        return {name: cases[name] for name in cases.files}


def inputs(cases, rows=slice(None)):
    """The labeller's arguments for the yardstick's rows."""
    return {**{name: cases[name][rows] for name in INPUTS}, "soil_albedo": cases["soil_albedo"][rows],
            "cos_zenith": cases["cos_zenith"][rows]}


def category(cases, name):
    """(N,) bool: the yardstick's rows in the named category."""
    if name in ("ice", "SSA guard"):
        return guarded(cases) if name == "SSA guard" else (cases["density"] >= 850).any(axis=1)
    if name.startswith("impurities: "):
        return cases["impurity_kind"] == IMPURITY_KINDS.index(name.removeprefix("impurities: "))
    if name.startswith("soil albedo"):
        soil = cases["soil_albedo"]
        return {"below 0.15": soil < 0.15, "0.15 to 0.3": (soil >= 0.15) & (soil <= 0.3),
                "above 0.3": soil > 0.3}[name.removeprefix("soil albedo ")]
    if name.endswith(" layers"):
        return (~np.isnan(cases["dz"])).sum(axis=1) == int(name.split()[0])
    return cases[{"behind the slope": "behind", "no diffuse light": "no_diffuse", "dark rows": "night"}[name]]


def guarded(cases):
    """Rows with a layer whose SSA the guard replaces (above 100, not ice)."""
    return ((cases["ssa"] > 100) & (cases["density"] < 850)).any(axis=1)


def errors(budget, cases, rows=slice(None)):
    """(N,) the largest |labeller - SURFEX| of each row over albedo, absorbed fractions and soil."""
    absorbed = np.nanmax(np.abs(budget.absorbed - cases["surfex_absorbed"][rows]), axis=1)
    return np.maximum.reduce([np.abs(budget.albedo - cases["surfex_albedo"][rows]), absorbed,
                              np.abs(budget.soil - cases["surfex_soil"][rows])])


def assert_matches_surfex(budget, cases, rows, name):
    wrong = errors(budget, cases, rows) > np.where(guarded(cases)[rows], GUARDED_TOLERANCE, TOLERANCE)
    np.testing.assert_array_equal(np.isnan(budget.absorbed), np.isnan(cases["surfex_absorbed"][rows]))
    assert not wrong.any(), (f"{name}: {wrong.sum()} rows beyond tolerance (first {np.flatnonzero(wrong)[0]}); "
                             f"largest error {errors(budget, cases, rows).max():.2e}")


@pytest.fixture(scope="module")
def labelled(yardstick):
    return energy_budget(**inputs(yardstick))


# --- SURFEX's yardstick ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CATEGORIES)
def test_labeller_matches_surfex_on_the_whole_yardstick(yardstick, labelled, name):
    rows = category(yardstick, name)
    assert rows.sum() >= 30 or name.endswith("layers") and rows.sum() >= 100
    budget = type(labelled)(labelled.albedo[rows], labelled.absorbed[rows], labelled.soil[rows])
    assert_matches_surfex(budget, yardstick, rows, name)


def test_labeller_matches_surfex_on_every_row(yardstick, labelled):
    assert_matches_surfex(labelled, yardstick, slice(None), "all rows")
    # docs/labels.md: 9 of the rows with guarded layers lie between 1e-9 and 3e-7 of SURFEX
    assert np.sum(errors(labelled, yardstick) > TOLERANCE) <= 12


def test_broadband_albedo_is_the_budget_albedo(yardstick, labelled):
    np.testing.assert_array_equal(broadband_albedo(**inputs(yardstick)), labelled.albedo)


def test_energy_is_conserved(yardstick, labelled):
    total = labelled.albedo + np.nansum(labelled.absorbed, axis=1) + labelled.soil
    assert np.max(np.abs(total - 1)) <= 1e-10


def reference_rows(cases):
    """A fixed subset of the yardstick covering every category: the two smallest packs of each
    (tartes takes about 20 ms per call and layer count matters), one of each layer count."""
    n_layers = (~np.isnan(cases["dz"])).sum(axis=1)
    rows = set()
    for name in CATEGORIES:
        members = np.flatnonzero(category(cases, name))
        rows.update(members[np.argsort(n_layers[members], kind="stable")][:1 if name.endswith("layers") else 2])
    return np.array(sorted(rows))


def test_reference_matches_surfex_and_the_labeller(yardstick, labelled):
    rows = reference_rows(yardstick)
    assert 25 <= len(rows) <= 45
    reference = reference_energy_budget(**inputs(yardstick, rows))
    assert_matches_surfex(reference, yardstick, rows, "reference")
    # both implementations solve without SURFEX's loss of digits: they agree closer than SURFEX
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_allclose(getattr(reference, name), getattr(labelled, name)[rows], rtol=0, atol=1e-9)


def test_light_rules_give_the_light_surfex_splits_into_bands(yardstick):
    """SURFEX's spectral forcing of each lit row (PSPEC_DIR = r_dir direct, PSPEC_DIF = r_dif diffuse),
    the sun behind the slope and Dumont's split included, is what light_rules give."""
    lit = ~yardstick["night"]
    _, direct, diffuse = light_rules(yardstick["cos_illum"], yardstick["direct_sw"], yardstick["diffuse_sw"],
                                     yardstick["cos_zenith"])
    np.testing.assert_allclose(yardstick["surfex_spec_dir"][lit], direct[lit, None] * BANDS["ratio_direct"],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(yardstick["surfex_spec_dif"][lit], diffuse[lit, None] * BANDS["ratio_diffuse"],
                               rtol=0, atol=1e-9)
    np.testing.assert_array_equal(dark_rows(yardstick["direct_sw"], yardstick["diffuse_sw"], yardstick["cos_zenith"]),
                                  yardstick["night"])


# --- SURFEX's differences from the tartes package (docs/labels.md, step 2) --------------------------

def test_soot_has_crocus_density():
    np.testing.assert_allclose(BANDS["mae_soot"] / SootChang90.MAE(BANDS["wavelength"]), 2050 / 1270, rtol=1e-14)


def test_the_clean_up_on_a_very_dark_top_layer(yardstick, labelled):
    """Row 12: 1.6 cm of SSA 2.1 snow holding 7.5e-3 dust over older snow, 54 W m-2. In the
    ultraviolet delta-Eddington makes that layer absorb more than the band brings; SURFEX trims
    the excess where it is below 0.01 W m-2 (300, 360 nm) and drops the layer's energy where it is
    above (320, 340 nm): the albedo is 0.243, not the 0.198 of the energies as solved."""
    p = 12
    assert yardstick["impurity_kind"][p] == 4
    layers, scalars, _, _ = validate_inputs(*(yardstick[name][p:p + 1, :2] if yardstick[name].ndim == 2
                                              else yardstick[name][p:p + 1] for name in INPUTS),
                                            soil_albedo=yardstick["soil_albedo"][p],
                                            cos_zenith=yardstick["cos_zenith"][p])
    layers, scalars = crocus_inputs(layers, scalars)
    with _tartes_without_gamma2_floor():
        solved, incident = _reference_band_energies(*(layers[k][0] for k in ("ssa", "density", "dz", "soot", "dust")),
                                                    *(scalars[k][0] for k in ("cos_illum", "direct_sw", "diffuse_sw",
                                                                              "soil_albedo")))
    cleaned = _clean_up(solved, incident)
    assert np.all(solved[:4, 0] > incident[:4])
    np.testing.assert_array_equal(cleaned[[0, 3], 0], incident[[0, 3]])  # trimmed to the incident flux
    np.testing.assert_array_equal(cleaned[[1, 2], 0], 0.0)  # dropped
    np.testing.assert_array_equal(cleaned[4:], solved[4:])
    sw = scalars["direct_sw"][0] + scalars["diffuse_sw"][0]
    beyond = scalars["direct_sw"][0] * F_DIR_BEYOND + scalars["diffuse_sw"][0] * F_DIF_BEYOND
    as_solved = 1 - (solved.sum() + beyond) / sw
    surfex = yardstick["surfex_albedo"][p]
    assert surfex > as_solved + 0.04
    assert abs(1 - (cleaned.sum() + beyond) / sw - surfex) < TOLERANCE
    assert abs(labelled.albedo[p] - surfex) < TOLERANCE


def test_labels_depend_on_the_fluxes_where_the_clean_up_acts(yardstick):
    """The clean-up's thresholds are in W m-2: four times the light moves the 360 nm excess above
    0.01 W m-2, and the row's albedo changes; a row of typical snow does not change."""
    rows = [12, int(np.flatnonzero(yardstick["impurity_kind"] == 1)[0])]
    budget = energy_budget(**inputs(yardstick, rows))
    brighter = inputs(yardstick, rows)
    brighter["direct_sw"], brighter["diffuse_sw"] = 4 * brighter["direct_sw"], 4 * brighter["diffuse_sw"]
    changed = energy_budget(**brighter).albedo - budget.albedo
    assert changed[0] > 1e-3 and abs(changed[1]) < 1e-12


def r_zero_ssa(band):
    """The SSA of clean snow whose infinite-medium albedo r = gamma2 / (gamma1 + ke) is 0 in the
    band, by bisection on tartes' own optics (r < 0 for coarse snow there, > 0 for fine)."""
    core = importlib.import_module("tartes.tartes")

    def r(ssa):
        ssalb, g = core.single_scattering_optical_parameters(BANDS["wavelength"][band:band + 1], "w2008", ssa,
                                                             [0.0, 0.0], [SOOT, DUST], SHAPE_PARAMETERIZATION, G0, B0)
        return _infinite_medium_without_floor(ssalb, g)[0][0]

    low, high = 5.0, 70.0
    assert r(low) < 0 < r(high)
    for _ in range(60):
        low, high = (0.5 * (low + high), high) if r(0.5 * (low + high)) < 0 else (low, 0.5 * (low + high))
    assert abs(r(low)) < 1e-15
    return low


def test_finite_where_the_infinite_medium_albedo_is_zero():
    """Without tartes' floor on gamma2, r crosses 0 in the strongly absorbing bands: the closed forms
    divide by nothing that vanishes there, and agree with tartes' banded solve."""
    ssa = r_zero_ssa(int(np.flatnonzero(np.isclose(BANDS["wavelength"], 1500e-9))[0]))
    profile = uniform_pack(n_layers=2, dz=0.01, ssa=ssa)
    profile["ssa"][0, 1] = 20.0
    fast, reference = energy_budget(**profile), reference_energy_budget(**profile)
    assert np.isfinite(fast.albedo).all() and np.isfinite(fast.absorbed).all() and np.isfinite(fast.soil).all()
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_allclose(getattr(fast, name), getattr(reference, name), rtol=0, atol=1e-12)


def untruncated_albedo(dz, ssa, density, soot, dust, cos_illum, direct_sw, diffuse_sw, soil_albedo):
    """Crocus's albedo of one lit profile (already through Crocus's rules) solved by the tartes
    package over the real soil in every band, without SURFEX's truncation or clean-up."""
    import tartes
    common = dict(wavelength=BANDS["wavelength"], shape_parameterization=SHAPE_PARAMETERIZATION, g0=G0, B0=B0,
                  impurities_type=[SOOT, DUST], refrac_index="w2008", soilalbedo=soil_albedo, dir_frac=1.0,
                  totflux=1.0, SSA=ssa, density=density, thickness=dz,
                  impurities=[[float(s), float(d)] for s, d in zip(soot, dust)])
    with _tartes_without_gamma2_floor():
        _, direct = tartes.absorption_profile(sza=np.degrees(np.arccos(cos_illum)), **common)
        _, diffuse = tartes.absorption_profile(sza=53.0, **common)
    energy = direct_sw * BANDS["ratio_direct"] @ direct + diffuse_sw * BANDS["ratio_diffuse"] @ diffuse
    return 1 - (energy.sum() + direct_sw * F_DIR_BEYOND + diffuse_sw * F_DIF_BEYOND) / (direct_sw + diffuse_sw)


def test_truncation_raises_the_albedo_of_thin_layers_over_ice(yardstick, labelled):
    """Where the cumulative optical depth passes 30, SURFEX drops the layer with all below it and
    puts an albedo-1 floor under the kept ones: over ice, which absorbs the near infrared that
    crosses a thin layer, the floor reflects it. Row 196 (1.1 cm and 4 mm of ice over snow) and 2 mm
    of fresh snow over 3 m of ice."""
    p = 196
    m = int((~np.isnan(yardstick["dz"][p])).sum())
    layers, scalars, _, _ = validate_inputs(*(yardstick[name][p:p + 1] for name in INPUTS),
                                            soil_albedo=yardstick["soil_albedo"][p],
                                            cos_zenith=yardstick["cos_zenith"][p])
    layers, scalars = crocus_inputs(layers, scalars)
    solved_over_soil = untruncated_albedo(*(layers[k][0, :m] for k in ("dz", "ssa", "density", "soot", "dust")),
                                          *(scalars[k][0] for k in ("cos_illum", "direct_sw", "diffuse_sw",
                                                                    "soil_albedo")))
    assert yardstick["surfex_albedo"][p] > solved_over_soil + 0.005
    assert abs(labelled.albedo[p] - yardstick["surfex_albedo"][p]) < GUARDED_TOLERANCE

    over_ice = dict(dz=[0.002, 3.0], ssa=[30.0, 20.0], density=[150.0, 900.0], soot=[1e-9, 0.0], dust=[0.0, 0.0])
    over_ice = {k: np.array([v]) for k, v in over_ice.items()}
    light = dict(cos_illum=np.array([0.5]), direct_sw=np.array([500.0]), diffuse_sw=np.array([100.0]))
    albedo = broadband_albedo(**over_ice, **light)[0]
    as_given = {k: v[0] for k, v in over_ice.items()} | {"ssa": np.array([30.0, ICE_SSA]),
                                                          "soot": np.array([1e-9, ICE_SOOT])}
    assert albedo > untruncated_albedo(**as_given, **{k: v[0] for k, v in light.items()}, soil_albedo=0.2) + 0.1
    assert abs(albedo - reference_energy_budget(**over_ice, **light).albedo[0]) < TOLERANCE


def test_the_gamma2_patch_is_undone():
    core = importlib.import_module("tartes.tartes")
    stock = core.infinite_medium_optical_parameters["delta_eddington"], core.Gp_Gm_vectors_delta_eddington
    with pytest.raises(RuntimeError), _tartes_without_gamma2_floor():
        assert core.infinite_medium_optical_parameters["delta_eddington"] is _infinite_medium_without_floor
        raise RuntimeError
    assert (core.infinite_medium_optical_parameters["delta_eddington"], core.Gp_Gm_vectors_delta_eddington) == stock


# --- Profiles across the whole input domain -------------------------------------------------------

def random_profiles(n, seed):
    """Profiles spanning the whole input domain: 1..50 layers, log-uniform SSA (above Crocus's
    limit of 100 too), impurities and dz, densities up to ice, ice layers at the surface and at
    depth, illumination cosines down to the sun behind the slope, rows without diffuse light
    (cos_zenith given or not), per-row soil albedos."""
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
    ice[2:6, 0] = True  # ice at the surface
    density[ice & ~absent] = rng.uniform(850, 917, (ice & ~absent).sum())
    direct_fraction = rng.uniform(0, 1, n)
    direct_fraction[:3] = (0.0, 1.0, 1.0)
    total = rng.uniform(5, 1000, n)
    cos_illum = rng.uniform(0.02, 1, n)
    cos_illum[6:9] = (-0.3, 0.0016, 0.0017)[:max(n - 6, 0)]  # the sun behind the slope, and just not
    cos_zenith = np.clip(cos_illum + rng.uniform(-0.2, 0.2, n), 0.01, 1)
    cos_zenith[2] = np.nan  # no diffuse light, taken as it is
    return dict(
        dz=layer_field(0.002, 0.2, log=True),
        ssa=layer_field(2, 250, log=True),
        density=density,
        soot=layer_field(1e-10, 1e-5, log=True, zero_fraction=0.3),
        dust=layer_field(1e-8, 1e-2, log=True, zero_fraction=0.3),
        cos_illum=cos_illum,
        direct_sw=direct_fraction * total,
        diffuse_sw=(1 - direct_fraction) * total,
        soil_albedo=rng.uniform(0, 1, n),
        cos_zenith=cos_zenith,
    )


def test_labeller_matches_the_reference_across_the_input_domain():
    profiles = random_profiles(14, seed=1)
    fast, reference = energy_budget(**profiles), reference_energy_budget(**profiles)
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_allclose(getattr(fast, name), getattr(reference, name), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(fast.absorbed), np.isnan(profiles["dz"]))
    assert np.all((fast.albedo > 0) & (fast.albedo < 1))
    total = fast.albedo + np.nansum(fast.absorbed, axis=1) + fast.soil
    assert np.max(np.abs(total - 1)) <= 1e-10


def test_absorbed_keeps_the_width_of_the_inputs():
    profile = uniform_pack(n_layers=7)
    profile = {k: (np.pad(v, ((0, 0), (0, 53)), constant_values=np.nan) if v.ndim == 2 else v)
               for k, v in profile.items()}
    result = budget(**profile)
    assert result.absorbed.shape == (1, 60)
    assert np.isnan(result.absorbed[0, 7:]).all() and np.isfinite(result.absorbed[0, :7]).all()
    empty = budget(**{k: v[:0] for k, v in profile.items()})
    assert empty.albedo.shape == (0,) and empty.absorbed.shape == (0, 60)


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
    profiles["ssa"][23, 0] = 20.0
    profiles["soil_albedo"][30] = 1.5
    with pytest.raises(ValueError, match=r"soil_albedo: row 30: 1.5 is not a finite value in \[0, 1\]"):
        energy_budget(**profiles)


# --- Crocus's rules (docs/labels.md, steps 0 and 1) -----------------------------------------------

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
    np.testing.assert_array_equal(light_rules(np.array([-0.3, 0.0016, 0.0017]), 400.0, 100.0)[0], 0.0017)


def test_dumont_split_applies_per_row_where_cos_zenith_is_given():
    cos_illum, direct, diffuse = light_rules(np.array([0.6, 0.6, 0.6, 0.6, -0.2]), np.full(5, 300.0),
                                             np.array([50.0, 0.0, 0.0, 0.0, 0.0]),
                                             np.array([0.6, 0.6, np.nan, 0.0, 0.6]))
    f = dumont_diffuse_fraction(np.array([0.6, 0.0]))
    np.testing.assert_array_equal(cos_illum, [0.6, 0.6, 0.6, 0.6, 0.0017])
    # the row with diffuse light is not split (SURFEX's whole-array defect is not reproduced);
    # cos_zenith NaN keeps a zero diffuse flux; behind the slope all is diffuse
    np.testing.assert_allclose(diffuse, [50.0, 300 * f[0], 0.0, 300 * f[1], 300.0], rtol=1e-15)
    np.testing.assert_allclose(direct + diffuse, [350.0, 300.0, 300.0, 300.0, 300.0], rtol=1e-15)
    assert f[1] == 1.0 and 0.27 < dumont_diffuse_fraction(1.0) < 0.271
    np.testing.assert_array_equal(light_rules(0.6, 300.0, 0.0)[2], 0.0)  # no cos_zenith: as it is
    # the labeller follows: with the sun at cos 0.2, Dumont makes 60 % of the light diffuse, whose
    # spectrum is bluer, where snow is brighter: 0.82 becomes 0.89
    profile = uniform_pack(cos_illum=0.2, diffuse_sw=0.0)
    assert broadband_albedo(**profile, cos_zenith=0.2)[0] - label(**profile) > 0.05


def test_dark_rows_follow_the_contract(yardstick, labelled):
    night = yardstick["night"]
    np.testing.assert_array_equal(labelled.albedo[night], 1.0)
    np.testing.assert_array_equal(labelled.soil[night], 0.0)
    np.testing.assert_array_equal(labelled.absorbed[night], yardstick["surfex_absorbed"][night])  # 0, NaN below
    # no light, light but the sun at or below the horizon, light without a sun given, no snow
    rows = [uniform_pack(n_layers=3, direct_sw=d, diffuse_sw=f) for d, f in ((0.0, 0.0), (300.0, 50.0),
                                                                              (5e-9, 5e-9), (300.0, 50.0))]
    profiles = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    profiles = {k: np.pad(v, ((0, 1), (0, 1)) if v.ndim == 2 else (0, 1), constant_values=np.nan)
                for k, v in profiles.items()}
    profiles["direct_sw"][4], profiles["diffuse_sw"][4] = 300.0, 50.0  # a lit row without any layer
    cos_zenith = np.array([0.5, 1e-8, 0.5, np.nan, 0.5])
    for function in (energy_budget, reference_energy_budget):
        result = function(**profiles, cos_zenith=cos_zenith)
        np.testing.assert_array_equal(result.albedo[:3], 1.0)
        np.testing.assert_array_equal(result.soil[:3], 0.0)
        np.testing.assert_array_equal(result.absorbed[:3], [[0.0, 0.0, 0.0, np.nan]] * 3)
        assert 0 < result.albedo[3] < 1 and np.isfinite(result.absorbed[3, :3]).all()
        assert np.isnan(result.albedo[4]) and np.isnan(result.soil[4]) and np.isnan(result.absorbed[4]).all()
    np.testing.assert_array_equal(broadband_albedo(**profiles, cos_zenith=cos_zenith)[:3], 1.0)


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


def test_darker_soil_under_a_thin_pack_absorbs_more():
    """1 cm of snow over soils of albedo 0.05 to 0.45, a per-row soil_albedo: the darker the soil,
    the lower the albedo, the more the soil absorbs and the more the pack and soil take together
    (the pack alone absorbs a little less: less light comes back up through it)."""
    soils = np.array([0.05, 0.15, 0.3, 0.45])
    thin = {k: np.repeat(v, 4, axis=0) for k, v in uniform_pack(n_layers=1, dz=0.01).items()}
    result = energy_budget(**thin, soil_albedo=soils)
    assert np.all(np.diff(result.albedo) > 0.004)
    assert np.all(np.diff(result.soil) < -0.005)
    assert np.all(np.diff(result.soil + np.nansum(result.absorbed, axis=1)) < -0.004)
    deep = {k: np.repeat(v, 4, axis=0) for k, v in uniform_pack(n_layers=30, dz=0.1).items()}
    assert np.ptp(broadband_albedo(**deep, soil_albedo=soils)) < 1e-6


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


def test_fresh_clean_snow_brighter_than_old_dusty_snow(yardstick):
    fresh = label(**uniform_pack(ssa=60, density=100, soot=1e-9))
    old = label(**uniform_pack(ssa=8, density=450, soot=5e-8, dust=5e-4))
    assert 0.8 < fresh < 1
    assert old < fresh - 0.15
    # SURFEX's own: deep lit packs of clean snow against those under a surface dust event
    lit_deep = ~yardstick["night"] & (yardstick["density"][:, :5] < 850).all(axis=1)
    clean, dusty = (np.median(yardstick["surfex_albedo"][lit_deep & (yardstick["impurity_kind"] == kind)])
                    for kind in (0, 2))
    assert clean > dusty + 0.05


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
    ("soil_albedo", np.nan, r"soil_albedo: row 0: nan is not a finite value in \[0, 1\]"),
    ("soil_albedo", -0.1, r"soil_albedo: row 0: -0.1 is not a finite value in \[0, 1\]"),
    ("cos_zenith", 1.2, r"cos_zenith: row 0: 1.2 is outside \[-1, 1\]"),
])
def test_invalid_values_raise(function, field, value, message):
    profile = dict(uniform_pack(), soil_albedo=np.array([0.2]), cos_zenith=np.array([0.5]))
    with pytest.raises(ValueError, match=message):
        function(**with_value(profile, field, value))


def test_invalid_soil_albedo_and_cos_zenith_numbers_raise():
    with pytest.raises(ValueError, match=r"soil_albedo: 1.5 is not a finite value in \[0, 1\]"):
        energy_budget(**uniform_pack(), soil_albedo=1.5)
    with pytest.raises(ValueError, match=r"cos_zenith: inf is outside \[-1, 1\]"):
        broadband_albedo(**uniform_pack(), cos_zenith=np.inf)
    with pytest.raises(ValueError, match=r"soil_albedo: expected a number or shape \(1,\)"):
        energy_budget(**uniform_pack(), soil_albedo=np.array([0.2, 0.3]))


def test_rows_without_light_are_an_error_only_where_the_caller_asks():
    """The emulator's check (the default) refuses rows without light; the labeller's gives them the
    dark-row values."""
    profile = uniform_pack(direct_sw=0.0, diffuse_sw=0.0)
    with pytest.raises(ValueError, match="direct_sw \\+ diffuse_sw: row 0: no incident shortwave"):
        validate_inputs(**profile)
    scalars = validate_inputs(**profile, allow_dark=True, soil_albedo=0.3)[1]
    np.testing.assert_array_equal(scalars["soil_albedo"], [0.3])
    assert np.isnan(scalars["cos_zenith"]).all()


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


def test_without_truncation_the_labeller_solves_every_layer_as_tartes(yardstick):
    """energy_budget(truncation=False), a diagnostic beside Crocus's labels: every layer solved over
    the soil, as the tartes package does, on the two packs of the test above, where SURFEX's
    truncation raises the albedo; utils.report.truncation_regime marks them, not a deep pack."""
    p = 196
    m = int((~np.isnan(yardstick["dz"][p])).sum())
    profile = {name: yardstick[name][p:p + 1] for name in INPUTS} | {
        "soil_albedo": yardstick["soil_albedo"][p], "cos_zenith": yardstick["cos_zenith"][p:p + 1]}
    layers, scalars, _, _ = validate_inputs(**profile)
    layers, scalars = crocus_inputs(layers, scalars)
    by_tartes = untruncated_albedo(*(layers[k][0, :m] for k in ("dz", "ssa", "density", "soot", "dust")),
                                   *(scalars[k][0] for k in ("cos_illum", "direct_sw", "diffuse_sw", "soil_albedo")))
    kept, solved = energy_budget(**profile), energy_budget(**profile, truncation=False)
    assert abs(solved.albedo[0] - by_tartes) < TOLERANCE
    assert abs(solved.albedo[0] + np.nansum(solved.absorbed) + solved.soil[0] - 1) < 1e-12
    assert kept.albedo[0] > solved.albedo[0] + 0.005

    over_ice = {k: np.array([v]) for k, v in dict(dz=[0.002, 3.0], ssa=[30.0, 20.0], density=[150.0, 900.0],
                                                   soot=[1e-9, 0.0], dust=[0.0, 0.0]).items()}
    deep = {k: np.array([v]) for k, v in dict(dz=[0.3, 0.5], ssa=[30.0, 20.0], density=[150.0, 300.0],
                                               soot=[1e-9, 1e-9], dust=[0.0, 0.0]).items()}
    light = dict(cos_illum=np.array([0.5, 0.5]), direct_sw=np.array([500.0, 500.0]),
                 diffuse_sw=np.array([100.0, 100.0]))
    packs = {k: np.vstack([over_ice[k], deep[k]]) for k in over_ice}
    as_given = {k: v[0] for k, v in over_ice.items()} | {"ssa": np.array([30.0, ICE_SSA]),
                                                          "soot": np.array([1e-9, ICE_SOOT])}
    solved = energy_budget(**packs, **light, truncation=False).albedo
    assert abs(solved[0] - untruncated_albedo(**as_given, **{k: v[0] for k, v in light.items()},
                                              soil_albedo=0.2)) < TOLERANCE
    regime = truncation_regime(energy_budget(**packs, **light).albedo, solved)
    assert regime.tolist() == [1, 0]
