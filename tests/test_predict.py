"""predict.py on tiny hand-made Crocus files: the outputs are the emulator on preprocessing's samples
at their time and point (the albedo; with an energy-budget model the absorbed shortwave per layer and
the soil's, in W m-2, conserving energy), fill elsewhere, at the illumination cosine of utils.solar,
with ASN_VEG, its error table, metadata and provenance; bad files fail as preprocessing fails; the
output never replaces an input nor, unless asked, an existing file; bad options are one line and
exit status 2."""
import os
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import torch

import predict
from dataset import ShardDataset, profile_arguments
from features import fit_normalisation
from models import Emulator, build_model
from preprocessing import preprocess as pp
from preprocessing.shards import open_shard
from tests.conftest import TINY_BUDGET, TINY_CNN
from tests.crocus_fixtures import SEASON, make_pair, write_pair
from utils.config import Config
from utils.provenance import sha256
from utils.schema import COS_ILLUM, SOIL_ALBEDO, SSA
from utils.solar import CrocusLight, crocus_light

SSA_SEEN = 30.0  # m2 kg-1: the tiny emulators' training domain stops there (the fixture's SSA reaches 50)


@pytest.fixture(scope="module")
def alpes(tmp_path_factory):
    """One pair, and its shard from preprocessing with each point's soil albedo (ALB_SOIL); returns
    (pro_path, forcing_path, shard)."""
    root = tmp_path_factory.mktemp("crocus")
    pro_path, forcing_path = write_pair(root / "in", "Alpes", *make_pair())
    pp.preprocess(root / "in", root / "shards", soil_albedo="ALB_SOIL")
    return pro_path, forcing_path, open_shard(root / "shards" / "Alpes" / SEASON)


def tiny_untrained(name: str, shard, path):
    """A tiny untrained emulator normalised on the pair's own samples, its last layer sharpened so
    that its answers spread."""
    dataset = ShardDataset([shard.path])
    torch.manual_seed(0)
    model, settings = build_model(name, TINY_CNN if name == "cnn_seed" else TINY_BUDGET)
    fit_normalisation(model, dataset.model_inputs())
    with torch.no_grad():
        (model.head if name == "cnn_seed" else model.mlp)[-1].weight.mul_(20)
    domain = dataset.input_domain()
    domain["ssa"][1] = SSA_SEEN
    Emulator(name, vars(settings), model, domain, vars(Config(model=name)), {}).save(path)
    return path


@pytest.fixture(scope="module")
def model_path(alpes, tmp_path_factory):
    """The energy-budget emulator (optical_budget)."""
    return tiny_untrained("optical_budget", alpes[2], tmp_path_factory.mktemp("emulator") / "emulator.pt")


@pytest.fixture(scope="module")
def albedo_model_path(alpes, tmp_path_factory):
    """An albedo-only emulator (cnn_seed)."""
    return tiny_untrained("cnn_seed", alpes[2], tmp_path_factory.mktemp("emulator") / "cnn.pt")


def forcing_light(forcing: xr.Dataset, times) -> CrocusLight:
    """utils.solar's light of the FORCING's points at `times`, (time, point)."""
    light = crocus_light(forcing.time.values, forcing.DIR_SWdown.values, forcing.SCA_SWdown.values,
                         *(forcing[name].values for name in ("LAT", "LON", "slope", "aspect")))
    rows = forcing.indexes["time"].get_indexer(times)
    return CrocusLight(*(values[rows] for values in light))


def shard_budget(emulator: Emulator, shard):
    """The emulator on the shard's samples, as preprocessing gave them (each one's soil albedo and cos_zenith)."""
    arguments = profile_arguments(shard.layers, shard.mask, shard.scalars)
    with pytest.warns(UserWarning, match="outside the input domain"):
        return (emulator.energy_budget if emulator.model.BUDGET else emulator.predict)(**arguments)


def test_outputs_are_the_emulator_on_preprocessing_samples(alpes, model_path, tmp_path, capsys):
    pro_path, forcing_path, shard = alpes
    out = tmp_path / "out" / "albedo.nc"
    out.parent.mkdir()
    with pytest.warns(UserWarning, match="samples lie outside the input domain"):
        # Small blocks, so that samples are scattered back across several of them; each point's soil albedo.
        predict.predict_files(model_path, pro_path, forcing_path, out, device="cpu", time_chunk=7, point_chunk=2,
                              soil_albedo="ALB_SOIL")
    assert [p.name for p in out.parent.iterdir()] == ["albedo.nc"]  # no temporary file left
    printed = capsys.readouterr().out

    expected = shard_budget(Emulator.load(model_path), shard)
    assert expected.albedo.std() > 0.05 and expected.absorbed[:, 0].std() > 0.01  # the tiny model's answers spread
    assert len(np.unique(shard.scalars[:, SOIL_ALBEDO])) > 1  # the points' soil albedos, which the emulator takes
    meta = shard.meta()
    with xr.open_dataset(out) as ds, xr.open_dataset(pro_path) as pro, xr.open_dataset(forcing_path) as forcing:
        albedo = ds.albedo_emulated
        assert albedo.dims == ("time", "Number_of_points") and albedo.dtype == np.float32
        assert albedo.attrs["units"] == "1" and "long_name" in albedo.attrs
        # The times common to PRO and FORCING: here all of the PRO's.
        np.testing.assert_array_equal(ds.time.values, pro.time.values)
        t, p = ds.indexes["time"].get_indexer(meta.time), meta.point.to_numpy()
        values = albedo.values
        np.testing.assert_allclose(values[t, p], expected.albedo, rtol=0, atol=1e-6)
        sampled = np.zeros(values.shape, dtype=bool)
        sampled[t, p] = True
        # docs/labels.md, "Night and no light": with snow but no daylight, albedo 1 as Crocus writes it;
        # without snow, fill
        snow = pro.WSN_T_ISBA.isel(Number_of_Patches=0).values > 0
        dark = snow & ~sampled
        assert dark.sum() > 10 and (~snow).sum() > 10 and not (sampled & ~snow).any()
        assert np.all(values[dark] == 1) and np.all(np.isnan(values[~snow])) and not np.any(np.isnan(values[sampled]))
        assert sampled.sum() < sampled.size / 2

        # The energy in W m-2: the emulated fractions times the shortwave of Crocus' last step.
        light = forcing_light(forcing, ds.indexes["time"])
        sw = light.direct_sw + light.diffuse_sw
        absorbed, soil = ds.absorbed_sw_emulated, ds.soil_sw_emulated
        assert absorbed.dims == ("time", "snow_layer", "Number_of_points") and absorbed.dtype == np.float32
        assert absorbed.sizes["snow_layer"] == pro.sizes["snow_layer"] and list(ds.snow_layer.values[:2]) == [1, 2]
        assert soil.dims == ("time", "Number_of_points")
        for var in (absorbed, soil):
            assert var.attrs["units"] == "W m-2" and "standard_name" not in var.attrs and "long_name" in var.attrs
        width = absorbed.sizes["snow_layer"]
        layers = absorbed.values.transpose(0, 2, 1)[t, p]  # (samples, layers)
        np.testing.assert_allclose(layers, expected.absorbed[:, :width] * sw[t, p, None], rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(np.isnan(layers), ~shard.mask[:, :width])  # fill below the pack
        np.testing.assert_allclose(soil.values[t, p], expected.soil * sw[t, p], rtol=1e-5, atol=1e-4)
        assert np.all(np.isnan(absorbed.values.transpose(0, 2, 1)[~snow])) and np.all(np.isnan(soil.values[~snow]))
        # dark: nothing absorbed in the layers of the pack, fill below it; nothing reaches the soil
        present = pro.SNOWDZ.isel(Number_of_Patches=0).values.transpose(0, 2, 1)[dark] > 0  # (dark, layers)
        np.testing.assert_array_equal(absorbed.values.transpose(0, 2, 1)[dark], np.where(present, 0.0, np.nan))
        assert np.all(soil.values[dark] == 0)
        # Energy conserved: albedo * SW + absorbed + soil = SW.
        total = values * sw + np.nansum(absorbed.values, axis=1) + soil.values
        np.testing.assert_allclose(total[sampled], sw[sampled], rtol=1e-5)

        # The illumination cosine given to the emulator: utils.solar's, on the FORCING's slope and aspect.
        cos_illum = light.cos_illum
        np.testing.assert_allclose(ds.cos_illum.values[sampled], cos_illum[sampled], atol=1e-6)
        np.testing.assert_allclose(ds.cos_illum.values[t, p], shard.scalars[:, COS_ILLUM], atol=1e-7)
        assert np.all(np.isnan(ds.cos_illum.values[~sampled])) and ds.cos_illum.attrs["units"] == "1"
        assert not np.allclose(cos_illum[sampled], light.cos_zenith[sampled], atol=0.01)

        # Crocus' albedo as written, 1 at night with snow, NaN without snow; the error against it.
        crocus = pro.ASN_VEG.isel(Number_of_Patches=0).values
        np.testing.assert_array_equal(ds.ASN_VEG.values, crocus)
        error = values - crocus
        for i in range(3):
            at = sampled[:, i]
            assert ds.albedo_error_samples.values[i] == at.sum()
            if at.any():
                assert ds.albedo_error_mae.values[i] == pytest.approx(np.abs(error[at, i]).mean(), rel=1e-6)
                assert ds.albedo_error_bias.values[i] == pytest.approx(error[at, i].mean(), rel=1e-6)
            else:
                assert np.isnan(ds.albedo_error_mae.values[i])
        assert ds.attrs["albedo_error_samples"] == sampled.sum()
        assert ds.attrs["albedo_error_mae"] == pytest.approx(np.abs(error[sampled]).mean(), rel=1e-6)
        assert ds.attrs["albedo_error_rmse"] == pytest.approx(np.sqrt((error[sampled] ** 2).mean()), rel=1e-6)
        table = ds.attrs["albedo_error_by_slope_aspect"]
        assert table in printed and f"albedo_emulated - ASN_VEG over {sampled.sum()} samples" in table
        assert f"MAE {np.abs(error[sampled]).mean():.5f}" in table
        aspects = forcing.aspect.values
        for i in (0, 1):  # a row per slope and aspect with samples, and one per point
            assert f"{20:>6g} {aspects[i]:>7g} {1:>6d} {sampled[:, i].sum():>8d} {np.abs(error[sampled[:, i], i]).mean():>8.5f}" in table
            assert f"{i:>6d} {forcing.ZS.values[i]:>7g}" in table
        assert ds.albedo_emulated.attrs["error_against_ASN_VEG"].startswith("MAE ")

        for name in ("ZS", "slope", "aspect", "latitude", "longitude"):
            np.testing.assert_array_equal(ds[name].values, pro[name].values)
        assert list(ds.massif_num.values) == [3, 3, 3]
        attrs = ds.attrs
        assert attrs["emulator_sha256"] == sha256(model_path) and attrs["emulator_model"] == "optical_budget"
        assert attrs["pro_file"] == str(pro_path.resolve()) and attrs["forcing_file"] == str(forcing_path.resolve())
        high_ssa = np.any(shard.mask & (shard.layers[:, SSA] > SSA_SEEN), axis=1)
        assert attrs["samples"] == len(shard) and attrs["samples_outside_training_domain"] == high_ssa.sum() > 0
        assert attrs["variables_outside_training_domain"] == "ssa"
        assert "created" in attrs and "WSN_T_ISBA > 0" in attrs["selection"] and "slope" in attrs["illumination"]
        assert '"git_commit"' in attrs["software"]
    with netCDF4.Dataset(out) as ds:  # on disk: SURFEX's fill value, which readers decode to NaN
        for name in ("albedo_emulated", "absorbed_sw_emulated", "soil_sw_emulated", "cos_illum"):
            assert ds[name]._FillValue == np.float32(predict.FILL), name
        for name in ("albedo_emulated", "ASN_VEG"):  # compressed, both albedos dimensionless in CF's words
            assert ds[name].filters()["zlib"] and ds[name].filters()["complevel"] == 4, name
            assert ds[name].units == "1", name


def test_an_albedo_only_emulator_writes_the_albedo_only(alpes, albedo_model_path, tmp_path, capsys):
    pro_path, forcing_path, shard = alpes
    out = tmp_path / "albedo.nc"
    with pytest.warns(UserWarning, match="samples lie outside the input domain"):
        predict.predict_files(albedo_model_path, pro_path, forcing_path, out, device="cpu", soil_albedo="ALB_SOIL")
    expected = shard_budget(Emulator.load(albedo_model_path), shard)
    meta = shard.meta()
    with xr.open_dataset(out) as ds:
        assert {"albedo_emulated", "cos_illum", "ASN_VEG", "albedo_error_mae"} <= set(ds.data_vars)
        assert not {"absorbed_sw_emulated", "soil_sw_emulated"} & set(ds.data_vars)
        assert ds.attrs["emulator_outputs"] == "albedo only"
        t = ds.indexes["time"].get_indexer(meta.time)
        np.testing.assert_allclose(ds.albedo_emulated.values[t, meta.point], expected, atol=1e-6)
    assert "albedo_emulated - ASN_VEG over" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        predict.main(["--help"])
    assert "An albedo-only emulator\n(cnn_seed) writes the albedo only" in capsys.readouterr().out


def test_run_without_tartes_albedo(alpes, model_path, tmp_path, capsys):
    """A public-S2M-like PRO (no ASN_VEG, no impurities, density named SNOWRO) is emulated too."""
    pro, forcing = make_pair()
    pro = pro.rename(RSN_VEG="SNOWRO").drop_vars(["SNOWIMP1", "SNOWIMP2", "ASN_VEG"])
    pro_path, forcing_path = write_pair(tmp_path / "in", "S2M", pro, forcing)
    # Clean snow (no impurities in the file) lies below the tiny training data's soot and dust.
    n = len(alpes[2])
    with pytest.warns(UserWarning, match=f"{n} of {n} samples lie outside .* \\(dust, soot, ssa\\)"):
        assert predict.main(["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path),
                             "--out", str(tmp_path / "s2m.nc"), "--device", "cpu"]) == 0
    assert "ASN_VEG" not in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "s2m.nc") as ds:
        assert "ASN_VEG" not in ds and "albedo_error_mae" not in ds and "albedo_error_mae" not in ds.attrs
        # The samples of the run with TARTES: the selection does not depend on the absent variables.
        values, meta = ds.albedo_emulated.values, alpes[2].meta()
        sampled = np.zeros(values.shape, dtype=bool)
        sampled[ds.indexes["time"].get_indexer(meta.time), meta.point] = True
        snow = pro.WSN_T_ISBA.isel(Number_of_Patches=0).values > 0
        np.testing.assert_array_equal(np.isfinite(values), snow)  # the samples, and albedo 1 at night
        assert np.all(values[snow & ~sampled] == 1) and np.all(values[sampled] < 1)
        np.testing.assert_array_equal(np.isfinite(ds.soil_sw_emulated.values), snow)


def _nan_ssa(pro, forcing):
    pro.SNOWSSA.values[0, 30, 0, 1] = np.nan  # patch 0, 30 h in, top layer, point 1: a daylight sample
    return pro, forcing


@pytest.mark.parametrize("break_pair, words", [
    (_nan_ssa, ["PRO_", "SNOWSSA", "NaN in present layer 1 at 2011-01-11 13:00:00 point 1"]),  # found mid-stream
    (lambda pro, f: (pro.drop_vars("SNOWSSA"), f), ["PRO_", "SNOWSSA", "missing"]),
    (lambda pro, f: (pro, f.assign_coords(time=f.time + pd.Timedelta(days=30))), ["time", "no time in common"]),
])
def test_bad_files_fail_with_preprocessing_errors(model_path, tmp_path, capsys, break_pair, words):
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", *break_pair(*make_pair()))
    out = tmp_path / "out.nc"
    with pytest.raises(pp.InputError) as error:
        predict.predict_files(model_path, pro_path, forcing_path, out, device="cpu")
    assert all(word in str(error.value) for word in words), str(error.value)
    assert not list(tmp_path.glob("out.nc*"))  # nothing written, no temporary file left
    # The command line says the same in one line, with exit status 1.
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path), "--out", str(out)]
    assert predict.main(argv) == 1
    assert str(error.value) in capsys.readouterr().err


def _negative_ssa(pro, forcing):
    """SSA < 0 in the deepest layer of a daylight sample (30 h in, point 1): preprocessing does not
    check the sign, the emulator does."""
    k = int(np.isfinite(pro.SNOWDZ.values[0, 30, :, 1]).sum()) - 1
    pro.SNOWSSA.values[0, 30, k, 1] = -5.0
    return pro, forcing, k + 1


def test_a_profile_the_emulator_rejects_is_named_by_time_point_and_layer(model_path, tmp_path, capsys):
    pro, forcing, layer = _negative_ssa(*make_pair())
    assert layer > 1  # not the top layer: the layer number is found, not assumed
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", pro, forcing)
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path),
            "--out", str(tmp_path / "out.nc"), "--device", "cpu"]
    assert predict.main(argv) == 1
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line == (f"predict.py: error: {pro_path}: SNOWSSA: negative value inside a present layer: layer {layer} "
                    f"at 2011-01-11 13:00:00 point 1"), line
    assert not list(tmp_path.glob("out.nc*"))


def test_skip_invalid_leaves_out_and_lists_the_refused_samples(model_path, tmp_path, capsys):
    """--skip-invalid: the sample the emulator refuses is fill, listed in the output's attributes and
    in a printed line; every other sample is emulated as without it."""
    pro, forcing, layer = _negative_ssa(*make_pair())
    pro.SNOWSSA.values[0, 54, 0, 0] = -1.0  # a second one (a daylight sample), in another block of times
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", pro, forcing)
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path), "--device", "cpu",
            "--time-chunk", "24"]
    with pytest.warns(UserWarning, match="outside the input domain"):
        assert predict.main([*argv, "--out", str(tmp_path / "skipped.nc"), "--skip-invalid"]) == 0
    printed = capsys.readouterr().out
    first = (f"{pro_path}: SNOWSSA: negative value inside a present layer: layer {layer} at 2011-01-11 13:00:00 "
             "point 1")
    assert f"skipped 2 sample(s) that fail the input checks (fill in the output, listed in its attribute " \
           f"samples_skipped_list), the first: {first}" in printed
    good = make_pair()[0]
    good_path, _ = write_pair(tmp_path / "good", "Alpes", good, forcing)
    with pytest.warns(UserWarning, match="outside the input domain"):
        predict.predict_files(model_path, good_path, forcing_path, tmp_path / "good.nc", device="cpu")
    with xr.open_dataset(tmp_path / "skipped.nc") as skipped, xr.open_dataset(tmp_path / "good.nc") as reference:
        assert skipped.attrs["samples_skipped"] == 2
        assert skipped.attrs["samples_skipped_list"].splitlines() == [
            first, f"{pro_path}: SNOWSSA: negative value inside a present layer: layer 1 at 2011-01-12 13:00:00 point 0"]
        assert skipped.attrs["samples"] == reference.attrs["samples"] - 2
        values, expected = skipped.albedo_emulated.values, reference.albedo_emulated.values
        assert np.isnan(values[30, 1]) and np.isnan(values[54, 0]) and np.isfinite(expected[[30, 54], [1, 0]]).all()
        values[30, 1], values[54, 0] = expected[30, 1], expected[54, 0]
        # to float32 rounding: the network's matrix products may round a row by its place in a batch
        np.testing.assert_allclose(values, expected, rtol=1e-6, atol=0)
    # without the option, the first stops the file (test above); nothing is listed in a normal output
    with xr.open_dataset(tmp_path / "good.nc") as reference:
        assert "samples_skipped" not in reference.attrs


def test_skip_invalid_leaves_out_and_lists_the_samples_failing_the_file_checks(model_path, tmp_path, capsys):
    """The checks of the files (Season.samples) stop the file in one line; with --skip-invalid the
    samples failing them are fill (not taken for night), listed and counted, the rest as in a clean run."""
    pro, forcing = _nan_ssa(*make_pair())  # NaN in the top layer at 30 h, point 1
    pro.SNOWDZ.values[0, 54, :, 0] = np.nan  # snow mass but no layer at 54 h, point 0 (another block)
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", pro, forcing)
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path), "--device", "cpu",
            "--time-chunk", "24"]
    first = f"{pro_path}: SNOWSSA: NaN in present layer 1 at 2011-01-11 13:00:00 point 1"
    assert predict.main([*argv, "--out", str(tmp_path / "refused.nc")]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"predict.py: error: {first}"
    assert not list(tmp_path.glob("refused.nc*"))
    with pytest.warns(UserWarning, match="outside the input domain"):
        assert predict.main([*argv, "--out", str(tmp_path / "skipped.nc"), "--skip-invalid"]) == 0
    assert f"skipped 2 sample(s) that fail the input checks (fill in the output, listed in its attribute " \
           f"samples_skipped_list), the first: {first}" in capsys.readouterr().out
    good_path, _ = write_pair(tmp_path / "good", "Alpes", make_pair()[0], forcing)
    with pytest.warns(UserWarning, match="outside the input domain"):
        predict.predict_files(model_path, good_path, forcing_path, tmp_path / "good.nc", device="cpu",
                              time_chunk=24)
    with xr.open_dataset(tmp_path / "skipped.nc") as skipped, xr.open_dataset(tmp_path / "good.nc") as reference:
        assert skipped.attrs["samples_skipped"] == 2
        assert skipped.attrs["samples_skipped_list"].splitlines() == [
            first, f"{pro_path}: SNOWDZ: no snow layer at 2011-01-12 13:00:00 point 0 although WSN_T_ISBA > 0"]
        assert skipped.attrs["samples"] == reference.attrs["samples"] - 2
        assert np.isfinite(reference.albedo_emulated.values[[30, 54], [1, 0]]).all()  # samples of the clean run
        for name in ("albedo_emulated", "cos_illum", "soil_sw_emulated", "absorbed_sw_emulated"):
            values, expected = skipped[name].values, reference[name].values
            at_fault = ([30, 54], slice(None), [1, 0]) if values.ndim == 3 else ([30, 54], [1, 0])
            assert np.isnan(values[at_fault]).all(), name
            values[at_fault] = expected[at_fault]
            np.testing.assert_allclose(values, expected, rtol=1e-6, atol=0)  # float32 rounding by batch place


def test_a_forcing_of_another_season_is_refused(model_path, tmp_path, capsys):
    """The PRO's and the FORCING's seasons differ in their names, or the FORCING holds few of the PRO's
    times: one line, exit 2, nothing written."""
    pro, forcing = make_pair()
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", pro, forcing)
    other = forcing_path.with_name("FORCING_2012011006_2012011306.nc")
    shutil.copyfile(forcing_path, other)
    shifted = forcing.assign_coords(time=forcing.time + pd.Timedelta(hours=60))
    shifted_path = write_pair(tmp_path / "shifted", "Alpes", pro, shifted)[1]
    common = len(np.intersect1d(pro.time.values, shifted.time.values))
    assert 0 < common < pro.sizes["time"] / 2
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--device", "cpu", "--out", str(tmp_path / "out.nc")]
    assert _usage_error([*argv, "--forcing", str(other)], capsys) == (
        f"predict.py: error: --forcing {other}: the FORCING of season 2012011006_2012011306, not of the PRO's season "
        f"{SEASON} ({pro_path})")
    assert _usage_error([*argv, "--forcing", str(shifted_path)], capsys) == (
        f"predict.py: error: --forcing {shifted_path}: holds only {common} of the {pro.sizes['time']} times of --pro "
        f"{pro_path}: not the FORCING of this PRO")
    assert not (tmp_path / "out.nc").exists()


def test_an_output_in_a_missing_directory_is_refused(model_path, pair, tmp_path, capsys):
    pro_path, forcing_path = pair
    out = tmp_path / "nowhere" / "deeper" / "out.nc"
    line = _usage_error(["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path),
                         "--out", str(out)], capsys)
    assert line == f"predict.py: error: --out {out}: no directory {out.parent} (create it first)"
    assert not (tmp_path / "nowhere").exists()


def _usage_error(argv, capsys) -> str:
    """The one line a usage error prints; asserts exit status 2 and no traceback."""
    with pytest.raises(SystemExit) as exit_:
        predict.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture
def pair(tmp_path):
    """A pair of its own (a failing check must not touch the shared one), and the sha256 of each file."""
    pro_path, forcing_path = write_pair(tmp_path / "in", "Alpes", *make_pair())
    return pro_path, forcing_path


def test_the_output_never_replaces_an_input(model_path, pair, tmp_path, capsys):
    pro_path, forcing_path = pair
    model_copy = tmp_path / "emulator.pt"
    shutil.copyfile(model_path, model_copy)
    before = {path: sha256(path) for path in (pro_path, forcing_path, model_copy)}
    os.link(pro_path, tmp_path / "hard_link.nc")
    (tmp_path / "symlink.nc").symlink_to(forcing_path)
    outputs = {pro_path: "the PRO file given as --pro", forcing_path: "the FORCING file given as --forcing",
               model_copy: "the emulator file given as --model",
               pro_path.parent / ".." / "PRO" / pro_path.name: "the PRO file given as --pro",
               tmp_path / "hard_link.nc": "the PRO file given as --pro",
               tmp_path / "symlink.nc": "the FORCING file given as --forcing"}
    for out, words in outputs.items():
        for extra in ([], ["--overwrite"]):  # --overwrite does not allow it either
            line = _usage_error(["--model", str(model_copy), "--pro", str(pro_path), "--forcing", str(forcing_path),
                                 "--out", str(out), "--device", "cpu", *extra], capsys)
            assert line == f"predict.py: error: --out {out}: is {words}; the output must be a new file", line
    assert {path: sha256(path) for path in before} == before
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_an_existing_output_is_replaced_only_with_overwrite(model_path, pair, tmp_path, capsys):
    pro_path, forcing_path = pair
    out = tmp_path / "albedo.nc"
    out.write_text("an earlier result")
    argv = ["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path), "--out", str(out),
            "--device", "cpu"]
    assert _usage_error(argv, capsys) == f"predict.py: error: --out {out}: exists; --overwrite replaces it"
    assert out.read_text() == "an earlier result"
    with pytest.warns(UserWarning, match="outside the input domain"):
        assert predict.main([*argv, "--overwrite"]) == 0
    with xr.open_dataset(out) as ds:
        assert "albedo_emulated" in ds
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["albedo.nc"]  # no temporary file left


def test_bad_options_are_one_line_usage_errors(model_path, pair, tmp_path, capsys):
    pro_path, forcing_path = pair
    some_nc = tmp_path / "some.nc"
    shutil.copyfile(pro_path, some_nc)
    good = {"--model": str(model_path), "--pro": str(pro_path), "--forcing": str(forcing_path),
            "--out": str(tmp_path / "out.nc"), "--device": "cpu"}
    no_cuda = "CUDA is not available on this machine" if not torch.cuda.is_available() else "CUDA device(s)"
    cases = {
        ("--device", "cuda:7"): f"argument --device: device 'cuda:7': {no_cuda}",
        ("--device", "tpu"): "argument --device: device 'tpu': expected cpu, cuda, cuda:N or auto",
        ("--model", str(some_nc)): f"--model {some_nc}: not an emulator file",
        ("--model", str(tmp_path / "nosuch.pt")): f"--model {tmp_path / 'nosuch.pt'}: no such file",
        ("--pro", str(tmp_path / "nosuch.nc")): f"--pro {tmp_path / 'nosuch.nc'}: no such file",
        ("--forcing", str(tmp_path)): f"--forcing {tmp_path}: not a file",
        ("--out", str(tmp_path)): f"--out {tmp_path}: is a directory",
        ("--batch-size", "0"): "--batch-size: must be >= 1, got 0",
        ("--point-chunk", "-3"): "--point-chunk: must be >= 1, got -3",
        ("--time-chunk", "abc"): "argument --time-chunk: invalid int value: 'abc'",
    }
    for (option, value), message in cases.items():
        argv = [word for key, text in {**good, option: value}.items() for word in (key, text)]
        line = _usage_error(argv, capsys)
        assert line.startswith(f"predict.py: error: {message}"), line
    assert not (tmp_path / "out.nc").exists()
