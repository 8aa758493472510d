"""export.py: the TorchScript and ONNX files compute what the eager model computes (within 1e-6, all
three outputs of an energy-budget model) from the same raw inputs, layers (B, 5, 50) and scalars
(B, 5) with the soil albedo and cos_zenith, at any batch size and memory order, and what Emulator
computes (within 1e-5); their contract for unusual input (float64, NaN padding, NaN cos_zenith, the
sun behind the slope, forcing without diffuse light, dark and snow-free profiles); the weights file
of the Fortran module; the command line."""
import copy
import json
import warnings

import numpy as np
import pytest
import torch

import export
from models import COALBEDO_FLOOR, DEPTH_FLOOR, OPTICAL_DEPTH_FLOOR, Emulator
from tests.conftest import (TINY_BUDGET, TINY_CNN, extreme_inputs, light_and_soil_profiles, make_emulator,
                            model_inputs, truncation_profiles)
from utils.crocus_rules import CLEANUP_BANDS, cleanup_rows, dark_rows, dumont_diffuse_fraction
from utils.provenance import sha256
from utils.schema import COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DIRECT_SW, MODEL_SCALARS, SOIL_ALBEDO
from utils.tartes_constants import DIFFUSE_COS, DUMONT_DIFFUSE

TOLERANCE = 1e-6
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")]

# The energy-budget model (tiny, with the default settings: its features update tensors in place,
# which exporters must follow, with them and SURFEX's truncation, and tiny without the optical depths'
# features: their empty tensors) and the albedo-only baseline, small.
ARCHITECTURES = {"budget_tiny": ("optical_budget", TINY_BUDGET), "budget_default": ("optical_budget", {}),
                 "budget_truncation": ("optical_budget", {"truncation": True}),
                 "budget_no_depths": ("optical_budget", {**TINY_BUDGET, "n_depths": 0}),
                 "cnn_seed": ("cnn_seed", TINY_CNN)}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def emulator_file(request, tmp_path_factory):
    name, settings = ARCHITECTURES[request.param]
    path = tmp_path_factory.mktemp(request.param) / "emulator.pt"
    make_emulator(settings, path, name=name)
    return path


@pytest.fixture(scope="module")
def batch(emulator_file):
    """The emulator, a varied lit batch (sampled packs of 1 to 50 layers over soils of albedo 0.05 to
    0.5, ice, the sun behind the slope, all-direct and all-diffuse light, forcing without diffuse
    light with and without cos_zenith, and the extreme profiles of the Fortran tests; the dark rows
    left out: the contract sets them) as model inputs, and the eager model's outputs, a tuple of
    arrays."""
    emulator = Emulator.load(emulator_file, device="cpu")
    layers, scalars = model_inputs(light_and_soil_profiles(300, seed=11, extremes=True))
    lit = ~(scalars[:, COS_ZENITH] <= 1e-8) & (scalars[:, DIRECT_SW] + scalars[:, DIFFUSE_SW] > 1e-8)
    layers, scalars = layers[lit], scalars[lit]
    n_layers = (layers[:, 0] > 0).sum(axis=1)
    assert {1, 50} <= set(n_layers) and (layers[:, 2] >= 850).any() and (scalars[:, COS_ILLUM] < 0.0017).sum() > 3
    assert ((scalars[:, DIFFUSE_SW] == 0) & np.isfinite(scalars[:, COS_ZENITH])).sum() > 20
    assert np.ptp(scalars[:, SOIL_ALBEDO]) > 0.4
    with torch.no_grad():
        eager = emulator.model(torch.from_numpy(layers), torch.from_numpy(scalars))
    eager = tuple(o.numpy() for o in (eager if isinstance(eager, tuple) else (eager,)))
    assert eager[0].std() > 0.005  # answers that differ from profile to profile
    return emulator, layers, scalars, eager


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
    emulator, layers, scalars, eager = batch
    for name, rows in BATCHES.items():
        with torch.no_grad():
            outputs = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(scalars[rows]))
        assert_equal_outputs(outputs, eager, rows, name)
    if emulator.model.BUDGET:  # energy conserved in the exported file too
        albedo, absorbed, soil = (o.numpy() for o in outputs)
        np.testing.assert_allclose(albedo + absorbed.sum(axis=1) + soil, 1, rtol=0, atol=1e-5)


def test_torchscript_takes_fortran_ordered_arrays(batch, scripted):
    """FTorch hands Fortran arrays layers(npts, 5, 50) over as they lie in memory, the profile index
    varying fastest: the same outputs."""
    _, layers, scalars, eager = batch
    fortran_layers, fortran_scalars = np.asfortranarray(layers), np.asfortranarray(scalars)
    assert fortran_layers.strides[0] == 4
    with torch.no_grad():
        outputs = scripted(torch.from_numpy(fortran_layers), torch.from_numpy(fortran_scalars))
    assert_equal_outputs(outputs, eager)


def test_torchscript_refuses_float64_and_wrong_shapes_clearly(batch, scripted):
    _, layers, scalars, _ = batch
    layers, scalars = torch.from_numpy(layers[:4]), torch.from_numpy(scalars[:4])
    # torch.jit.Error in Python (a c10::Error in C++ and FTorch), the message of export._CheckedInputs
    with pytest.raises(torch.jit.Error, match="must be float32"):
        scripted(layers.double(), scalars.double())
    with pytest.raises(torch.jit.Error, match="must be float32"):
        scripted(layers, scalars.double())
    with pytest.raises(torch.jit.Error, match=r"layers must have shape \(batch, 5, 50\)"):
        scripted(layers.transpose(1, 2).contiguous(), scalars)
    with pytest.raises(torch.jit.Error, match=r"scalars must have shape \(batch, 5\): .*soil_albedo, cos_zenith"):
        scripted(layers, scalars[:3])
    with pytest.raises(torch.jit.Error, match=r"scalars must have shape \(batch, 5\)"):
        scripted(layers, scalars[:, :3].contiguous())  # the inputs of an older export


def test_onnx_equals_the_eager_model(batch, session):
    emulator, layers, scalars, eager = batch
    names = list(export.output_names(emulator))
    assert [i.name for i in session.get_inputs()] == ["layers", "scalars"]
    assert session.get_inputs()[0].shape == ["batch", 5, 50] and session.get_inputs()[1].shape == ["batch", 5]
    assert [o.name for o in session.get_outputs()] == names
    if emulator.model.BUDGET:
        assert [o.shape for o in session.get_outputs()] == [["batch"], ["batch", 50], ["batch"]]
    for name, rows in BATCHES.items():
        outputs = session.run(None, {"layers": layers[rows], "scalars": scalars[rows]})
        assert_equal_outputs(outputs, eager, rows, name)
    outputs = session.run(None, {"layers": np.asfortranarray(layers), "scalars": np.asfortranarray(scalars)})
    assert_equal_outputs(outputs, eager, err_msg="Fortran order")


def test_onnx_refuses_float64(batch, session):
    _, layers, scalars, _ = batch
    with pytest.raises(Exception, match="(?i)type"):
        session.run(None, {"layers": layers[:2].astype(np.float64), "scalars": scalars[:2]})


def test_exports_agree_with_the_emulator(emulator_file, scripted, session):
    """The exported files against Emulator.energy_budget (predict for an albedo-only model) on the
    same float32 profiles, realistic, extreme (conftest.extreme_profiles) and random beyond the
    domain (conftest.extreme_inputs), dark and snow-free ones included, and thin layers over thick
    dense ones (conftest.truncation_profiles), where a model with SURFEX's truncation differs from the
    same without it by more than 1e-3 (labeller-style inputs: NaN below the pack, soil_albedo and
    cos_zenith keywords): within 1e-5, NaN where Emulator gives NaN.
    In SURFEX's clean-up regime, where Emulator gives the labeller's outputs, the files give their
    model's, as the eager model does."""
    emulator = Emulator.load(emulator_file)
    realistic, random = light_and_soil_profiles(200, seed=13, extremes=True), extreme_inputs(200, seed=13)
    thin = truncation_profiles(60, seed=13)
    profiles = {name: np.concatenate([values, random[name], thin[name]]) for name, values in realistic.items()}
    profiles["dz"][:3] = np.nan  # no snow
    profiles["direct_sw"][3:5], profiles["diffuse_sw"][3:5] = 0.0, [0.0, 1e-9]  # dark by the shortwave
    profiles = {name: np.asarray(values, dtype=np.float32).astype(np.float64) for name, values in profiles.items()}
    dark = profiles["cos_zenith"] <= 1e-8
    assert dark[:220].sum() == 6 and dark.sum() > 40
    assert ((profiles["diffuse_sw"] == 0) & np.isfinite(profiles["cos_zenith"])).sum() > 15
    layers, scalars = model_inputs(profiles)
    present = ~np.isnan(profiles["dz"])
    if emulator.model.BUDGET:
        budget = emulator.energy_budget(**profiles)
        # absent layers: 0 in the files, NaN in Python; rows without snow: NaN in both
        expected = (budget.albedo, np.where(present | ~present.any(axis=1)[:, None], budget.absorbed, 0.0),
                    budget.soil)
    else:
        expected = (emulator.predict(**profiles),)
    assert np.isnan(expected[0][:3]).all() and (expected[0][3:5] == 1).all() and (expected[0][dark] == 1).all()
    labelled = cleanup_rows(*(np.where(present, profiles[name], np.nan) for name in ("ssa", "density", "soot", "dust")))
    labelled &= present.any(axis=1) & ~dark_rows(profiles["direct_sw"], profiles["diffuse_sw"], profiles["cos_zenith"])
    assert labelled.sum() > 10  # heavy dust among the extreme and random profiles
    with torch.no_grad():
        eager = export._cpu_copy(emulator)(torch.from_numpy(layers), torch.from_numpy(scalars))
    eager = eager if isinstance(eager, tuple) else (eager,)
    expected = tuple(np.where(labelled[:, None], model.numpy()[:, :want.shape[1]], want) if want.ndim == 2
                     else np.where(labelled, model.numpy(), want) for want, model in zip(expected, eager))
    with torch.no_grad():
        scripted_outputs = scripted(torch.from_numpy(layers), torch.from_numpy(scalars))
    onnx_outputs = session.run(None, {"layers": layers, "scalars": scalars})
    for name, outputs in (("TorchScript", scripted_outputs), ("ONNX", onnx_outputs)):
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        for output, want in zip(outputs, expected):
            np.testing.assert_allclose(np.asarray(output), want, rtol=0, atol=1e-5, err_msg=name)
    if emulator.settings.get("truncation", False):  # it acts on the thin layers over thick ones
        untruncated, rows = copy.deepcopy(emulator.model), slice(-len(thin["dz"]), None)
        untruncated.optics.truncation = False
        with torch.no_grad():
            albedo = untruncated(torch.from_numpy(layers[rows]), torch.from_numpy(scalars[rows]))[0].numpy()
        assert (np.abs(albedo - expected[0][rows]) > 1e-3).mean() > 0.25


def test_nan_padding_gives_nan_for_that_profile_only(batch, scripted, session):
    """The documented contract: absent layers are 0, NaN is no padding; a NaN in a profile (here in
    the absent layers of row 0, and in the ssa of one present layer of row 1) makes all of that
    profile's outputs NaN and leaves the other profiles as they were."""
    emulator, layers, scalars, eager = batch
    rows = slice(0, 8)
    nan_layers, nan_scalars = layers[rows].copy(), scalars[rows].copy()
    absent = nan_layers[0, 0] == 0
    assert absent.any()
    nan_layers[0][:, absent] = np.nan
    nan_layers[1, 1, 0] = np.nan
    nan_scalars[2, SOIL_ALBEDO] = np.nan
    with torch.no_grad():
        eager_nan = emulator.model(torch.from_numpy(nan_layers), torch.from_numpy(nan_scalars))
        ts_nan = scripted(torch.from_numpy(nan_layers), torch.from_numpy(nan_scalars))
    onnx_nan = session.run(None, {"layers": nan_layers, "scalars": nan_scalars})
    for outputs in (eager_nan, ts_nan, onnx_nan):
        outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, (tuple, list)) else (outputs,))]
        for output, expected in zip(outputs, eager):
            assert np.isnan(output[:3]).all()
            np.testing.assert_allclose(output[3:], expected[rows][3:], rtol=0, atol=TOLERANCE)


def test_nan_cos_zenith_is_not_known_not_invalid(batch, scripted, session):
    """NaN in cos_zenith means not known: no rule, no NaN output. Where the forcing has diffuse
    light, the outputs are those of any cos_zenith above 1e-8 (no rule needs it)."""
    _, layers, scalars, eager = batch
    lit = np.flatnonzero((scalars[:, DIFFUSE_SW] > 0) & (scalars[:, COS_ILLUM] >= 0.0017))[:20]
    unknown, known = scalars[lit].copy(), scalars[lit].copy()
    unknown[:, COS_ZENITH], known[:, COS_ZENITH] = np.nan, 0.5
    for run in (lambda s: scripted(torch.from_numpy(layers[lit]), torch.from_numpy(s)),
                lambda s: session.run(None, {"layers": layers[lit], "scalars": s})):
        a, b = run(unknown), run(known)
        a, b = (out if isinstance(out, (tuple, list)) else (out,) for out in (a, b))
        for x, y, expected in zip(a, b, eager):
            assert not np.isnan(np.asarray(x)).any()
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
            np.testing.assert_allclose(np.asarray(x), expected[lit], rtol=0, atol=TOLERANCE)


def test_forcing_without_diffuse_light_is_split_by_dumont(batch, scripted):
    """diffuse_sw == 0 with cos_zenith known: the outputs of the split light, f SW diffuse and
    (1 - f) SW direct, f Dumont's diffuse fraction of cos_zenith (utils.crocus_rules); with
    cos_zenith NaN, the light as it is; behind the slope, all diffuse whatever cos_zenith."""
    _, layers, scalars, _ = batch
    rows = np.arange(8)
    forcing = scalars[rows].copy()
    forcing[:, COS_ILLUM] = np.linspace(0.1, 0.9, 8)
    forcing[:, DIRECT_SW], forcing[:, DIFFUSE_SW] = 400.0, 0.0
    forcing[:, COS_ZENITH] = np.linspace(0.05, 1.0, 8)
    split = forcing.copy()
    fraction = dumont_diffuse_fraction(forcing[:, COS_ZENITH])
    assert fraction.min() > 0.05 and fraction.max() < 1
    split[:, DIFFUSE_SW] = fraction * 400.0
    split[:, DIRECT_SW] = 400.0 - split[:, DIFFUSE_SW]
    as_is = forcing.copy()
    as_is[:, COS_ZENITH] = np.nan
    behind = forcing.copy()
    behind[:, COS_ILLUM] = -0.2
    all_diffuse = behind.copy()
    all_diffuse[:, DIRECT_SW], all_diffuse[:, DIFFUSE_SW], all_diffuse[:, COS_ZENITH] = 0.0, 400.0, np.nan

    def outputs(s):
        with torch.no_grad():
            out = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(s))
        return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]

    for x, y, z in zip(outputs(forcing), outputs(split), outputs(as_is)):
        np.testing.assert_allclose(x, y, rtol=0, atol=TOLERANCE)
        assert np.abs(x - z).max() > 1e-4  # the rule changes the outputs
    for x, y in zip(outputs(behind), outputs(all_diffuse)):
        np.testing.assert_array_equal(x, y)


def test_dark_and_snow_free_profiles_follow_the_night_contract(batch, scripted, session):
    """docs/labels.md, "Night and no light": a dark profile (direct_sw + diffuse_sw <= 1e-8) with snow
    gives albedo 1, absorbed 0 and soil 0; a profile without snow (every dz 0) NaN in every output;
    the other profiles of the batch are as they were. TorchScript outputs need no torch.no_grad()."""
    _, layers, scalars, eager = batch
    rows = slice(0, 10)
    layers, scalars = layers[rows].copy(), scalars[rows].copy()
    scalars[0, DIRECT_SW:DIFFUSE_SW + 1] = 0.0
    scalars[1, DIRECT_SW:DIFFUSE_SW + 1] = [1e-9, 0.0]
    scalars[2:6, COS_ZENITH] = [0.0, -0.4, 1e-9, -1.0]  # dark by cos_zenith, in daylight forcing
    scalars[2:6, DIRECT_SW] = 300.0
    layers[6] = 0.0
    scalars[7, DIRECT_SW:DIFFUSE_SW + 1] = 0.0
    layers[7] = 0.0
    outputs = scripted(torch.from_numpy(layers), torch.from_numpy(scalars))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert not any(o.requires_grad for o in outputs)
    onnx = session.run(None, {"layers": layers, "scalars": scalars})
    for exported in ([o.numpy() for o in outputs], onnx):
        for output, value, expected in zip(exported, (1.0, 0.0, 0.0), eager):
            np.testing.assert_array_equal(output[:6], np.full_like(output[:6], value))
            assert np.isnan(output[6:8]).all()
            np.testing.assert_allclose(output[8:], expected[rows][8:], rtol=0, atol=TOLERANCE)


def test_sun_behind_the_slope_is_all_diffuse_light(batch, scripted):
    """cos_illum < 0.0017, 0 and negative included: the outputs of all-diffuse light at Crocus's cosine."""
    _, layers, scalars, _ = batch
    rows = np.arange(6)
    behind = scalars[rows].copy()
    behind[:, COS_ILLUM] = [0.0016, 0.0, -0.3, -1.0, 0.001, 1e-6]
    diffuse = behind.copy()
    diffuse[:, COS_ILLUM], diffuse[:, DIRECT_SW] = DIFFUSE_COS, 0.0
    diffuse[:, DIFFUSE_SW] = behind[:, DIRECT_SW] + behind[:, DIFFUSE_SW]
    with torch.no_grad():
        a = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(behind))
        b = scripted(torch.from_numpy(layers[rows]), torch.from_numpy(diffuse))
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


ARRAYS = {"hidden", "wavelengths_nm", "minus_y_c", "half_phi_c", "ginf", "g_span", "clean", "soot", "dust",
          "dumont_diffuse", "band_ratio_direct", "band_ratio_diffuse", "cleanup_half_coalbedo",
          "cleanup_ice_exponent", "cleanup_mae_soot", "cleanup_mae_dust", "feature_mean", "feature_std"}


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
    assert weights["header"] == "tartes-emulator-weights 5"
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
    np.testing.assert_array_equal(weights["dumont_diffuse"], DUMONT_DIFFUSE)
    for name, values in CLEANUP_BANDS.items():  # the clean-up regime's 51 bands up to 1300 nm, exactly
        assert len(values) == 51
        np.testing.assert_array_equal(weights[f"cleanup_{name}"], values)
    assert weights["default_soil_albedo"] == ["0.2"]
    assert weights["truncation"] == ["1" if emulator.settings.get("truncation") else "0"]
    assert model.optics.truncation == bool(emulator.settings.get("truncation"))
    assert weights["tau_truncation"] == ["30.0"]
    assert weights["n_described"] == [str(model.n_described)] and weights["n_depths"] == [str(model.n_depths)]
    assert weights["depth_floor"] == [repr(DEPTH_FLOOR)] and weights["coalbedo_floor"] == [repr(COALBEDO_FLOOR)]
    assert weights["optical_depth_floor"] == [repr(OPTICAL_DEPTH_FLOOR)]
    n_wavelengths = len(emulator.settings["wavelengths_nm"])  # the features: W (2 + 2 n_described + n_depths) + 3
    n_described, n_depths = int(weights["n_described"][0]), int(weights["n_depths"][0])
    assert len(weights["feature_mean"]) == n_wavelengths * (2 + 2 * n_described + n_depths) + 3
    np.testing.assert_array_equal(weights["feature_mean"], model.norm.mean.double().numpy())
    np.testing.assert_array_equal(weights["feature_std"], model.norm.std.double().numpy())
    np.testing.assert_array_equal(weights["wavelengths_nm"], emulator.settings["wavelengths_nm"])
    assert "soil_albedo" in emulator.domain
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
    scalars = description["inputs"]["scalars"]
    assert scalars["shape"] == ["batch", 5] and "illumination" not in description["inputs"]
    assert scalars["columns"] == {"cos_illum": "1", "direct_sw": "W m-2", "diffuse_sw": "W m-2", "soil_albedo": "1",
                                  "cos_zenith": "1"}
    assert list(scalars["columns"]) == list(MODEL_SCALARS) and "NaN: not known" in scalars["meaning"]["cos_zenith"]
    assert list(description["outputs"]) == list(export.output_names(emulator))
    if emulator.model.BUDGET:
        assert description["outputs"]["absorbed"]["shape"] == ["batch", 50]
    assert {"nan", "absent_layers", "crocus_rules", "dtype", "night", "validation", "soil_albedo",
            "cos_zenith"} <= set(description["contract"])
    assert "cos_zenith <= 1e-8" in description["contract"]["night"]
    assert "Dumont" in description["contract"]["crocus_rules"]
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
