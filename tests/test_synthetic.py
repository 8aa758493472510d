"""The synthetic Crocus generator: file structure, determinism, physics, the snowpack's radiation and
labels (tiny configurations)."""
from __future__ import annotations

import json
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from preprocessing import preprocess, snowpack, synthetic
from preprocessing.shards import find_shards, open_shard
from preprocessing.synthetic import REAL_FORCING, describe_pairs, generate, virtual_points
from preprocessing.tartes_labels import broadband_albedo
from utils.profiles import EnergyBudget
from utils.solar import CrocusLight, crocus_light

# Two short seasons from Nov 29 (day 120 after Aug 1), 6 points (the sixth with global shortwave
# only): snow falls within the window.
TINY = dict(region="Alpes", seasons=2, points=6, seed=0, start_day=120, days=12)
LAYER_VARIABLES = ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2", "SNOWTEMP", "SNOWLIQ")
GLOBAL_ONLY = 5  # the point of TINY whose forcing has no diffuse light


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), **TINY)


def open_pair(pair):
    forcing_path, pro_path = pair
    return xr.open_dataset(forcing_path), xr.open_dataset(pro_path).isel(Number_of_Patches=0)


def light_of(forcing) -> CrocusLight:
    """Crocus's light (time, point) at the stamps and points of a FORCING file."""
    return crocus_light(forcing.time.values, forcing.DIR_SWdown.values, forcing.SCA_SWdown.values,
                        *(forcing[name].values for name in ("LAT", "LON", "slope", "aspect")))


def test_layout_names_and_time_axis(pairs):
    assert [(f.parent.name, p.parent.name) for f, p in pairs] == [("FORCING", "PRO")] * 2
    assert [f.name for f, _ in pairs] == ["FORCING_2010112906_2010121106.nc", "FORCING_2011112906_2011121106.nc"]
    assert [p.name for _, p in pairs] == ["PRO_2010112906_2010121106.nc", "PRO_2011112906_2011121106.nc"]
    assert all(f.parent.parent.name == "Alpes" for f, _ in pairs)
    for pair in pairs:
        forcing, pro = open_pair(pair)
        times = pd.DatetimeIndex(forcing.time.values)
        assert (np.diff(times) == pd.Timedelta(hours=1)).all() and len(times) == 12 * 24 + 1
        assert (pro.time.values == forcing.time.values).all()
        with netCDF4.Dataset(pair[0]) as raw:
            assert raw["time"].units == f"seconds since {times[0]:%Y-%m-%d %H:%M:%S}"


def test_variables_dimensions_units_and_fill_values(pairs):
    forcing_path, pro_path = pairs[0]
    with netCDF4.Dataset(REAL_FORCING) as real, netCDF4.Dataset(forcing_path) as synthetic:
        for name, var in real.variables.items():
            assert name in synthetic.variables, name
            assert synthetic[name].dimensions == var.dimensions
            if name != "time":  # its units name the season's own start, tested above
                assert synthetic[name].units == var.units
            assert synthetic[name]._FillValue == -9999999.0
        for name in ("massif_number", "IMPWET1", "IMPWET2", "IMPDRY1", "IMPDRY2"):
            assert synthetic[name].dimensions[-1] == "Number_of_points"
        assert synthetic["IMPDRY2"].units == "g/m2/s"
    with netCDF4.Dataset(pro_path) as pro:
        assert {d: len(pro.dimensions[d]) for d in pro.dimensions} == {
            "time": 289, "snow_layer": 50, "Number_of_Patches": 1, "Number_of_points": 6}
        assert pro.dimensions["time"].isunlimited()
        units = {"SNOWDZ": "m", "SNOWSSA": "m2/kg", "RSN_VEG": "kg/m3", "SNOWIMP1": "g/g", "SNOWIMP2": "g/g",
                 "SNOWTEMP": "K", "SNOWLIQ": "kg/m3", "WSN_T_ISBA": "kg/m2", "DSN_T_ISBA": "m", "ASN_VEG": "-"}
        for name, unit in units.items():
            assert pro[name].units == unit
            assert pro[name]._FillValue == 1e20
            assert pro[name].filters()["zlib"]
        assert pro["SNOWDZ"].dimensions == ("time", "snow_layer", "Number_of_Patches", "Number_of_points")
        pro.set_auto_mask(False)
        raw = pro["SNOWDZ"][:]
        assert (raw == 1e20).any() and np.isfinite(raw).all()
    forcing, pro = open_pair(pairs[0])
    assert np.isnan(pro.SNOWDZ.values).any()  # xarray decodes the fill value
    pairs_of_names = {"ZS": "ZS", "aspect": "aspect", "slope": "slope", "massif_num": "massif_number",
                      "latitude": "LAT", "longitude": "LON", "ALB_SOIL": "ALB_SOIL"}
    for pro_name, forcing_name in pairs_of_names.items():
        np.testing.assert_array_equal(pro[pro_name].values, forcing[forcing_name].values)


def test_soil_albedo_per_point_and_a_forcing_without_diffuse_light(pairs, tmp_path):
    forcing, pro = open_pair(pairs[0])
    for ds in (forcing, pro):
        assert ds.ALB_SOIL.dims == ("Number_of_points",)
        assert ds.ALB_SOIL.attrs == {"long_name": "albedo of the ground under the snow (ISBA snow-free albedo)",
                                     "units": "1"}
    soil = forcing.ALB_SOIL.values
    assert ((0.1 <= soil) & (soil <= 0.35)).all() and len(np.unique(soil)) == len(soil)
    # The sixth point has global shortwave only, all of it in DIR_SWdown; the others have diffuse light.
    direct, diffuse = forcing.DIR_SWdown.values, forcing.SCA_SWdown.values
    assert (diffuse[:, GLOBAL_ONLY] == 0).all() and (direct[:, GLOBAL_ONLY] > 0).sum() > 50
    others = np.delete(np.arange(6), GLOBAL_ONLY)
    assert ((diffuse[:, others] > 0).sum(axis=0) > 50).all()
    assert json.loads(forcing.attrs["global_shortwave_only_points"]) == [GLOBAL_ONLY]
    # The settings are recorded in both files.
    for ds in (forcing, pro):
        config = json.loads(ds.attrs["synthetic_config"])
        assert config["version"] == synthetic.GENERATOR_VERSION and config["soil_albedo"] is None
        assert config["radiation"] == ds.attrs["snowpack_radiation"] == "tartes"
        assert json.loads(ds.attrs["light"])["namelist"] == {"XTSTEP_SURF": 900.0, "LINTERP_SW": "F", "LSLOPE": "T"}
        assert "drawn per point" in ds.attrs["soil_albedo"]
    # A number fixes every point's; twelve points have two without diffuse light; bad values are refused.
    points = virtual_points("Alpes", 12, seed=0, soil_albedo=0.25)
    assert (points.ALB_SOIL == 0.25).all() and points.global_only.sum() == 2
    pd.testing.assert_frame_equal(virtual_points("Alpes", 12, seed=0).drop(columns="ALB_SOIL"),
                                  points.drop(columns="ALB_SOIL"))
    with pytest.raises(ValueError, match="soil_albedo: 1.5 is outside"):
        generate(tmp_path, **dict(TINY, soil_albedo=1.5))
    with pytest.raises(ValueError, match="radiation: 'sun'"):
        generate(tmp_path, **dict(TINY, radiation="sun"))


def test_points_are_distinct_and_seeded():
    points = virtual_points("Alpes", 40, seed=3)
    keys = points[["massif_number", "ZS", "slope", "aspect"]].apply(tuple, axis=1)
    assert keys.is_unique
    assert set(points.slope) == {0.0, 20.0, 40.0} and (points.aspect[points.slope == 0] == -1).all()
    assert points.ZS.nunique() == 10  # cycles through 900..3600 m
    pd.testing.assert_frame_equal(points.iloc[:12], virtual_points("Alpes", 12, seed=3))
    assert not virtual_points("Alpes", 12, seed=4).equals(virtual_points("Alpes", 12, seed=3))
    with pytest.raises(ValueError, match="region"):
        virtual_points("Himalaya", 3, seed=0)
    with pytest.raises(ValueError, match="distinct points"):
        virtual_points("Vosges", 10_000, seed=0)


def test_deterministic_for_a_seed_and_seasons_differ(pairs, tmp_path):
    again = generate(tmp_path / "again", **TINY)
    other_seed = generate(tmp_path / "other", **dict(TINY, seasons=1, seed=1))
    forcing, pro = open_pair(pairs[0])
    forcing_again, pro_again = open_pair(again[0])
    for name in LAYER_VARIABLES + ("ASN_VEG", "WSN_T_ISBA"):
        np.testing.assert_array_equal(pro[name].values, pro_again[name].values)
    np.testing.assert_array_equal(forcing.Tair.values, forcing_again.Tair.values)
    forcing_other, _ = open_pair(other_seed[0])
    assert not np.array_equal(forcing.Tair.values, forcing_other.Tair.values)
    forcing_next, _ = open_pair(pairs[1])
    assert not np.allclose(forcing.Tair.values, forcing_next.Tair.values)


def test_layers_swe_depth_and_albedo_are_consistent(pairs):
    for pair in pairs:
        forcing, pro = open_pair(pair)
        dz = pro.SNOWDZ.transpose("time", "snow_layer", "Number_of_points").values
        density = pro.RSN_VEG.transpose("time", "snow_layer", "Number_of_points").values
        present = ~np.isnan(dz)
        n_layers = present.sum(axis=1)
        assert n_layers.max() <= 50
        # Present layers are contiguous from the top, and every variable agrees on them.
        assert (present == (np.arange(50)[None, :, None] < n_layers[:, None, :])).all()
        for name in LAYER_VARIABLES:
            assert (~np.isnan(pro[name].transpose("time", "snow_layer", "Number_of_points").values) == present).all()
        swe, depth = pro.WSN_T_ISBA.values, pro.DSN_T_ISBA.values
        np.testing.assert_allclose(np.nansum(dz * density, axis=1), swe, rtol=1e-6)
        np.testing.assert_allclose(np.nansum(dz, axis=1), depth, rtol=1e-6)
        assert ((swe > 0) == (n_layers > 0)).all() and (swe > 0).mean() > 0.5
        assert (np.nanmin(dz) > 0) and 20 < np.nanmin(density) and np.nanmax(density) < 917
        assert np.nanmax(pro.SNOWTEMP.values) <= 273.15 + 1e-6
        lit = (swe > 0) & light_of(forcing).daylight
        albedo = pro.ASN_VEG.values
        assert lit.sum() > 50
        assert ((albedo[lit] > 0.3) & (albedo[lit] < 1)).all()
        assert (albedo[(swe > 0) & ~lit] == 1).all()
        assert np.isnan(albedo[swe == 0]).all()


def test_asn_veg_is_the_label_of_the_written_profiles_at_crocus_light(pairs):
    forcing, pro = open_pair(pairs[0])
    light = light_of(forcing)
    lit = (pro.WSN_T_ISBA.values > 0) & light.daylight
    hours, points = np.nonzero(lit)
    layers = [pro[name].transpose("time", "snow_layer", "Number_of_points").values[hours, :, points]
              for name in ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2")]
    expected = broadband_albedo(*layers, light.cos_illum[lit], light.direct_sw[lit], light.diffuse_sw[lit],
                                soil_albedo=forcing.ALB_SOIL.values[points], cos_zenith=light.cos_zenith[lit])
    np.testing.assert_allclose(pro.ASN_VEG.values[lit], expected, rtol=0, atol=1e-12)
    # Sloped points where the slope changes the angle a lot, the sun behind the slope (all light
    # diffuse), and the point without diffuse light (Crocus's split), are among the samples.
    cos_illum, cos_zenith = light.cos_illum[lit], light.cos_zenith[lit]
    sloped = forcing.slope.values[points] > 0
    assert (np.abs(cos_illum - cos_zenith)[sloped] > 0.2).any() and (cos_illum < 0.0017).any()
    assert (points == GLOBAL_ONLY).sum() > 20 and (light.diffuse_sw[lit][points == GLOBAL_ONLY] == 0).all()
    # The soil under thin snow shows: labels over another soil albedo differ there.
    other = broadband_albedo(*layers, light.cos_illum[lit], light.direct_sw[lit], light.diffuse_sw[lit],
                             soil_albedo=0.9, cos_zenith=light.cos_zenith[lit])
    thin = pro.DSN_T_ISBA.values[lit] < 0.05
    assert thin.any() and (other[thin] - expected[thin] > 1e-3).any()


def test_tartes_preprocessing_gives_back_asn_veg_sample_by_sample(pairs, tmp_path):
    """The files are a Crocus run with TARTES: preprocessing them with --target tartes at Crocus's
    light over ALB_SOIL labels the same samples as ASN_VEG's daylight ones, with ASN_VEG's values."""
    root = pairs[0][0].parents[2]
    summary = preprocess.preprocess(root, tmp_path / "shards", target="tartes", soil_albedo="ALB_SOIL")
    assert not summary.failed and len(summary.written) == 2
    for (forcing_path, pro_path), shard_path in zip(pairs, find_shards(tmp_path / "shards")):
        assert shard_path.name == pro_path.stem.removeprefix("PRO_")
        forcing, pro = open_pair((forcing_path, pro_path))
        shard = open_shard(shard_path)
        meta = shard.meta()
        albedo = pro.ASN_VEG.values
        daylight = np.isfinite(albedo) & (albedo != 1)
        samples = np.zeros_like(daylight)
        samples[pd.DatetimeIndex(pro.time.values).get_indexer(pd.DatetimeIndex(meta.time)), meta.point] = True
        assert len(meta) == daylight.sum() > 100 and (samples == daylight).all()
        written = albedo[pd.DatetimeIndex(pro.time.values).get_indexer(pd.DatetimeIndex(meta.time)), meta.point]
        np.testing.assert_allclose(np.asarray(shard.albedo), written, rtol=0, atol=1e-6)  # float32 shards
        assert (meta.slope[meta.point != GLOBAL_ONLY] >= 20).sum() > 50 and (meta.point == GLOBAL_ONLY).sum() > 20


def test_resumes_and_describes(pairs, capsys, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(pairs[0][0].parents[2], root)
    copies = [(root / f.relative_to(f.parents[2]), root / p.relative_to(p.parents[2])) for f, p in pairs]
    before = [(f.stat().st_mtime_ns, p.stat().st_mtime_ns) for f, p in copies]
    assert generate(root, describe=True, **TINY) == copies
    assert [(f.stat().st_mtime_ns, p.stat().st_mtime_ns) for f, p in copies] == before
    table = capsys.readouterr().out
    assert "0.79 +- 0.11" in table and "albedo (-)" in table and "dz (m)" in table and "cos_illum (-)" in table
    assert table == describe_pairs(pairs) + "\n"
    # A season does not depend on how many are asked: the first one is kept, not rewritten.
    assert generate(root, **dict(TINY, seasons=1)) == copies[:1]
    assert copies[0][1].stat().st_mtime_ns == before[0][1]
    assert generate(root, **dict(TINY, seasons=1, seed=5)) == copies[:1]
    assert copies[0][1].stat().st_mtime_ns != before[0][1]
    assert not list(root.rglob("*.tmp-*"))


def test_a_changed_generator_does_not_reuse_old_seasons(pairs, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(pairs[0][0].parents[2], root)
    forcing_path, pro_path = (root / f.relative_to(f.parents[2]) for f in pairs[0])
    written = lambda: (forcing_path.stat().st_mtime_ns, pro_path.stat().st_mtime_ns)
    before = written()
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    generate(root, **dict(TINY, seasons=1))
    assert written() != before
    before = written()
    generate(root, **dict(TINY, seasons=1, soil_albedo=0.3))
    assert written() != before
    forcing, pro = open_pair((forcing_path, pro_path))
    assert (forcing.ALB_SOIL.values == 0.3).all() and pro.attrs["soil_albedo"] == "ALB_SOIL 0.3 at every point"
    # The Gardner-Sharp radiation, for comparison: another snowpack, labelled alike.
    tartes_temperatures, tartes_air = pro.SNOWTEMP.values, forcing.Tair.values
    before = written()
    synthetic.main(["--out", str(root), "--seasons", "1", "--points", "6", "--start-day", "120", "--days", "12",
                    "--soil_albedo", "0.3", "--radiation", "gardner"])
    assert written() != before
    gardner_forcing, gardner = open_pair((forcing_path, pro_path))
    assert gardner.attrs["snowpack_radiation"] == "gardner"
    np.testing.assert_array_equal(gardner_forcing.Tair.values, tartes_air)
    assert not np.array_equal(gardner.SNOWTEMP.values, tartes_temperatures, equal_nan=True)


def test_chunked_writing_is_seamless_and_failures_leave_nothing(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "CHUNK_SAMPLES", 6 * 48)  # 48-hour chunks instead of one, the last of 1 hour
    chunked = generate(tmp_path / "chunked", **dict(TINY, seasons=1))
    (forcing, pro), (forcing_chunked, pro_chunked) = open_pair(pairs[0]), open_pair(chunked[0])
    for name in ("SNOWDZ", "SNOWSSA", "SNOWIMP2", "ASN_VEG"):
        np.testing.assert_array_equal(pro[name].values, pro_chunked[name].values)
    for name in ("Tair", "DIR_SWdown", "SCA_SWdown", "IMPWET2"):
        np.testing.assert_array_equal(forcing[name].values, forcing_chunked[name].values)
    calls, label = [], synthetic.broadband_albedo

    def failing_label(*args, **kwargs):  # fails in the third chunk, after two were written
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return label(*args, **kwargs)

    monkeypatch.setattr(synthetic, "broadband_albedo", failing_label)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate(tmp_path / "failed", **dict(TINY, seasons=1))
    assert not [p for p in (tmp_path / "failed").rglob("*") if p.is_file()]


def cold_forcing(hours: int, t_air: float = 263.15, points: int = 1) -> tuple[np.ndarray, CrocusLight]:
    """Calm cold weather with constant impurity deposition, and a diurnal sun on flat ground."""
    forcing = np.zeros((hours, points, len(snowpack.FORCING_FIELDS)))
    column = dict(zip(snowpack.FORCING_FIELDS, np.moveaxis(forcing, -1, 0)))
    column["Tair"][:] = t_air
    column["Qair"][:] = 0.8 * 0.622 * 611.2 * np.exp(22.452 * (t_air - 273.15) / (t_air - 0.61)) / 75000
    column["PSurf"][:] = 75000.0
    column["Wind"][:] = 2.0
    column["LWdown"][:] = 230.0
    column["soot_deposition"][:] = 1e-9
    column["dust_deposition"][:] = 1e-8
    sun = np.clip(np.sin(2 * np.pi * (np.arange(hours) % 24 - 6) / 24), 0, None)[:, None].repeat(points, axis=1)
    return forcing, CrocusLight(sun, sun.copy(), 300 * sun, 80 * sun, sun > 1e-8)


def joined(*parts: tuple[np.ndarray, CrocusLight]) -> tuple[np.ndarray, CrocusLight]:
    return (np.concatenate([forcing for forcing, _ in parts]),
            CrocusLight(*(np.concatenate(fields) for fields in zip(*(light for _, light in parts)))))


def assert_shortwave_conserved(out):
    """Every hour and point: incident = reflected + taken by the snow layers + by the ground."""
    residual = out["SW_IN"] - out["SW_REFLECTED"] - out["SW_SNOW"] - out["SW_GROUND"]
    assert np.abs(residual).max() <= 1e-9 * max(out["SW_IN"].max(), 1.0)
    assert (out["SW_REFLECTED"] >= 0).all() and (out["SW_SNOW"] >= 0).all() and (out["SW_GROUND"] >= 0).all()


def test_snowpack_cold_snowfall_conserves_mass_and_ages():
    forcing, light = cold_forcing(24 * 30)
    fields = snowpack.FORCING_FIELDS
    forcing[:24, 0, fields.index("Snowf")] = 2.0 / 3600  # 48 kg m-2 in a day
    pack = snowpack.Snowpack.bare(np.array([273.15]))
    out = pack.run(forcing, light)
    swe = out["WSN_T_ISBA"][:, 0]
    assert 2 <= np.isfinite(out["SNOWDZ"][23, :, 0]).sum() <= 6
    assert 0.94 * 48.0 < swe[-1] < 48.0  # only sublimation takes a little
    # Impurities deposited on the snow are all in the pack (no runoff in the cold).
    imp_mass = lambda name, h: np.nansum(out[name][h, :, 0] * out["RSN_VEG"][h, :, 0] * out["SNOWDZ"][h, :, 0]) * 1000
    hours = len(forcing)
    np.testing.assert_allclose(imp_mass("SNOWIMP1", -1), 1e-9 * 3600 * hours, rtol=1e-9)
    np.testing.assert_allclose(imp_mass("SNOWIMP2", -1), 1e-8 * 3600 * hours, rtol=1e-9)
    fresh_ssa, old_ssa = out["SNOWSSA"][23, 0, 0], out["SNOWSSA"][-1, 0, 0]
    assert 40 < fresh_ssa <= 80 and snowpack.SSA_MIN < old_ssa < 0.8 * fresh_ssa
    assert out["RSN_VEG"][-1, 0, 0] > out["RSN_VEG"][23, 0, 0]  # compaction
    assert np.nanmax(out["SNOWTEMP"]) < 273.15 and np.nanmax(out["SNOWLIQ"]) == 0
    assert_shortwave_conserved(out)


def melting_season(points: int = 1) -> tuple[np.ndarray, CrocusLight]:
    """A day of snowfall, a cold day, then 40 warm sunny days: the pack melts out."""
    forcing, light = joined(cold_forcing(48, points=points), cold_forcing(24 * 40, t_air=281.15, points=points))
    forcing[:24, :, snowpack.FORCING_FIELDS.index("Snowf")] = 2.0 / 3600
    forcing[48:, :, snowpack.FORCING_FIELDS.index("LWdown")] = 300.0
    light.direct_sw[48:] *= 2.5
    return forcing, light


def test_snowpack_melts_concentrating_impurities_at_the_surface():
    forcing, light = melting_season()
    pack = snowpack.Snowpack.bare(np.array([273.15]))
    out = pack.run(forcing, light)
    swe = out["WSN_T_ISBA"][:, 0]
    assert np.nanmax(out["SNOWLIQ"]) > 0
    assert swe[-1] < 0.5 * swe[47]
    alive = np.flatnonzero(swe > 0)[-1]  # the last hour with snow
    assert out["SNOWIMP2"][alive, 0, 0] > 3 * out["SNOWIMP2"][47, 0, 0]
    assert_shortwave_conserved(out)


def test_meltwater_refreezing_on_frozen_ground_makes_ice_no_denser_than_ice():
    """Meltwater reaching a thin first layer that frozen ground keeps cold refreezes in its pores until
    it is ice, no further: the layer does not swell, lets the water through, and no layer, its liquid
    water included, is ever denser than ice (the labeller refuses such profiles, so TARTES runs)."""
    fields = snowpack.FORCING_FIELDS
    forcing, light = joined(cold_forcing(72), cold_forcing(24 * 8, t_air=281.15))
    forcing[0, 0, fields.index("Snowf")] = 0.1 / 3600  # a thin first layer, 1 mm
    forcing[24:48, 0, fields.index("Snowf")] = 2.0 / 3600  # 48 kg m-2 on it a day later
    forcing[72:, 0, fields.index("LWdown")] = 300.0
    light.direct_sw[72:] *= 2.5
    out = snowpack.Snowpack.bare(np.array([258.15])).run(forcing, light, radiation="tartes")
    assert_shortwave_conserved(out)
    density, dz, liquid, temperature = (out[name][:, :, 0] for name in ("RSN_VEG", "SNOWDZ", "SNOWLIQ", "SNOWTEMP"))
    assert np.nanmax(density) <= snowpack.RHO_ICE
    hours = np.flatnonzero(np.isfinite(dz[:, 0]))
    first = np.isfinite(dz[hours]).sum(axis=1) - 1  # the first layer stays at the bottom
    ice = density[hours, first] == snowpack.RHO_ICE
    assert ice.sum() > 24 and not ice[0]  # it turns to ice and stays ice for a day or more
    ice_hours = hours[ice]
    assert (np.diff(dz[ice_hours, first[ice]]) <= 0).all()  # ice does not swell (it melts at the end)
    cold = temperature[ice_hours, first[ice]] < snowpack.T_FUS
    assert cold.sum() > 6 and (liquid[ice_hours, first[ice]][cold] == 0).all()  # cold ice holds no water
    assert np.nansum(liquid[ice_hours] * dz[ice_hours], axis=1).max() > 5  # while water soaks the pack above


def test_snowpack_takes_the_shortwave_from_tartes_as_crocus():
    """The layers below the top and the ground under thin snow are heated by the shortwave TARTES
    lets through; the darker the ground, the more it takes; melted out, the ground reflects its albedo."""
    forcing, light = melting_season(points=2)
    pack = snowpack.Snowpack.bare(np.full(2, 273.15), soil_albedo=[0.1, 0.35])
    out = pack.run(forcing, light, radiation="tartes")
    assert_shortwave_conserved(out)
    swe, depth, sw = out["WSN_T_ISBA"], out["DSN_T_ISBA"], out["SW_IN"]
    snow = (swe > 0) & light.daylight
    albedo = out["SW_REFLECTED"][snow] / sw[snow]
    thin, deep = depth[snow] < 0.05, depth[snow] > 0.3
    assert 0.6 < albedo[deep].min() and albedo.max() < 0.95 and albedo[thin].min() > 0.1
    # The top layer takes most of what snow absorbs, not all: what goes deeper, as TARTES says.
    top = pack_top_share(forcing, light)
    assert 0.5 < np.median(top) and top.max() < 1 - 1e-6
    ground = out["SW_GROUND"][snow] / sw[snow]
    assert ground[deep].max() < 0.02 and ground[thin].max() > 0.05
    both = snow.all(axis=1) & (depth < 0.05).all(axis=1)  # thin snow on both grounds
    assert (out["SW_GROUND"][both, 0] > out["SW_GROUND"][both, 1]).all()
    bare = (swe == 0) & (np.roll(swe, 1, axis=0) == 0) & (sw > 0)  # bare through the hour
    assert bare[:, 0].any() and bare[:, 1].any()
    np.testing.assert_allclose(out["SW_REFLECTED"][bare] / sw[bare], np.array([0.1, 0.35])[np.nonzero(bare)[1]])


def pack_top_share(forcing, light) -> np.ndarray:
    """The top layer's share of what the snow absorbs, each sunlit hour with two layers or more (TARTES)."""
    shares = []

    def radiation(layers, light_rows):
        budget = snowpack.tartes_radiation(layers, light_rows)
        layered = ~np.isnan(layers["dz"][:, 1])
        shares.append(budget.absorbed[layered, 0] / np.nansum(budget.absorbed[layered], axis=1))
        return budget

    snowpack.Snowpack.bare(np.array([273.15])).run(forcing[:, :1], CrocusLight(*(a[:, :1] for a in light)), radiation)
    return np.concatenate(shares)


def test_the_radiation_is_a_callable_the_hours_energy_follows():
    """Any radiation(layers, light) -> EnergyBudget plugs in (the emulator will): it sees the
    points with snow in daylight, their profiles as TARTES takes them and their light; its
    fractions of the incident shortwave are what the model takes; a darker snow melts sooner."""
    forcing, light = melting_season(points=2)
    light.diffuse_sw[:, 1] = 0.0  # a forcing without diffuse light: the radiation applies Crocus's rule
    calls = {0.6: [], 0.8: []}  # rows given to the radiation, per hour called

    def constant(albedo):
        def radiation(layers, light_rows):
            assert set(layers) == set(snowpack.RADIATION_LAYERS)
            assert set(light_rows) == {"cos_illum", "direct_sw", "diffuse_sw", "cos_zenith", "soil_albedo"}
            present = ~np.isnan(layers["dz"])
            assert all(a.shape == (len(light_rows["direct_sw"]), 50) for a in layers.values())
            assert present[:, 0].all() and (present == ~np.isnan(layers["density"])).all()
            assert (light_rows["direct_sw"] + light_rows["diffuse_sw"] > 0).all()
            calls[albedo].append(len(present))
            n = present.sum(axis=1, keepdims=True)
            absorbed = np.where(present, (0.9 - albedo) / n, np.nan)
            return EnergyBudget(np.full(len(n), albedo), absorbed, np.full(len(n), 0.1))
        return radiation

    outs = {}
    for albedo in (0.6, 0.8):
        outs[albedo] = out = snowpack.Snowpack.bare(np.full(2, 273.15), 0.2).run(forcing, light, constant(albedo))
        assert_shortwave_conserved(out)
        snow = (out["WSN_T_ISBA"] > 0) & light.daylight
        sw = out["SW_IN"][snow]
        np.testing.assert_allclose(out["SW_REFLECTED"][snow], albedo * sw)
        np.testing.assert_allclose(out["SW_GROUND"][snow], 0.1 * sw)
        np.testing.assert_allclose(out["SW_SNOW"][snow], (0.9 - albedo) * sw)
    # Called for the points with snow (after the hour's snowfall) in daylight, and only those.
    swe = outs[0.6]["WSN_T_ISBA"]
    snow_before = np.vstack([np.zeros((1, 2), bool), swe[:-1] > 0]) | (forcing[..., snowpack.F_SNOW] > 0)
    assert sum(calls[0.6]) == (snow_before & light.daylight).sum()
    melt_out = {a: np.argmax(out["WSN_T_ISBA"][:, 0] == 0) for a, out in outs.items()}
    assert 48 < melt_out[0.6] < melt_out[0.8]


@pytest.mark.parametrize("radiation", ["tartes", "gardner"])
def test_the_coupled_model_conserves_energy_on_a_synthetic_season(radiation):
    """A TINY season as the generator runs it, with slopes and a forcing without diffuse light."""
    real = synthetic.RealYear.load()
    points = virtual_points("Alpes", TINY["points"], seed=0)
    season = synthetic.plan_season(real, 0, 0, TINY["start_day"], TINY["days"])
    forcing = synthetic.season_forcing(real, points, season, slice(None))
    light = synthetic.chunk_light(season.times, 0, len(season.times), forcing, None, points)
    pack = snowpack.Snowpack.bare(np.full(len(points), 273.15), points.ALB_SOIL.to_numpy())
    out = pack.run(synthetic.snowpack_forcing(forcing), light, radiation)
    assert_shortwave_conserved(out)
    snow = (out["WSN_T_ISBA"] > 0) & light.daylight
    assert snow.sum() > 100 and snow[:, GLOBAL_ONLY].sum() > 20
    albedo = out["SW_REFLECTED"][snow] / out["SW_IN"][snow]
    assert 0.3 < albedo.min() and albedo.max() < 1
    dark = (out["WSN_T_ISBA"] > 0) & ~light.daylight
    np.testing.assert_array_equal(out["SW_REFLECTED"][dark], out["SW_IN"][dark])  # Crocus: albedo 1 in the dark
    under_snow = out["SW_GROUND"][out["WSN_T_ISBA"] > 0]
    assert (under_snow > 0).any() if radiation == "tartes" else (under_snow == 0).all()
