"""export.py: the TorchScript and ONNX files compute what the eager model computes (within 1e-6) from
the same raw inputs, at any batch size; the command line writes them with their description."""
import json

import numpy as np
import pytest
import torch

import export
from dataset import ShardDataset, split_shards
from models import Emulator, build_model
from tests.test_dataset import tiny_shard_dir
from utils.config import Config
from utils.features import fit_normalisation
from utils.provenance import sha256

TOLERANCE = 1e-6
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


# The default model (whose features update tensors in place, which exporters must follow) and the
# baseline, small.
ARCHITECTURES = {"optical_mlp": {}, "cnn_seed": {"channels": [8, 8], "hidden": [32, 16]}}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def emulator_file(request, tmp_path_factory):
    """A tiny untrained emulator normalised on its training seasons, and the season split. Its weights
    are left as initialised: sharpened ones (tests/test_models.py) blow float32 rounding up beyond
    1e-6, which a trained model's moderate outputs do not (2.4e-7 for the shipped one on
    benchmarks/inference.py's profiles)."""
    splits = split_shards(tiny_shard_dir(tmp_path_factory), [], [], [])
    train_set = ShardDataset(splits["train"])
    torch.manual_seed(0)
    model, settings = build_model(request.param, ARCHITECTURES[request.param])
    fit_normalisation(model, train_set.model_inputs())
    path = tmp_path_factory.mktemp("emulator") / "emulator.pt"
    Emulator(request.param, vars(settings), model, train_set.input_domain(), vars(Config()), {}).save(path)
    return path, splits


@pytest.fixture(scope="module")
def test_season(emulator_file):
    """The emulator, and (layers, illumination) of its test season with the eager model's albedo."""
    path, splits = emulator_file
    emulator = Emulator.load(path, device="cpu")
    batches = list(ShardDataset(splits["test"]).model_inputs())
    layers = np.concatenate([b[0] for b in batches])
    illumination = np.concatenate([b[1] for b in batches])
    with torch.no_grad():
        eager = emulator.model(torch.from_numpy(layers), torch.from_numpy(illumination)).numpy()
    assert eager.std() > 0.005  # answers that differ from profile to profile
    return emulator, layers, illumination, eager


# The whole season in one batch, one profile alone, and an odd-sized batch.
BATCHES = {"all": slice(None), "one": slice(3, 4), "37": slice(10, 47)}


def test_torchscript_equals_the_eager_model(test_season, tmp_path):
    emulator, layers, illumination, eager = test_season
    path = export.export_torchscript(emulator, tmp_path / "emulator.ts")
    assert [p.name for p in tmp_path.iterdir()] == ["emulator.ts"]
    scripted = torch.jit.load(str(path))
    for name, rows in BATCHES.items():
        with torch.no_grad():
            albedo = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(illumination[rows])).numpy()
        np.testing.assert_allclose(albedo, eager[rows], rtol=0, atol=TOLERANCE, err_msg=name)


def test_torchscript_takes_fortran_ordered_arrays(test_season, tmp_path):
    """FTorch hands Fortran arrays layers(npts, 5, 50) over as they lie in memory, the profile index
    varying fastest: the same albedo."""
    emulator, layers, illumination, eager = test_season
    scripted = torch.jit.load(str(export.export_torchscript(emulator, tmp_path / "emulator.ts")))
    fortran_layers, fortran_illumination = np.asfortranarray(layers), np.asfortranarray(illumination)
    assert fortran_layers.strides[0] == 4
    with torch.no_grad():
        albedo = scripted(torch.from_numpy(fortran_layers), torch.from_numpy(fortran_illumination)).numpy()
    np.testing.assert_allclose(albedo, eager, rtol=0, atol=TOLERANCE)


def test_onnx_equals_the_eager_model(test_season, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    emulator, layers, illumination, eager = test_season
    path = export.export_onnx(emulator, tmp_path / "emulator.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["emulator.onnx"]  # weights inside, no external data
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["layers", "illumination"]
    assert session.get_inputs()[0].shape == ["batch", 5, 50] and session.get_outputs()[0].name == "albedo"
    for name, rows in BATCHES.items():
        albedo, = session.run(None, {"layers": layers[rows], "illumination": illumination[rows]})
        np.testing.assert_allclose(albedo, eager[rows], rtol=0, atol=TOLERANCE, err_msg=name)


def test_command_line_writes_the_files_and_their_description(emulator_file, tmp_path, capsys):
    path = emulator_file[0]
    assert export.main(["--model", str(path), "--out", str(tmp_path / "out"), "--formats", "torchscript"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["emulator.json", "emulator.ts"]
    description = json.loads((tmp_path / "out" / "emulator.json").read_text())
    assert description["inputs"]["layers"]["shape"] == ["batch", 5, 50]
    assert list(description["inputs"]["illumination"]["columns"]) == ["cos_sza", "direct_sw", "diffuse_sw"]
    assert description["emulator_sha256"] == sha256(path) and description["model"] == Emulator.load(path).model_name
    assert description["input_domain"] == Emulator.load(path).domain
    assert "emulator.ts" in capsys.readouterr().out
