"""The synthetic Crocus generator: file structure, determinism, physics and labels (tiny configurations)."""
from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from preprocessing import snowpack, synthetic
from preprocessing.synthetic import REAL_FORCING, describe_pairs, generate, virtual_points
from preprocessing.tartes_labels import broadband_albedo
from utils.solar import sun_geometry

# Two short seasons from Nov 29 (day 120 after Aug 1), 3 points: snow falls within the window.
TINY = dict(region="Alpes", seasons=2, points=3, seed=0, start_day=120, days=12)
LAYER_VARIABLES = ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2", "SNOWTEMP", "SNOWLIQ")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic"), **TINY)


def open_pair(pair):
    forcing_path, pro_path = pair
    return xr.open_dataset(forcing_path), xr.open_dataset(pro_path).isel(Number_of_Patches=0)


def geometry(forcing, pro):
    """(cos_sza, cos_illum) (time, point) at the points of the files."""
    return sun_geometry(pro.time.values, *(forcing[name].values for name in ("LAT", "LON", "slope", "aspect")))


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
            "time": 289, "snow_layer": 50, "Number_of_Patches": 1, "Number_of_points": 3}
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
                      "latitude": "LAT", "longitude": "LON"}
    for pro_name, forcing_name in pairs_of_names.items():
        np.testing.assert_array_equal(pro[pro_name].values, forcing[forcing_name].values)


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
        cos_sza, _ = geometry(forcing, pro)
        light = forcing.DIR_SWdown.values + forcing.SCA_SWdown.values
        lit = (swe > 0) & (light > 0) & (cos_sza > 0)
        albedo = pro.ASN_VEG.values
        assert lit.sum() > 50
        assert ((albedo[lit] > 0.3) & (albedo[lit] < 1)).all()
        assert (albedo[(swe > 0) & ~lit] == 1).all()
        assert np.isnan(albedo[swe == 0]).all()


def test_asn_veg_is_the_label_of_the_written_profiles_at_the_illumination_angle(pairs):
    forcing, pro = open_pair(pairs[0])
    cos_sza, cos_illum = geometry(forcing, pro)
    direct, diffuse = forcing.DIR_SWdown.values, forcing.SCA_SWdown.values
    lit = (pro.WSN_T_ISBA.values > 0) & (direct + diffuse > 0) & (cos_sza > 0)
    hours, points = np.nonzero(lit)
    layers = [pro[name].transpose("time", "snow_layer", "Number_of_points").values[hours, :, points]
              for name in ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2")]
    expected = broadband_albedo(*layers, cos_illum[lit], direct[lit], diffuse[lit])
    np.testing.assert_allclose(pro.ASN_VEG.values[lit], expected, rtol=0, atol=1e-12)
    # The tiny set has sloped points where the slope changes the angle a lot, the sun behind it included.
    slope = forcing.slope.values[points]
    assert (np.abs(cos_illum[lit] - cos_sza[lit])[slope > 0] > 0.2).any() and (cos_illum[lit] <= 0).any()


def test_the_direct_flux_and_the_label_see_the_same_sun(pairs):
    """The FORCING's direct flux was projected on the slope with the geometry the label uses: no
    direct light where the sun is behind the slope or below the horizon."""
    for pair in pairs:
        forcing, pro = open_pair(pair)
        cos_sza, cos_illum = geometry(forcing, pro)
        direct = forcing.DIR_SWdown.values
        behind = (cos_sza > 0) & (cos_illum <= 0)
        assert behind.sum() > 10 and (direct[behind] == 0).all() and (direct[cos_sza == 0] == 0).all()
        assert (direct[(cos_illum > 0.1) & (cos_sza > 0.1)] > 0).mean() > 0.5


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


def test_chunked_writing_is_seamless_and_failures_leave_nothing(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "CHUNK_SAMPLES", 3 * 48)  # 48-hour chunks instead of one, the last of 1 hour
    chunked = generate(tmp_path / "chunked", **dict(TINY, seasons=1))
    (forcing, pro), (forcing_chunked, pro_chunked) = open_pair(pairs[0]), open_pair(chunked[0])
    for name in ("SNOWDZ", "SNOWSSA", "SNOWIMP2", "ASN_VEG"):
        np.testing.assert_array_equal(pro[name].values, pro_chunked[name].values)
    for name in ("Tair", "DIR_SWdown", "SCA_SWdown", "IMPWET2"):
        np.testing.assert_array_equal(forcing[name].values, forcing_chunked[name].values)
    calls, label = [], synthetic.broadband_albedo

    def failing_label(*args):  # fails in the third chunk, after two were written
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return label(*args)

    monkeypatch.setattr(synthetic, "broadband_albedo", failing_label)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate(tmp_path / "failed", **dict(TINY, seasons=1))
    assert not [p for p in (tmp_path / "failed").rglob("*") if p.is_file()]


def cold_forcing(hours: int, t_air: float = 263.15) -> np.ndarray:
    """Calm cold weather with a weak diurnal sun and constant impurity deposition."""
    forcing = np.zeros((hours, 1, len(snowpack.FORCING_FIELDS)))
    column = dict(zip(snowpack.FORCING_FIELDS, np.moveaxis(forcing[:, 0], -1, 0)))
    sun = np.clip(np.sin(2 * np.pi * (np.arange(hours) % 24 - 6) / 24), 0, None)
    column["Tair"][:] = t_air
    column["Qair"][:] = 0.8 * 0.622 * 611.2 * np.exp(22.452 * (t_air - 273.15) / (t_air - 0.61)) / 75000
    column["PSurf"][:] = 75000.0
    column["Wind"][:] = 2.0
    column["DIR_SWdown"][:] = 300 * sun
    column["SCA_SWdown"][:] = 80 * sun
    column["LWdown"][:] = 230.0
    column["soot_deposition"][:] = 1e-9
    column["dust_deposition"][:] = 1e-8
    return forcing


def test_snowpack_cold_snowfall_conserves_mass_and_ages():
    forcing = cold_forcing(24 * 30)
    fields = snowpack.FORCING_FIELDS
    forcing[:24, 0, fields.index("Snowf")] = 2.0 / 3600  # 48 kg m-2 in a day
    pack = snowpack.Snowpack.bare(np.array([273.15]))
    out = pack.run(forcing)
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


def test_snowpack_melts_concentrating_impurities_at_the_surface():
    forcing = np.concatenate([cold_forcing(48), cold_forcing(24 * 40, t_air=281.15)])
    fields = snowpack.FORCING_FIELDS
    forcing[:24, 0, fields.index("Snowf")] = 2.0 / 3600
    forcing[48:, 0, fields.index("DIR_SWdown")] *= 2.5
    forcing[48:, 0, fields.index("LWdown")] = 300.0
    pack = snowpack.Snowpack.bare(np.array([273.15]))
    out = pack.run(forcing)
    swe = out["WSN_T_ISBA"][:, 0]
    assert np.nanmax(out["SNOWLIQ"]) > 0
    assert swe[-1] < 0.5 * swe[47]
    alive = np.flatnonzero(swe > 0)[-1]  # the last hour with snow
    assert out["SNOWIMP2"][alive, 0, 0] > 3 * out["SNOWIMP2"][47, 0, 0]
