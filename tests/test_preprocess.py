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
from utils.schema import COS_ILLUM, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, SCALAR_VARIABLES
from utils.solar import sun_geometry

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
    in_pro, in_forcing = pro_times.get_indexer(common), forcing_times.get_indexer(common)
    swe = raw(pro_path, "WSN_T_ISBA")[in_pro]
    direct, diffuse = raw(forcing_path, "DIR_SWdown")[in_forcing], raw(forcing_path, "SCA_SWdown")[in_forcing]
    lat, lon = raw(forcing_path, "LAT"), raw(forcing_path, "LON")
    slope, aspect = raw(forcing_path, "slope"), raw(forcing_path, "aspect")
    mu, mu_illum = sun_geometry(common, lat, lon, slope, aspect)
    selected = (swe > 0) & (direct + diffuse > 0) & (mu > 0)
    assert len(shard) == selected.sum() > 20
    # Each condition removes samples in this fixture: none is vacuous.
    assert ((swe > 0) & (mu > 0)).sum() > selected.sum() and ((swe > 0) & (direct + diffuse > 0)).sum() > selected.sum()

    # By hand: point 0 has no snow on the first day, point 2 never; the sun rises at Mont-Blanc
    # around 07:10 UTC in January, so the first sample is point 1 at the stamp 08:00 (07:00-08:00).
    assert meta.point.iloc[0] == 1 and meta.time.iloc[0] == pd.Timestamp("2011-01-10 08:00")
    assert 2 not in set(meta.point) and meta[meta.point == 0].time.min() >= common[0] + pd.Timedelta(hours=24)
    assert not ((meta.point == 1) & (meta.time.dt.hour == 12)).any()  # no radiation at noon on point 1

    # Every row against the files.
    layers = {name: raw(pro_path, name) for name in PRO_LAYER_NAMES}
    depth, albedo = raw(pro_path, "DSN_T_ISBA"), raw(pro_path, "ASN_VEG")
    for i, row in meta.iterrows():
        t, p = pro_times.get_loc(row.time), row.point
        tf = forcing_times.get_loc(row.time)
        present = np.isfinite(layers["SNOWDZ"][t, :, p])
        np.testing.assert_array_equal(arrays["mask"][i], present)
        for k, name in enumerate(PRO_LAYER_NAMES):
            expected = np.where(present, layers[name][t, :, p], 0.0).astype(np.float32)
            np.testing.assert_array_equal(arrays["layers"][i, k], expected, err_msg=f"row {i} {name}")
        tc = common.get_loc(row.time)
        expected = {"cos_illum": mu_illum[tc, p], "direct_sw": raw(forcing_path, "DIR_SWdown")[tf, p],
                    "diffuse_sw": raw(forcing_path, "SCA_SWdown")[tf, p], "cos_sza": mu[tc, p], "snow_depth": depth[t, p]}
        np.testing.assert_array_equal(arrays["scalars"][i], np.float32([expected[k] for k in SCALAR_VARIABLES]))
        assert arrays["albedo"][i] == np.float32(albedo[t, p])
        assert (row.ZS, row.slope, row.aspect, row.massif) == (1800 + 300 * p, 20.0, [0, 135, 270][p], 3)
        assert (row.region, row.season) == ("Alpes", SEASON)

    info = shard.info
    assert info["target_source"] == "ASN_VEG" and info["format"] == SHARD_FORMAT
    # the slopes make the illumination differ from the sun's height, and the profile comes from the labeller
    assert np.abs(arrays["scalars"][:, COS_ILLUM] - arrays["scalars"][:, 3]).max() > 0.05
    assert np.all(arrays["absorbed"][~arrays["mask"]] == 0) and np.all(arrays["absorbed"][:, 0] > 0)
    assert info["pro_file"] == str(pro_path.resolve()) and info["forcing_file"] == str(forcing_path.resolve())
    assert info["software"]["tartes_emulator"] and "created" in info and "WSN_T_ISBA > 0" in info["selection"]
    assert info["time_axes"]["common_times"] == len(common)


def test_synthetic_season_end_to_end(tmp_path):
    """The generator labels ASN_VEG with the TARTES labeller at each slope's illumination angle on the
    same samples: both targets agree, on flat and sloped points."""
    ((forcing_path, pro_path),) = generate(tmp_path / "in", seasons=1, points=3, seed=0, start_day=120, days=10)
    crocus = pp.preprocess(tmp_path / "in", tmp_path / "crocus")
    tartes = pp.preprocess(tmp_path / "in", tmp_path / "tartes", target="tartes")
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
        expected = reference_energy_budget(*(layers[:, k] for k in range(len(LAYER_VARIABLES))),
                                           *(arrays["scalars"][rows, k].astype(np.float64)
                                             for k in (COS_ILLUM, DIRECT_SW, DIFFUSE_SW)))
        np.testing.assert_allclose(arrays["albedo"][rows], expected.albedo, rtol=0, atol=2e-6)
        np.testing.assert_allclose(arrays["absorbed"][rows], np.nan_to_num(expected.absorbed), rtol=0, atol=2e-6)
        np.testing.assert_allclose(arrays["soil"][rows], expected.soil, rtol=0, atol=2e-6)
    assert np.all(arrays["layers"][:, 3:] == 0) and "clean snow" in shard.info["impurities"]
    assert shard.info["variables"]["density"] == "SNOWRO"
    # The crocus-labelled Alpes shard is not silently kept for a tartes run, nor the reverse.
    again = pp.preprocess(input_dir, tmp_path / "crocus", target="tartes")
    assert "labelled by ASN_VEG" in again.failed[f"Alpes/{SEASON}"] and again.written == [f"S2M/{SEASON}"]
    # A shard of an older format is not silently kept either.
    info_file = tmp_path / "crocus" / "Alpes" / SEASON / "info.json"
    info = json.loads(info_file.read_text())
    del info["format"]
    info_file.write_text(json.dumps(info))
    old = pp.preprocess(input_dir, tmp_path / "crocus")
    assert "re-run preprocessing" in old.failed[f"Alpes/{SEASON}"]


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
