"""predict.py on tiny hand-made Crocus files: the output is Emulator.predict of preprocessing's samples
at their time and point, fill elsewhere, with ASN_VEG, metadata and provenance; bad files fail as
preprocessing fails; the output never replaces an input nor, unless asked, an existing file; bad
options are one line and exit status 2."""
import os
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import torch

import predict
from dataset import ShardDataset
from models import Emulator, build_model
from preprocessing import preprocess as pp
from preprocessing.shards import open_shard
from tests.crocus_fixtures import SEASON, make_pair, write_pair
from utils.config import Config
from utils.features import SSA, fit_normalisation
from utils.provenance import sha256

SSA_SEEN = 30.0  # m2 kg-1: the tiny emulator's training domain stops there (the fixture's SSA reaches 50)


@pytest.fixture(scope="module")
def alpes(tmp_path_factory):
    """One pair, and its shard from preprocessing; returns (pro_path, forcing_path, shard)."""
    root = tmp_path_factory.mktemp("crocus")
    pro_path, forcing_path = write_pair(root / "in", "Alpes", *make_pair())
    pp.preprocess(root / "in", root / "shards")
    return pro_path, forcing_path, open_shard(root / "shards" / "Alpes" / SEASON)


@pytest.fixture(scope="module")
def model_path(alpes, tmp_path_factory):
    """A tiny untrained emulator normalised on the pair's own samples, so that its answers spread."""
    dataset = ShardDataset([alpes[2].path])
    torch.manual_seed(0)
    model, settings = build_model("cnn_seed", {"channels": [8, 8], "hidden": [32, 16]})
    fit_normalisation(model, dataset.model_inputs())
    with torch.no_grad():
        model.head[-1].weight.mul_(20)
    domain = dataset.input_domain()
    domain["ssa"][1] = SSA_SEEN
    path = tmp_path_factory.mktemp("emulator") / "emulator.pt"
    Emulator("cnn_seed", vars(settings), model, domain, vars(Config()), {}).save(path)
    return path


def shard_predictions(emulator: Emulator, shard) -> np.ndarray:
    layers = np.where(shard.mask[:, None, :], shard.layers, np.nan).astype(np.float64)
    scalars = shard.scalars.astype(np.float64)
    with pytest.warns(UserWarning, match="outside the input domain"):
        return emulator.predict(*(layers[:, k] for k in range(5)), scalars[:, 3], scalars[:, 1], scalars[:, 2])


def test_output_is_the_emulator_on_preprocessing_samples(alpes, model_path, tmp_path):
    pro_path, forcing_path, shard = alpes
    out = tmp_path / "out" / "albedo.nc"
    with pytest.warns(UserWarning, match="samples lie outside the input domain"):
        # Small blocks, so that samples are scattered back across several of them.
        predict.predict_files(model_path, pro_path, forcing_path, out, device="cpu", time_chunk=7, point_chunk=2)
    assert [p.name for p in out.parent.iterdir()] == ["albedo.nc"]  # no temporary file left

    expected = shard_predictions(Emulator.load(model_path), shard)
    assert expected.std() > 0.1  # the tiny model's answers differ from sample to sample
    meta = shard.meta()
    with xr.open_dataset(out) as ds, xr.open_dataset(pro_path) as pro:
        albedo = ds.albedo_emulated
        assert albedo.dims == ("time", "Number_of_points") and albedo.dtype == np.float32
        assert albedo.attrs["units"] == "1" and "long_name" in albedo.attrs
        # The times common to PRO and FORCING: here all of the PRO's.
        np.testing.assert_array_equal(ds.time.values, pro.time.values)
        t = ds.indexes["time"].get_indexer(meta.time)
        values = albedo.values
        np.testing.assert_allclose(values[t, meta.point], expected, rtol=0, atol=1e-6)
        sampled = np.zeros(values.shape, dtype=bool)
        sampled[t, meta.point] = True
        assert np.all(np.isnan(values[~sampled])) and not np.any(np.isnan(values[sampled]))

        # Crocus' albedo as written, 1 at night with snow, NaN without snow.
        np.testing.assert_array_equal(ds.ASN_VEG.values, pro.ASN_VEG.isel(Number_of_Patches=0).values)
        for name in ("ZS", "slope", "aspect", "latitude", "longitude"):
            np.testing.assert_array_equal(ds[name].values, pro[name].values)
        assert list(ds.massif_num.values) == [3, 3, 3]

        attrs = ds.attrs
        assert attrs["emulator_sha256"] == sha256(model_path) and attrs["emulator_model"] == "cnn_seed"
        assert attrs["pro_file"] == str(pro_path.resolve()) and attrs["forcing_file"] == str(forcing_path.resolve())
        high_ssa = np.any(shard.mask & (shard.layers[:, SSA] > SSA_SEEN), axis=1)
        assert attrs["samples"] == len(shard) and attrs["samples_outside_training_domain"] == high_ssa.sum() > 0
        assert attrs["variables_outside_training_domain"] == "ssa"
        assert "created" in attrs and "WSN_T_ISBA > 0" in attrs["selection"]
    with netCDF4.Dataset(out) as ds:  # on disk: SURFEX's fill value, which readers decode to NaN
        assert ds["albedo_emulated"]._FillValue == np.float32(predict.FILL)
        for name in ("albedo_emulated", "ASN_VEG"):  # compressed, both albedos dimensionless in CF's words
            assert ds[name].filters()["zlib"] and ds[name].filters()["complevel"] == 4, name
            assert ds[name].units == "1", name


def test_run_without_tartes_albedo(alpes, model_path, tmp_path):
    """A public-S2M-like PRO (no ASN_VEG, no impurities, density named SNOWRO) is emulated too."""
    pro, forcing = make_pair()
    pro = pro.rename(RSN_VEG="SNOWRO").drop_vars(["SNOWIMP1", "SNOWIMP2", "ASN_VEG"])
    pro_path, forcing_path = write_pair(tmp_path / "in", "S2M", pro, forcing)
    # Clean snow (no impurities in the file) lies below the tiny training data's soot and dust.
    n = len(alpes[2])
    with pytest.warns(UserWarning, match=f"{n} of {n} samples lie outside .* \\(dust, soot, ssa\\)"):
        assert predict.main(["--model", str(model_path), "--pro", str(pro_path), "--forcing", str(forcing_path),
                             "--out", str(tmp_path / "s2m.nc"), "--device", "cpu"]) == 0
    with xr.open_dataset(tmp_path / "s2m.nc") as ds:
        assert "ASN_VEG" not in ds
        # The samples of the run with TARTES: the selection does not depend on the absent variables.
        values, meta = ds.albedo_emulated.values, alpes[2].meta()
        sampled = np.zeros(values.shape, dtype=bool)
        sampled[ds.indexes["time"].get_indexer(meta.time), meta.point] = True
        np.testing.assert_array_equal(np.isfinite(values), sampled)


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
