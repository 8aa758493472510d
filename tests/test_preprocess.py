"""preprocessing.preprocess on tiny hand-made Crocus files: samples agree with the netCDF files,
bad input fails clearly without stopping other pairs, and interrupted runs resume to the same shards."""
import json
import os
import subprocess
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from preprocessing import preprocess as pp
from preprocessing.shards import ARRAYS, SHARD_FORMAT, ShardWriter, find_shards, open_shard
from preprocessing.synthetic import generate
from preprocessing.tartes_labels import reference_energy_budget
from tests.crocus_fixtures import SEASON, make_pair, write_pair
from utils.schema import COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, SCALAR_VARIABLES, SOIL_ALBEDO
from utils.solar import S2M_LIGHT, LightSettings, solar_angles

REPO = Path(__file__).resolve().parents[1]
PRO_LAYER_NAMES = ("SNOWDZ", "SNOWSSA", "RSN_VEG", "SNOWIMP1", "SNOWIMP2")


def raw(path, name):
    """A variable read with netCDF4 (not xarray), fill masked to NaN, patch 0, as (time, [layer,] point)."""
    with netCDF4.Dataset(path) as ds:
        var = ds.variables[name]
        values = np.ma.filled(var[:].astype(np.float64), np.nan)
        dims = list(var.dimensions)
    if "Number_of_Patches" in dims:
        values = np.take(values, 0, axis=dims.index("Number_of_Patches"))
        dims.remove("Number_of_Patches")
    order = [d for d in ("time", "snow_layer", "Number_of_points") if d in dims]
    return np.transpose(values, [dims.index(d) for d in order])


def raw_times(path):
    with netCDF4.Dataset(path) as ds:
        return pd.DatetimeIndex(netCDF4.num2date(ds["time"][:], ds["time"].units, only_use_cftime_datetimes=False))


def shard_arrays(path):
    shard = open_shard(path)
    return {name: np.asarray(getattr(shard, name)) for name in ARRAYS}, shard


def assert_same_shards(a, b, any_order=False, same_region=True):
    """Equal arrays and metadata; with any_order, as sets of (time, point) rows (the row order follows the blocks)."""
    (arrays_a, shard_a), (arrays_b, shard_b) = shard_arrays(a), shard_arrays(b)
    meta_a, meta_b = shard_a.meta(), shard_b.meta()
    order_a = np.lexsort((meta_a.point, meta_a.time)) if any_order else slice(None)
    order_b = np.lexsort((meta_b.point, meta_b.time)) if any_order else slice(None)
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name][order_a], arrays_b[name][order_b], err_msg=name)
    columns = [c for c in meta_a.columns if same_region or c != "region"]
    pd.testing.assert_frame_equal(meta_a.iloc[order_a][columns].reset_index(drop=True),
                                  meta_b.iloc[order_b][columns].reset_index(drop=True))


@pytest.fixture
def alpes(tmp_path):
    """One good pair: tmp/in/Alpes; returns (input_dir, pro_path, forcing_path)."""
    pro, forcing = make_pair()
    return (tmp_path / "in", *write_pair(tmp_path / "in", "Alpes", pro, forcing))


def crocus_step_light(forcing_path, times, light=S2M_LIGHT):
    """The light of Crocus' last step before each of `times`, rebuilt here from the raw FORCING by
    the rules of docs/crocus_files.md (SURFEX's sun from utils.solar.solar_angles, tested against
    SURFEX's own): (cos_zenith, cos_illum, direct_sw, diffuse_sw, daylight), each (time, point)."""
    forcing_times = raw_times(forcing_path)
    at = forcing_times.get_indexer(times)
    assert (at >= 1).all()  # a stamp before each
    direct, diffuse = raw(forcing_path, "DIR_SWdown"), raw(forcing_path, "SCA_SWdown")
    slope, aspect = raw(forcing_path, "slope"), raw(forcing_path, "aspect")
    lat, lon = raw(forcing_path, "LAT"), raw(forcing_path, "LON")
    weight = light.surface_step / 3600  # of the stamp before, hourly stamps
    direct = weight * direct[at - 1] + (1 - weight) * direct[at]
    diffuse = (weight * diffuse[at - 1] + (1 - weight) * diffuse[at]) * ((1 + np.cos(np.deg2rad(slope))) / 2
                                                                         if light.lslope else 1.0)
    sw = direct + diffuse
    zenith, _ = solar_angles(times - pd.Timedelta(seconds=light.surface_step), lat, lon)
    _, azimuth = solar_angles(times, lat, lon)
    zenith = np.where(sw > 0, np.minimum(zenith, np.pi / 2 - 0.01), np.maximum(zenith, np.pi / 2))
    # The sun against the normal to the slope, with vectors (east, north, up).
    sun = np.stack([np.sin(zenith) * np.sin(azimuth), np.sin(zenith) * np.cos(azimuth), np.cos(zenith)], axis=-1)
    beta, a = np.deg2rad(slope), np.deg2rad(aspect)
    normal = np.stack([np.sin(beta) * np.sin(a), np.sin(beta) * np.cos(a), np.cos(beta)], axis=-1)
    cos_zenith, cos_illum = np.cos(zenith), np.clip(np.einsum("tpk,pk->tp", sun, normal), -1, 1)
    return cos_zenith, cos_illum, direct, diffuse, (cos_zenith > 1e-8) & (sw > 1e-8)


def test_samples_agree_with_the_netcdf_files(alpes, tmp_path):
    input_dir, pro_path, forcing_path = alpes
    summary = pp.preprocess(input_dir, tmp_path / "out", time_chunk=7, point_chunk=2)
    assert summary.written == [f"Alpes/{SEASON}"] and not summary.failed
    arrays, shard = shard_arrays(tmp_path / "out" / "Alpes" / SEASON)
    meta = shard.meta()

    # The selection, computed here from the raw files.
    pro_times, forcing_times = raw_times(pro_path), raw_times(forcing_path)
    common = pro_times.intersection(forcing_times)
    assert len(common) == len(pro_times) < len(forcing_times)  # the fixture's PRO lies inside its FORCING
    in_pro = pro_times.get_indexer(common)
    swe = raw(pro_path, "WSN_T_ISBA")[in_pro]
    cos_zenith, cos_illum, direct, diffuse, daylight = crocus_step_light(forcing_path, common)
    selected = (swe > 0) & daylight
    assert len(shard) == selected.sum() > 20
    # Each condition removes samples in this fixture: none is vacuous.
    assert (swe > 0).sum() > selected.sum() and daylight.sum() > selected.sum()

    # By hand: point 0 has no snow on the first day, point 2 never. The sun rises at Mont-Blanc
    # around 07:10 UTC in January, but the fixture's point 1 has radiation at the stamp 07:00: Crocus
    # calls TARTES in the step 06:45-07:00 with the zenith angle capped at pi/2 - 0.01.
    first = meta.iloc[0]
    assert first.point == 1 and first.time == pd.Timestamp("2011-01-10 07:00")
    assert arrays["scalars"][0, COS_ZENITH] == np.float32(np.cos(np.pi / 2 - 0.01))
    assert 2 not in set(meta.point) and meta[meta.point == 0].time.min() >= common[0] + pd.Timedelta(hours=24)
    # No radiation at 11:00 and 12:00 on point 1: no step ending at noon; the step ending at 13:00 has 3/4 of 13:00's.
    assert not ((meta.point == 1) & (meta.time.dt.hour == 12)).any()
    assert ((meta.point == 1) & (meta.time.dt.hour == 13)).sum() == 3

    # Every row against the files.
    layers = {name: raw(pro_path, name) for name in PRO_LAYER_NAMES}
    depth, albedo = raw(pro_path, "DSN_T_ISBA"), raw(pro_path, "ASN_VEG")
    for i, row in meta.iterrows():
        t, p = pro_times.get_loc(row.time), row.point
        present = np.isfinite(layers["SNOWDZ"][t, :, p])
        np.testing.assert_array_equal(arrays["mask"][i], present)
        for k, name in enumerate(PRO_LAYER_NAMES):
            expected = np.where(present, layers[name][t, :, p], 0.0).astype(np.float32)
            np.testing.assert_array_equal(arrays["layers"][i, k], expected, err_msg=f"row {i} {name}")
        tc = common.get_loc(row.time)
        expected = {"cos_illum": cos_illum[tc, p], "direct_sw": direct[tc, p], "diffuse_sw": diffuse[tc, p],
                    "soil_albedo": 0.2, "cos_zenith": cos_zenith[tc, p], "snow_depth": depth[t, p]}
        np.testing.assert_allclose(arrays["scalars"][i], np.float32([expected[k] for k in SCALAR_VARIABLES]),
                                   rtol=1e-6, atol=1e-6, err_msg=f"row {i}")
        assert arrays["albedo"][i] == np.float32(albedo[t, p])
        assert (row.ZS, row.slope, row.aspect, row.massif) == (1800 + 300 * p, 20.0, [0, 135, 270][p], 3)
        assert (row.region, row.season) == ("Alpes", SEASON)

    info = shard.info
    assert info["target_source"] == "ASN_VEG" and info["format"] == SHARD_FORMAT == "tartes-emulator-shard/3"
    assert info["scalar_variables"] == list(SCALAR_VARIABLES) and info["units"]["cos_zenith"] == "1"
    assert info["light_settings"]["namelist"] == {"XTSTEP_SURF": 900.0, "LINTERP_SW": "F", "LSLOPE": "T"}
    assert info["soil_albedo"] == "0.2 at every point" and "SURFEX defect" in info["selection"]
    # the slopes make the illumination differ from the sun's height, and the profile comes from the labeller
    assert np.abs(arrays["scalars"][:, COS_ILLUM] - arrays["scalars"][:, COS_ZENITH]).max() > 0.05
    assert np.all(arrays["absorbed"][~arrays["mask"]] == 0) and np.all(arrays["absorbed"][:, 0] > 0)
    assert info["pro_file"] == str(pro_path.resolve()) and info["forcing_file"] == str(forcing_path.resolve())
    assert info["software"]["tartes_emulator"] and "created" in info and "WSN_T_ISBA > 0" in info["selection"]
    assert info["time_axes"]["common_times"] == len(common)
    # Crocus' ASN_VEG of the fixture is 1 exactly where it did not call TARTES.
    assert info["samples_with_target_1"] == 0


def test_soil_albedo_and_light_settings(alpes, tmp_path, capsys):
    """--soil_albedo: a number, or a per-point variable of the files; the labels follow it. The light
    settings change the light and are recorded; a shard made with others is made again."""
    input_dir, _, forcing_path = alpes
    default = pp.preprocess(input_dir, tmp_path / "default", target="tartes")
    per_point = pp.preprocess(input_dir, tmp_path / "alb_soil", target="tartes", soil_albedo="ALB_SOIL")
    assert default.written == per_point.written == [f"Alpes/{SEASON}"]
    (a, shard_a), (b, shard_b) = (shard_arrays(tmp_path / d / "Alpes" / SEASON) for d in ("default", "alb_soil"))
    points = shard_b.meta().point.to_numpy()
    np.testing.assert_array_equal(b["scalars"][:, SOIL_ALBEDO], np.float32(0.1 * (1 + points)))
    assert shard_b.info["soil_albedo"] == f"ALB_SOIL of {forcing_path.resolve()}"
    # Same samples and light; the labels change with the ground under the snow (point 1 has 0.2 in both).
    for name in ("layers", "mask"):
        np.testing.assert_array_equal(a[name], b[name])
    same = points == 1
    np.testing.assert_array_equal(a["albedo"][same], b["albedo"][same])
    assert (b["albedo"][points == 0] <= a["albedo"][points == 0]).all()
    assert (b["soil"][points == 0] > a["soil"][points == 0]).any()  # thin packs: the darker ground absorbs more

    # Another surface step and no sky-view factor: other fluxes, recorded; the shard is made again.
    light = LightSettings(surface_step=1800, lslope=False)
    again = pp.preprocess(input_dir, tmp_path / "default", target="tartes", light=light)
    assert again.written == [f"Alpes/{SEASON}"]
    c, shard_c = shard_arrays(tmp_path / "default" / "Alpes" / SEASON)
    assert shard_c.info["light_settings"]["namelist"] == {"XTSTEP_SURF": 1800.0, "LINTERP_SW": "F", "LSLOPE": "F"}
    meta = shard_c.meta()
    cos_zenith, cos_illum, direct, diffuse, _ = crocus_step_light(forcing_path, pd.DatetimeIndex(meta.time), light)
    rows, cols = np.arange(len(meta)), meta.point.to_numpy()
    np.testing.assert_allclose(c["scalars"][:, DIFFUSE_SW], diffuse[rows, cols], rtol=1e-6)
    np.testing.assert_allclose(c["scalars"][:, COS_ZENITH], cos_zenith[rows, cols], rtol=0, atol=1e-6)
    assert pp.preprocess(input_dir, tmp_path / "default", target="tartes", light=light).skipped == [f"Alpes/{SEASON}"]

    # The command line takes the same options.
    assert pp.main(["--input", str(input_dir), "--output", str(tmp_path / "cli"), "--soil_albedo", "ALB_SOIL",
                    "--surface_step", "1800", "--lslope", "F", "--target", "tartes"]) == 0
    cli = open_shard(tmp_path / "cli" / "Alpes" / SEASON)
    assert cli.info["light_settings"] == shard_c.info["light_settings"]
    np.testing.assert_array_equal(np.asarray(cli.scalars[:, SOIL_ALBEDO]), b["scalars"][:, SOIL_ALBEDO])
    for bad, words in ((["--soil_albedo", "1.5"], "a soil albedo must be in [0, 1]"),
                       (["--soil_albedo", "ALB SOIL"], "neither a number nor a variable name"),
                       (["--surface_step", "0"], "--surface_step 0: must be a positive number of seconds")):
        with pytest.raises(SystemExit) as exit_status:
            pp.main(["--input", str(input_dir), "--output", str(tmp_path / "bad"), *bad])
        assert exit_status.value.code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    # A name in neither file, or a value outside [0, 1]: the pair fails, saying where.
    pro, forcing = make_pair()
    forcing["ALB_SOIL"] = forcing.ALB_SOIL.copy(data=[0.2, 1.4, 0.3])
    _, bad_forcing = write_pair(tmp_path / "odd", "Jura", pro, forcing)
    missing = pp.preprocess(input_dir, tmp_path / "missing", soil_albedo="ALB_GROUND")
    assert missing.failed[f"Alpes/{SEASON}"].endswith("ALB_GROUND: missing variable (also not in "
                                                      f"{forcing_path}): give --soil_albedo a number or a per-point "
                                                      "variable")
    outside = pp.preprocess(tmp_path / "odd", tmp_path / "outside", soil_albedo="ALB_SOIL")
    assert outside.failed[f"Jura/{SEASON}"] == f"{bad_forcing}: ALB_SOIL: 1.4 at point 1: a soil albedo must be in [0, 1]"


def test_synthetic_season_end_to_end(tmp_path):
    """The generator labels ASN_VEG with the TARTES labeller at each slope's illumination angle on the
    same samples: both targets agree, on flat and sloped points."""
    ((forcing_path, pro_path),) = generate(tmp_path / "in", seasons=1, points=3, seed=0, start_day=120, days=10)
    crocus = pp.preprocess(tmp_path / "in", tmp_path / "crocus", soil_albedo="ALB_SOIL")
    tartes = pp.preprocess(tmp_path / "in", tmp_path / "tartes", target="tartes", soil_albedo="ALB_SOIL")
    assert not crocus.failed and not tartes.failed
    (shard_path,) = find_shards(tmp_path / "crocus")
    arrays, shard = shard_arrays(shard_path)
    labelled, _ = shard_arrays(tmp_path / "tartes" / shard_path.relative_to(tmp_path / "crocus"))
    albedo = raw(pro_path, "ASN_VEG")
    assert len(shard) == np.sum(np.isfinite(albedo) & (albedo != 1)) > 50  # the generator's daylight samples
    meta = shard.meta()
    assert (meta.slope == 0).any() and (meta.slope >= 20).sum() > 20  # sloped points are sampled
    np.testing.assert_allclose(labelled["albedo"], arrays["albedo"], rtol=0, atol=1e-6)
    for name in ("layers", "scalars", "absorbed", "soil"):  # the profile is the labeller's in both
        np.testing.assert_array_equal(labelled[name], arrays[name])
    np.testing.assert_allclose(labelled["albedo"] + labelled["absorbed"].sum(axis=1) + labelled["soil"], 1, atol=2e-6)
    assert 0.2 < arrays["albedo"].min() and arrays["albedo"].max() < 1  # between the soil (0.2) and 1
    assert shard.info["region"] == "Alpes" and shard.info["season"] == pro_path.stem.removeprefix("PRO_")


def test_dimension_order_patches_and_chunks_do_not_change_the_shard(alpes, tmp_path):
    input_dir = alpes[0]
    write_pair(input_dir, "Shuffled", *make_pair(patches=2, shuffle_dims=True))
    pp.preprocess(input_dir, tmp_path / "small_blocks", time_chunk=5, point_chunk=1)
    pp.preprocess(input_dir, tmp_path / "default_blocks")
    reference = tmp_path / "default_blocks" / "Alpes" / SEASON
    assert_same_shards(reference, tmp_path / "small_blocks" / "Alpes" / SEASON, any_order=True)
    assert_same_shards(reference, tmp_path / "default_blocks" / "Shuffled" / SEASON, same_region=False)


def test_the_forcing_first_stamp_is_no_sample(alpes, tmp_path):
    """At the FORCING's first stamp no step of the run has ended (there is no stamp before it to
    interpolate from): never a sample, even in daylight with snow; the next stamps are as usual."""
    input_dir = alpes[0]
    pro, forcing = make_pair()
    write_pair(input_dir, "Late", pro, forcing.sel(time=slice("2011-01-10 10:00", None)))
    pp.preprocess(input_dir, tmp_path / "out")
    (full, shard_full), (late, shard_late) = (shard_arrays(tmp_path / "out" / region / SEASON)
                                              for region in ("Alpes", "Late"))
    meta_full, meta_late = shard_full.meta(), shard_late.meta()
    first = pd.Timestamp("2011-01-10 10:00")
    assert (meta_full.time == first).sum() == 1 and meta_late.time.min() == first + pd.Timedelta(hours=1)
    kept = (meta_full.time > first).to_numpy()
    np.testing.assert_array_equal(late["scalars"], full["scalars"][kept])
    np.testing.assert_array_equal(late["albedo"], full["albedo"][kept])


def test_fill_values_beyond_fillvalue_are_absent(alpes, tmp_path):
    """A missing_value differing from _FillValue, and raw 1e20 with no fill attribute, both mean absent."""
    input_dir, pro_path, _ = alpes
    pro, forcing = make_pair()
    odd_pro, _ = write_pair(input_dir, "OddFill", pro, forcing)
    pro.to_netcdf(odd_pro, encoding={"SNOWSSA": {"_FillValue": -9999999.0}, "RSN_VEG": {"_FillValue": None}})
    with netCDF4.Dataset(odd_pro, "a") as ds:
        for name in ("SNOWSSA", "RSN_VEG"):
            var = ds.variables[name]
            var.set_auto_mask(False)
            values = var[:]
            values[~np.isfinite(values) | (values == -9999999.0)] = 1e20
            var[:] = values
        ds.variables["SNOWSSA"].missing_value = 1e20
    pp.preprocess(input_dir, tmp_path / "out")
    assert_same_shards(tmp_path / "out" / "Alpes" / SEASON, tmp_path / "out" / "OddFill" / SEASON, same_region=False)


def test_tartes_target_matches_the_reference_labeller(alpes, tmp_path):
    input_dir = alpes[0]
    # A public-S2M-like run: density named SNOWRO, no impurities, no TARTES albedo.
    pro, forcing = make_pair(seed=1)
    pro = pro.rename(RSN_VEG="SNOWRO").drop_vars(["SNOWIMP1", "SNOWIMP2", "ASN_VEG"])
    write_pair(input_dir, "S2M", pro, forcing)

    crocus = pp.preprocess(input_dir, tmp_path / "crocus")
    assert crocus.written == [f"Alpes/{SEASON}"]
    assert "ASN_VEG" in crocus.failed[f"S2M/{SEASON}"] and "--target tartes" in crocus.failed[f"S2M/{SEASON}"]

    summary = pp.preprocess(input_dir, tmp_path / "tartes", target="tartes")
    assert sorted(summary.written) == [f"Alpes/{SEASON}", f"S2M/{SEASON}"]
    for region, rows in (("Alpes", [0, 17]), ("S2M", [3])):
        arrays, shard = shard_arrays(tmp_path / "tartes" / region / SEASON)
        assert shard.info["target_source"] == "tartes labeller"
        layers = np.where(arrays["mask"][rows, None, :], arrays["layers"][rows], np.nan).astype(np.float64)
        scalars = arrays["scalars"][rows].astype(np.float64)
        expected = reference_energy_budget(*(layers[:, k] for k in range(len(LAYER_VARIABLES))),
                                           *(scalars[:, k] for k in (COS_ILLUM, DIRECT_SW, DIFFUSE_SW)),
                                           soil_albedo=scalars[:, SOIL_ALBEDO], cos_zenith=scalars[:, COS_ZENITH])
        np.testing.assert_allclose(arrays["albedo"][rows], expected.albedo, rtol=0, atol=2e-6)
        np.testing.assert_allclose(arrays["absorbed"][rows], np.nan_to_num(expected.absorbed), rtol=0, atol=2e-6)
        np.testing.assert_allclose(arrays["soil"][rows], expected.soil, rtol=0, atol=2e-6)
    assert np.all(arrays["layers"][:, 3:] == 0) and "clean snow" in shard.info["impurities"]
    assert shard.info["variables"]["density"] == "SNOWRO"
    # The crocus-labelled Alpes shard is not silently kept for a tartes run, nor the reverse.
    again = pp.preprocess(input_dir, tmp_path / "crocus", target="tartes")
    assert "labelled by ASN_VEG" in again.failed[f"Alpes/{SEASON}"] and again.written == [f"S2M/{SEASON}"]
    # A shard of an older format is not silently kept either, nor read.
    info_file = tmp_path / "crocus" / "Alpes" / SEASON / "info.json"
    info = json.loads(info_file.read_text())
    for older in ("tartes-emulator-shard/2", None):
        info.pop("format", None)
        info_file.write_text(json.dumps({**info, **({"format": older} if older else {})}))
        old = pp.preprocess(input_dir, tmp_path / "crocus")
        assert "re-run preprocessing" in old.failed[f"Alpes/{SEASON}"]
        with pytest.raises(ValueError, match="re-run preprocessing") as error:
            open_shard(info_file.parent)
        assert "\n" not in str(error.value) and (older or "format 1") in str(error.value)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _classic_truncated(pro, forcing):
    """FORCING files often are netCDF-3, which netCDF-C reads past a truncation as zeros."""
    return pro, forcing, lambda paths: (forcing.to_netcdf(paths[1], format="NETCDF3_64BIT"), _truncate(paths[1]))


def _nan_in_present_layer(pro, forcing):
    ssa = pro.SNOWSSA.values
    ssa[(0,) * (ssa.ndim - 3) + (30, 0, 1)] = np.nan  # patch 0, 30 h in, top layer, point 1 (daylight, snow)
    return pro, forcing, None


def _negative_ssa(pro, forcing):
    ssa = pro.SNOWSSA.values
    ssa[(0,) * (ssa.ndim - 3) + (30, 0, 1)] = -3.0
    return pro, forcing, None


def _denser_than_ice(pro, forcing):
    density = pro.RSN_VEG.values
    density[(0,) * (density.ndim - 3) + (30, 0, 1)] = 1200.0
    return pro, forcing, None


def _nan_radiation(pro, forcing):
    forcing.DIR_SWdown.values[40, 1] = np.nan
    return pro, forcing, None


BAD_INPUTS = {
    "missing variable": (lambda pro, f: (pro.drop_vars("SNOWSSA"), f, None), ["PRO_", "SNOWSSA", "missing"]),
    "no density": (lambda pro, f: (pro.drop_vars("RSN_VEG"), f, None), ["PRO_", "RSN_VEG or SNOWRO", "missing"]),
    "no common times": (lambda pro, f: (pro, f.assign_coords(time=f.time + pd.Timedelta(days=30)), None),
                        ["PRO_", "time", "no time in common", "FORCING_"]),
    "too many layers": (lambda pro, f: (make_pair(layers=51)[0], f, None), ["PRO_", "SNOWDZ", "51 layers"]),
    "layer variable without layers": (lambda pro, f: (pro.assign(SNOWSSA=pro.WSN_T_ISBA), f, None),
                                      ["PRO_", "SNOWSSA", "dimensions"]),
    "mismatched points": (lambda pro, f: (pro, f.isel(Number_of_points=[0, 1]), None),
                          ["PRO_", "Number_of_points", "3 points", "FORCING_", "has 2"]),
    "other points": (lambda pro, f: (pro, f.assign(ZS=f.ZS + 600), None), ["PRO_", "ZS", "not describe the same"]),
    "truncated netCDF-4": (lambda pro, f: (pro, f, lambda paths: _truncate(paths[0])), ["PRO_", "truncated"]),
    "truncated netCDF-3": (_classic_truncated, ["FORCING_", "truncated"]),
    "unreadable": (lambda pro, f: (pro, f, lambda paths: paths[0].write_bytes(b"not netCDF" * 50)),
                   ["PRO_", "unreadable"]),
    "missing FORCING": (lambda pro, f: (pro, f, lambda paths: paths[1].unlink()), ["FORCING_", "missing"]),
    "NaN in a present layer": (_nan_in_present_layer, ["PRO_", "SNOWSSA", "NaN in present layer 1", "point 1"]),
    # --target crocus checks layer values as the labeller does
    "negative SSA": (_negative_ssa, ["PRO_", "SNOWSSA", "negative value", "point 1", "layer 1"]),
    "denser than ice": (_denser_than_ice, ["PRO_", "RSN_VEG", "denser than ice", "point 1", "layer 1"]),
    "NaN radiation": (_nan_radiation, ["FORCING_", "DIR_SWdown", "NaN at", "point 1"]),
    "no TARTES albedo": (lambda pro, f: (pro.drop_vars("ASN_VEG"), f, None), ["PRO_", "ASN_VEG", "--target tartes"]),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_fails_clearly_and_other_pairs_go_on(alpes, tmp_path, case):
    input_dir = alpes[0]
    breaks, words = BAD_INPUTS[case]
    pro, forcing, after_writing = breaks(*make_pair())
    paths = write_pair(input_dir, "Pyrenees", pro, forcing)
    if after_writing:
        after_writing(paths)
    summary = pp.preprocess(input_dir, tmp_path / "out")
    assert summary.written == [f"Alpes/{SEASON}"]
    message = summary.failed[f"Pyrenees/{SEASON}"]
    for word in words:
        assert word in message, (word, message)
    assert find_shards(tmp_path / "out") == [tmp_path / "out" / "Alpes" / SEASON]
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


def test_cli_exit_code_and_summary(alpes, tmp_path, capsys):
    input_dir = alpes[0]
    assert pp.main(["--input", str(input_dir), "--output", str(tmp_path / "out")]) == 0
    assert f"written  Alpes/{SEASON}" in capsys.readouterr().out
    write_pair(input_dir, "Pyrenees", make_pair()[0].drop_vars("SNOWDZ"), make_pair()[1])
    assert pp.main(["--input", str(input_dir), "--output", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert f"skipped  Alpes/{SEASON}" in out and f"FAILED   Pyrenees/{SEASON}" in out and "SNOWDZ" in out
    assert "1 skipped (already complete), 1 failed" in out


def test_interrupted_run_resumes_to_the_same_result(alpes, tmp_path, monkeypatch):
    input_dir = alpes[0]
    write_pair(input_dir, "Pyrenees", *make_pair(seed=2))
    pp.preprocess(input_dir, tmp_path / "reference", time_chunk=6)

    # Interrupt (Ctrl-C) in the middle of the second pair.
    out = tmp_path / "out"
    write = ShardWriter.write

    def interrupted_write(self, samples):
        if self.path.parent.name == "Pyrenees" and self.filled > 0:
            raise KeyboardInterrupt
        write(self, samples)

    monkeypatch.setattr(ShardWriter, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        pp.preprocess(input_dir, out, time_chunk=6)
    monkeypatch.undo()
    assert find_shards(out) == [out / "Alpes" / SEASON]
    assert not (out / "Pyrenees" / SEASON).exists() and not list(out.rglob("*.tmp-*"))

    # A run killed outright leaves its temporary directory behind.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / "Pyrenees" / f"{SEASON}.tmp-{dead.pid}"
    stale.mkdir(parents=True)
    (stale / "layers.npy").write_bytes(b"half")

    summary = pp.preprocess(input_dir, out, time_chunk=6)
    assert summary.skipped == [f"Alpes/{SEASON}"] and summary.written == [f"Pyrenees/{SEASON}"]
    assert not stale.exists()
    for region in ("Alpes", "Pyrenees"):
        assert_same_shards(tmp_path / "reference" / region / SEASON, out / region / SEASON)


def test_workers_give_the_same_shards(alpes, tmp_path):
    input_dir = alpes[0]
    write_pair(input_dir, "Pyrenees", *make_pair(seed=2))
    pp.preprocess(input_dir, tmp_path / "serial")
    summary = pp.preprocess(input_dir, tmp_path / "parallel", workers=2)
    assert sorted(summary.written) == [f"Alpes/{SEASON}", f"Pyrenees/{SEASON}"]
    for region in ("Alpes", "Pyrenees"):
        assert_same_shards(tmp_path / "serial" / region / SEASON, tmp_path / "parallel" / region / SEASON)


def test_launch_script_arguments(tmp_path):
    launch = str(REPO / "preprocessing" / "launch.sh")
    env = {**os.environ, "DRY_RUN": "1", "LOG_DIR": str(tmp_path)}
    bad = subprocess.run(["bash", launch, "nohup", "--input", "a", "--output", "b"], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 2 and "usage" in bad.stderr.lower()
    run = subprocess.run(["bash", launch, "slurm", "--input", "in dir", "--output", "out", "--workers", "4"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "#SBATCH --cpus-per-task=4" in run.stdout and str(tmp_path) in run.stdout
    assert "-m preprocessing.preprocess --input in\\ dir --output out --workers 4" in run.stdout
