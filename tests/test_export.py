"""export.py: the TorchScript and ONNX files compute what the eager model computes (within 1e-6, all
three outputs of an energy-budget model) from the same raw inputs, at any batch size and memory
order; their contract for unusual input (float64, NaN padding, the sun behind the slope, dark and
snow-free profiles); the weights file of the Fortran module; the command line."""
import json
import warnings

import numpy as np
import pytest
import torch

import export
from models import Emulator
from preprocessing.profile_sampler import sample_profiles
from tests.conftest import TINY_BUDGET, TINY_CNN, extreme_profiles, make_emulator, model_inputs
from utils.provenance import sha256
from utils.tartes_constants import DIFFUSE_COS

TOLERANCE = 1e-6
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")]

# The energy-budget model (tiny, and with the default settings: its features update tensors in
# place, which exporters must follow) and the albedo-only baseline, small.
ARCHITECTURES = {"budget_tiny": ("optical_budget", TINY_BUDGET), "budget_default": ("optical_budget", {}),
                 "cnn_seed": ("cnn_seed", TINY_CNN)}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def emulator_file(request, tmp_path_factory):
    name, settings = ARCHITECTURES[request.param]
    path = tmp_path_factory.mktemp(request.param) / "emulator.pt"
    make_emulator(settings, path, name=name)
    return path


@pytest.fixture(scope="module")
def batch(emulator_file):
    """The emulator, a varied batch (sampled packs of 1 to 50 layers, ice, the sun behind the slope,
    all-direct and all-diffuse light, and the extreme profiles of the Fortran tests) as model
    inputs, and the eager model's outputs, a tuple of arrays."""
    emulator = Emulator.load(emulator_file, device="cpu")
    profiles = {name: np.concatenate([a, b]) for (name, a), b in
                zip(sample_profiles(300, seed=11).items(), extreme_profiles().values())}
    layers, illumination = model_inputs(profiles)
    n_layers = (layers[:, 0] > 0).sum(axis=1)
    assert {1, 50} <= set(n_layers) and (layers[:, 2] >= 850).any() and (illumination[:, 0] < 0.0017).sum() > 3
    with torch.no_grad():
        eager = emulator.model(torch.from_numpy(layers), torch.from_numpy(illumination))
    eager = tuple(o.numpy() for o in (eager if isinstance(eager, tuple) else (eager,)))
    assert eager[0].std() > 0.005  # answers that differ from profile to profile
    return emulator, layers, illumination, eager


# The whole batch, one profile alone, and an odd-sized batch.
BATCHES = {"all": slice(None), "one": slice(3, 4), "37": slice(10, 47)}


def assert_equal_outputs(outputs, eager, rows=slice(None), err_msg=""):
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    assert len(outputs) == len(eager)
    for name, exported, expected in zip(export.BUDGET_OUTPUTS, outputs, eager):
        exported = exported.numpy() if isinstance(exported, torch.Tensor) else exported
        assert exported.shape == expected[rows].shape, (name, err_msg)
        np.testing.assert_allclose(exported, expected[rows], rtol=0, atol=TOLERANCE, err_msg=f"{name} {err_msg}")


@pytest.fixture(scope="module")
def scripted(batch, tmp_path_factory):
    path = export.export_torchscript(batch[0], tmp_path_factory.mktemp("ts") / "emulator.ts")
    assert [p.name for p in path.parent.iterdir()] == ["emulator.ts"]
    return torch.jit.load(str(path))


@pytest.fixture(scope="module")
def session(batch, tmp_path_factory):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = export.export_onnx(batch[0], tmp_path_factory.mktemp("onnx") / "emulator.onnx")
    assert [p.name for p in path.parent.iterdir()] == ["emulator.onnx"]  # weights inside, no external data
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_torchscript_equals_the_eager_model(batch, scripted):
    emulator, layers, illumination, eager = batch
    for name, rows in BATCHES.items():
        with torch.no_grad():
            outputs = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(illumination[rows]))
        assert_equal_outputs(outputs, eager, rows, name)
    if emulator.model.BUDGET:  # energy conserved in the exported file too
        albedo, absorbed, soil = (o.numpy() for o in outputs)
        np.testing.assert_allclose(albedo + absorbed.sum(axis=1) + soil, 1, rtol=0, atol=1e-5)


def test_torchscript_takes_fortran_ordered_arrays(batch, scripted):
    """FTorch hands Fortran arrays layers(npts, 5, 50) over as they lie in memory, the profile index
    varying fastest: the same outputs."""
    _, layers, illumination, eager = batch
    fortran_layers, fortran_illumination = np.asfortranarray(layers), np.asfortranarray(illumination)
    assert fortran_layers.strides[0] == 4
    with torch.no_grad():
        outputs = scripted(torch.from_numpy(fortran_layers), torch.from_numpy(fortran_illumination))
    assert_equal_outputs(outputs, eager)


def test_torchscript_refuses_float64_and_wrong_shapes_clearly(batch, scripted):
    _, layers, illumination, _ = batch
    layers, illumination = torch.from_numpy(layers[:4]), torch.from_numpy(illumination[:4])
    # torch.jit.Error in Python (a c10::Error in C++ and FTorch), the message of export._CheckedInputs
    with pytest.raises(torch.jit.Error, match="must be float32"):
        scripted(layers.double(), illumination.double())
    with pytest.raises(torch.jit.Error, match="must be float32"):
        scripted(layers, illumination.double())
    with pytest.raises(torch.jit.Error, match=r"layers must have shape \(batch, 5, 50\)"):
        scripted(layers.transpose(1, 2).contiguous(), illumination)
    with pytest.raises(torch.jit.Error, match=r"illumination must have shape \(batch, 3\)"):
        scripted(layers, illumination[:3])


def test_onnx_equals_the_eager_model(batch, session):
    emulator, layers, illumination, eager = batch
    names = list(export.output_names(emulator))
    assert [i.name for i in session.get_inputs()] == ["layers", "illumination"]
    assert session.get_inputs()[0].shape == ["batch", 5, 50]
    assert [o.name for o in session.get_outputs()] == names
    if emulator.model.BUDGET:
        assert [o.shape for o in session.get_outputs()] == [["batch"], ["batch", 50], ["batch"]]
    for name, rows in BATCHES.items():
        outputs = session.run(None, {"layers": layers[rows], "illumination": illumination[rows]})
        assert_equal_outputs(outputs, eager, rows, name)
    outputs = session.run(None, {"layers": np.asfortranarray(layers), "illumination": np.asfortranarray(illumination)})
    assert_equal_outputs(outputs, eager, err_msg="Fortran order")


def test_onnx_refuses_float64(batch, session):
    _, layers, illumination, _ = batch
    with pytest.raises(Exception, match="(?i)type"):
        session.run(None, {"layers": layers[:2].astype(np.float64), "illumination": illumination[:2]})


def test_nan_padding_gives_nan_for_that_profile_only(batch, scripted, session):
    """The documented contract: absent layers are 0, NaN is no padding; a NaN in a profile (here in
    the absent layers of row 0, and in the ssa of one present layer of row 1) makes all of that
    profile's outputs NaN and leaves the other profiles as they were."""
    emulator, layers, illumination, eager = batch
    rows = slice(0, 8)
    nan_layers = layers[rows].copy()
    absent = nan_layers[0, 0] == 0
    assert absent.any()
    nan_layers[0][:, absent] = np.nan
    nan_layers[1, 1, 0] = np.nan
    with torch.no_grad():
        eager_nan = emulator.model(torch.from_numpy(nan_layers), torch.from_numpy(illumination[rows]))
        ts_nan = scripted(torch.from_numpy(nan_layers), torch.from_numpy(illumination[rows]))
    onnx_nan = session.run(None, {"layers": nan_layers, "illumination": illumination[rows]})
    for outputs in (eager_nan, ts_nan, onnx_nan):
        outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,))]
        for output, expected in zip(outputs, eager):
            assert np.isnan(output[:2]).all()
            np.testing.assert_allclose(output[2:], expected[rows][2:], rtol=0, atol=TOLERANCE)


def test_dark_and_snow_free_profiles_follow_the_night_contract(batch, scripted, session):
    """docs/labels.md, "Night and no light": a dark profile (direct_sw + diffuse_sw <= 1e-8) with snow
    gives albedo 1, absorbed 0 and soil 0; a profile without snow (every dz 0) NaN in every output;
    the other profiles of the batch are as they were. TorchScript outputs need no torch.no_grad()."""
    _, layers, illumination, eager = batch
    rows = slice(0, 6)
    layers, illumination = layers[rows].copy(), illumination[rows].copy()
    illumination[0, 1:] = 0.0
    illumination[1, 1:] = [1e-9, 0.0]
    layers[2] = 0.0
    illumination[3, 1:] = 0.0
    layers[3] = 0.0
    outputs = scripted(torch.from_numpy(layers), torch.from_numpy(illumination))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert not any(o.requires_grad for o in outputs)
    onnx = session.run(None, {"layers": layers, "illumination": illumination})
    for exported in ([o.numpy() for o in outputs], onnx):
        for output, value, expected in zip(exported, (1.0, 0.0, 0.0), eager):
            np.testing.assert_array_equal(output[:2], np.full_like(output[:2], value))
            assert np.isnan(output[2:4]).all()
            np.testing.assert_allclose(output[4:], expected[rows][4:], rtol=0, atol=TOLERANCE)


def test_sun_behind_the_slope_is_all_diffuse_light(batch, scripted):
    """cos_illum < 0.0017, 0 and negative included: the outputs of all-diffuse light at Crocus's cosine."""
    _, layers, illumination, _ = batch
    rows = np.arange(6)
    behind = illumination[rows].copy()
    behind[:, 0] = [0.0016, 0.0, -0.3, -1.0, 0.001, 1e-6]
    diffuse = np.stack([np.full(6, DIFFUSE_COS, dtype=np.float32), np.zeros(6, dtype=np.float32),
                        behind[:, 1] + behind[:, 2]], axis=1)
    with torch.no_grad():
        a = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(behind))
        b = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(diffuse))
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


ARRAYS = {"hidden", "wavelengths_nm", "minus_y_c", "half_phi_c", "ginf", "g_span", "clean", "soot", "dust",
          "feature_mean", "feature_std"}


def parse_weights(path) -> dict:
    """The weights file as {key: values}: arrays as float64 arrays, the linear layers as
    'weight i' and 'bias i', the domain as 'domain <name>', other keys as their words."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    parsed, i = {"header": lines[0]}, 1
    while i < len(lines):
        words = lines[i].split()
        if words[0] == "weight":
            rows = int(words[2])
            parsed[f"weight {words[1]}"] = np.array([[float(v) for v in lines[i + 1 + r].split()] for r in range(rows)])
            i += rows + 1
        elif words[0] == "bias" or words[0] in ARRAYS:
            count = int(words[-1])
            key = f"bias {words[1]}" if words[0] == "bias" else words[0]
            parsed[key] = np.array([float(v) for v in lines[i + 1].split()]) if count else np.array([])
            i += 2 if count else 1
        elif words[0] == "domain":
            parsed[f"domain {words[1]}"] = [float(v) for v in words[2:]]
            i += 1
        else:
            parsed[words[0]] = words[1:]
            i += 1
    return parsed


def test_fortran_weights_hold_the_model_exactly(emulator_file, tmp_path):
    emulator = Emulator.load(emulator_file)
    if not emulator.model.BUDGET:
        with pytest.raises(ValueError, match="gives the albedo only"):
            export.export_fortran_weights(emulator, tmp_path / "w.txt")
        assert not (tmp_path / "w.txt").exists()
        return
    path = export.export_fortran_weights(emulator, tmp_path / export.WEIGHTS_FILE, emulator_file)
    weights = parse_weights(path)
    assert weights["header"] == "tartes-emulator-weights 2"
    assert weights["architecture"] == ["optical_budget"] and weights["activation"] == ["silu"]
    assert weights["model_sha256"] == [sha256(emulator_file)]
    model = emulator.model
    linears = [m for m in model.mlp if isinstance(m, torch.nn.Linear)]
    assert weights["n_linear"] == [str(len(linears))]
    for i, linear in enumerate(linears, start=1):  # float32 values, written exactly
        np.testing.assert_array_equal(weights[f"weight {i}"].astype(np.float32), linear.weight.detach().numpy())
        np.testing.assert_array_equal(weights[f"weight {i}"], linear.weight.detach().double().numpy())
        np.testing.assert_array_equal(weights[f"bias {i}"], linear.bias.detach().double().numpy())
    for name in ("minus_y_c", "half_phi_c", "ginf", "g_span", "clean", "soot", "dust"):
        np.testing.assert_array_equal(weights[name], getattr(model.optics, name).double().numpy().ravel())
    np.testing.assert_array_equal(weights["feature_mean"], model.norm.mean.double().numpy())
    np.testing.assert_array_equal(weights["feature_std"], model.norm.std.double().numpy())
    np.testing.assert_array_equal(weights["wavelengths_nm"], emulator.settings["wavelengths_nm"])
    for name, bounds in emulator.domain.items():
        assert weights[f"domain {name}"] == bounds
    assert weights["end"] == []


def test_command_line_writes_the_files_and_their_description(emulator_file, tmp_path, capsys):
    emulator = Emulator.load(emulator_file)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert export.main(["--model", str(emulator_file), "--out", str(out)]) == 0
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    expected = {"emulator.json", "emulator.ts", "emulator.onnx"}
    if emulator.model.BUDGET:
        expected.add(export.WEIGHTS_FILE)
    assert {p.name for p in out.iterdir()} == expected
    printed = capsys.readouterr().out
    assert "emulator.ts" in printed
    # the tracer's warnings, about what the check of every file verifies, are said once and silenced
    assert printed.splitlines().count(f"TorchScript and ONNX: {export.CHECKED}") == 1
    if not emulator.model.BUDGET:
        assert f"no {export.WEIGHTS_FILE}" in printed and "albedo only" in printed
    description = json.loads((out / "emulator.json").read_text())
    assert description["inputs"]["layers"]["shape"] == ["batch", 5, 50]
    assert description["inputs"]["illumination"]["columns"] == {"cos_illum": "1", "direct_sw": "W m-2",
                                                                "diffuse_sw": "W m-2"}
    assert list(description["outputs"]) == list(export.output_names(emulator))
    if emulator.model.BUDGET:
        assert description["outputs"]["absorbed"]["shape"] == ["batch", 50]
    assert {"nan", "absent_layers", "crocus_rules", "dtype", "night", "validation"} <= set(description["contract"])
    assert description["emulator_sha256"] == sha256(emulator_file) and description["model"] == emulator.model_name
    assert description["input_domain"] == emulator.domain


def test_command_line_refuses_the_fortran_format_for_an_albedo_model(emulator_file, tmp_path, capsys):
    emulator = Emulator.load(emulator_file)
    argv = ["--model", str(emulator_file), "--out", str(tmp_path / "out"), "--formats", "fortran"]
    if emulator.model.BUDGET:
        assert export.main(argv) == 0
        assert {p.name for p in (tmp_path / "out").iterdir()} == {export.WEIGHTS_FILE, "emulator.json"}
        return
    with pytest.raises(SystemExit) as exit_:
        export.main(argv)
    assert exit_.value.code == 2 and "gives the albedo only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line_reports_a_missing_or_old_model_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        export.main(["--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "no emulator file" in capsys.readouterr().err
    old = tmp_path / "old.pt"
    torch.save({"format": "tartes-emulator/3"}, old)
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        export.main(["--model", str(old), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "not an emulator file of format" in capsys.readouterr().err
