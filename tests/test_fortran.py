"""fortran/tartes_emulator.f90: compiled with gfortran with a small driver (fortran/emulator_driver.f90),
it reads the weights that export.py writes and computes what the Python model computes, on realistic
and extreme profiles: within 1e-5 of Emulator.energy_budget (the float32 model), within 1e-12 of the
same model run in float64; energy conserved to 1e-12; Crocus's fluxes; clear stops on bad files and
bad inputs."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import export
from dataset import ShardDataset
from models import Emulator
from preprocessing.profile_sampler import sample_profiles
from tests.conftest import TINY_BUDGET, extreme_profiles, make_emulator
from utils.schema import ILLUMINATION, LAYER_VARIABLES

FORTRAN = Path(__file__).resolve().parents[1] / "fortran"
FLAGS = ["-O2", "-std=f2008", "-Wall", "-fcheck=bounds,do,mem,pointer,recursion"]
TOLERANCE = 1e-5  # the float64 module against the float32 model
EXACT = 1e-12  # against the same model in float64
pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    """The module and its driver compiled as the issue asks (gfortran -O2 -std=f2008), with run-time
    checks of array bounds."""
    if shutil.which("gfortran") is None:
        pytest.skip("gfortran not found: apt-get update && apt-get install -y gfortran")
    build = tmp_path_factory.mktemp("fortran")
    for source in ("tartes_emulator.f90", "emulator_driver.f90"):
        subprocess.run(["gfortran", *FLAGS, "-c", str(FORTRAN / source)], cwd=build, check=True)
    subprocess.run(["gfortran", "tartes_emulator.o", "emulator_driver.o", "-o", "emulator_driver"], cwd=build,
                   check=True)
    return build / "emulator_driver"


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory) -> dict[str, tuple[Emulator, Path]]:
    """Emulators of the tiny settings of the tests, of the default ones and of the default ones with
    every wavelength on every layer (one group, weak and strong absorption together), and their
    weights files."""
    files = {}
    for name, settings in (("tiny", TINY_BUDGET), ("default", {}), ("all_layers", {"n_shallow": 0})):
        directory = tmp_path_factory.mktemp(f"weights_{name}")
        emulator = make_emulator(settings, directory / "emulator.pt")
        files[name] = emulator, export.export_fortran_weights(emulator, directory / export.WEIGHTS_FILE,
                                                             directory / "emulator.pt")
    return files


@pytest.fixture(params=["tiny", "default", "all_layers"])
def weights(request, weights_files) -> tuple[Emulator, Path]:
    return weights_files[request.param]


@pytest.fixture
def tiny_weights(weights_files) -> Path:
    return weights_files["tiny"][1]


def write_input(path: Path, profiles: dict, nan_as_zero: bool = True) -> Path:
    """The driver's input: npts, nlayers (int32), then the arrays (float64, Fortran order); NaN
    (absent layers, as the labeller takes them) becomes 0, as Crocus's arrays hold, unless
    nan_as_zero is false."""
    dz = np.asarray(profiles["dz"])
    with open(path, "wb") as f:
        np.array(dz.shape, dtype="<i4").tofile(f)
        for name in LAYER_VARIABLES:
            values = np.asarray(profiles[name], dtype="<f8")
            (np.nan_to_num(values, nan=0.0) if nan_as_zero else values).ravel(order="F").tofile(f)
        for name in ILLUMINATION:
            np.asarray(profiles[name], dtype="<f8").tofile(f)
    return path


def run_driver(driver: Path, weights: Path, profiles: dict, tmp_path: Path, mode: str = "check",
               nan_as_zero: bool = True):
    """(completed process, outputs): the driver on profiles; outputs as arrays by name."""
    source, target = write_input(tmp_path / "input.bin", profiles, nan_as_zero), tmp_path / "output.bin"
    process = subprocess.run([str(driver), str(weights), str(source), str(target), mode], capture_output=True,
                             text=True, timeout=60)
    if process.returncode != 0 or mode != "check":
        return process, None
    n, n_layers = np.shape(profiles["dz"])
    values, outputs, start = np.fromfile(target, dtype="<f8"), {}, 0
    for name, shape in (("albedo", (n,)), ("soil", (n,)), ("absorbed", (n, n_layers)), ("psnowalb", (n,)),
                        ("pradxs", (n,)), ("pradsink", (n, n_layers)), ("outside", (n,))):
        size = int(np.prod(shape))
        outputs[name] = values[start:start + size].reshape(shape, order="F")
        start += size
    assert start == len(values)
    return process, outputs


def statuses(process) -> dict[str, str]:
    """'budget', 'crocus', 'outside': the status line the driver printed for each routine."""
    return {line.split()[0]: line.split(" ", 2)[2] for line in process.stdout.splitlines() if " status " in line}


def float32_values(profiles: dict) -> dict:
    """The profiles at float32 precision, as the Python model sees them: both sides then take the
    same numbers."""
    return {name: np.asarray(values, dtype=np.float32).astype(np.float64) for name, values in profiles.items()}


def test_module_computes_the_python_model(driver, weights, tmp_path):
    emulator, path = weights
    # 425 profiles: 26 blocks of 16 and one of 9 (the network of a block on all its rows)
    profiles = float32_values({name: np.concatenate([a, b]) for (name, a), b in
                               zip(sample_profiles(409, seed=7).items(), extreme_profiles().values())})
    process, out = run_driver(driver, path, profiles, tmp_path)
    assert process.returncode == 0, process.stderr
    assert set(statuses(process).values()) == {"0 "}, process.stdout
    # the last three alone (the network row by row): the same numbers
    _, alone = run_driver(driver, path, {name: values[-3:] for name, values in profiles.items()}, tmp_path)
    for name in ("albedo", "absorbed", "soil"):
        np.testing.assert_allclose(alone[name], out[name][-3:], rtol=0, atol=1e-15, err_msg=name)

    budget = emulator.energy_budget(**profiles)
    present = ~np.isnan(profiles["dz"])
    np.testing.assert_allclose(out["albedo"], budget.albedo, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["soil"], budget.soil, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["absorbed"][present], budget.absorbed[present], rtol=0, atol=TOLERANCE)
    assert np.all(out["absorbed"][~present] == 0)  # NaN in Python, 0 in Fortran as in Crocus's arrays

    # the same model in float64: the module computes the same function
    model = copy.deepcopy(emulator.model).double()
    layers = np.stack([np.nan_to_num(profiles[name]) for name in LAYER_VARIABLES], axis=1)
    illumination = np.stack([profiles[name] for name in ILLUMINATION], axis=1)
    with torch.no_grad():
        albedo, absorbed, soil = (o.numpy() for o in model(torch.from_numpy(layers), torch.from_numpy(illumination)))
    np.testing.assert_allclose(out["albedo"], albedo, rtol=0, atol=EXACT)
    np.testing.assert_allclose(out["soil"], soil, rtol=0, atol=EXACT)
    np.testing.assert_allclose(out["absorbed"], absorbed, rtol=0, atol=EXACT)

    # energy conserved, every fraction >= 0
    total = out["albedo"] + out["absorbed"].sum(axis=1) + out["soil"]
    np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
    assert out["absorbed"].min() >= 0 and out["soil"].min() >= 0 and out["albedo"].min() >= 0
    assert out["albedo"].std() > 0.01  # answers that differ from profile to profile

    # Crocus's outputs (docs/labels.md): W m-2, PRADSINK minus the net flux below each layer
    sw = profiles["direct_sw"] + profiles["diffuse_sw"]
    np.testing.assert_array_equal(out["psnowalb"], out["albedo"])
    np.testing.assert_allclose(out["pradxs"], sw * out["soil"], rtol=1e-14, atol=0)
    pradsink = -sw[:, None] * (1 - out["albedo"][:, None] - np.cumsum(out["absorbed"], axis=1))
    np.testing.assert_allclose(out["pradsink"], pradsink, rtol=0, atol=1e-11 * sw.max())
    python_pradsink = -sw[:, None] * (1 - budget.albedo[:, None] - np.cumsum(np.nan_to_num(budget.absorbed), axis=1))
    assert np.all(np.abs(out["pradsink"] - python_pradsink) <= 2 * TOLERANCE * sw[:, None])
    assert out["pradsink"].max() <= 0

    # the input domain, as Emulator.outside_domain sees it
    np.testing.assert_array_equal(out["outside"] > 0, emulator.outside_domain(**profiles))
    assert out["outside"][-len(extreme_profiles()["dz"]):].any()


def test_absent_layers_are_ignored_and_dark_points_follow_the_contract(driver, weights, tmp_path):
    """Whatever Crocus leaves below the pack (dz = 0) changes nothing. docs/labels.md, "Night and no
    light": a dark point (direct_sw + diffuse_sw <= 1e-8, a trace of light included) gets albedo 1,
    nothing absorbed, soil 0 and zero fluxes, as in Emulator.energy_budget; a point without snow the
    same values (NaN in Python); neither is outside the domain; the other points are unchanged."""
    emulator, path = weights
    profiles = float32_values(sample_profiles(50, seed=3))
    garbage = {name: np.where(np.isnan(profiles["dz"]), value, profiles[name])
               for name, value in (("ssa", 1e20), ("density", -5.0), ("soot", np.inf), ("dust", np.nan))}
    _, clean = run_driver(driver, path, profiles, tmp_path)
    _, dirty = run_driver(driver, path, {**profiles, **garbage}, tmp_path)
    for name in ("albedo", "absorbed", "soil", "pradsink", "pradxs"):
        np.testing.assert_array_equal(dirty[name], clean[name], err_msg=name)

    dark = {name: np.array(values) for name, values in profiles.items()}
    dark["direct_sw"][:25], dark["diffuse_sw"][:25] = 0.0, 0.0
    dark["direct_sw"][20:25] = 1e-9
    dark["dz"][25:30] = np.nan  # no snow (0 in the driver's input)
    process, out = run_driver(driver, path, dark, tmp_path)
    assert set(statuses(process).values()) == {"0 "}, process.stdout
    for name, value in (("albedo", 1.0), ("absorbed", 0.0), ("soil", 0.0), ("pradsink", 0.0), ("pradxs", 0.0),
                        ("outside", 0.0)):
        np.testing.assert_array_equal(out[name][:30], np.full_like(out[name][:30], value), err_msg=name)
        # the same to rounding (a block's sweeps stop at its deepest pack, which changes with the empty ones)
        np.testing.assert_allclose(out[name][30:], clean[name][30:], rtol=1e-12, atol=1e-15, err_msg=name)
    python = emulator.energy_budget(**dark)
    np.testing.assert_array_equal(python.albedo[:25], 1.0)
    np.testing.assert_array_equal(python.soil[:25], 0.0)
    np.testing.assert_array_equal(np.nan_to_num(python.absorbed[:25]), 0.0)
    assert np.isnan(python.albedo[25:30]).all()  # no snow: NaN in Python, the dark values here


def small_profiles(n: int = 3, n_layers: int = 4) -> dict:
    return {"dz": np.full((n, n_layers), 0.05), "ssa": np.full((n, n_layers), 20.0),
            "density": np.full((n, n_layers), 300.0), "soot": np.full((n, n_layers), 1e-9),
            "dust": np.zeros((n, n_layers)), "cos_illum": np.full(n, 0.5), "direct_sw": np.full(n, 200.0),
            "diffuse_sw": np.full(n, 100.0)}


def broken(profiles: dict, name: str, row: int, column: int | None, value: float) -> dict:
    changed = {k: np.array(v, dtype=float) for k, v in profiles.items()}
    if column is None:
        changed[name][row] = value
    else:
        changed[name][row, column] = value
    return changed


@pytest.mark.parametrize("name, column, value, message", [
    ("dz", 1, -0.01, "point 2, layer 2: dz = -0.01"),
    ("dz", 0, np.nan, "point 2, layer 1: dz = NaN"),
    ("density", 3, 950.0, "point 2, layer 4: density = 950 kg m-3"),
    ("ssa", 0, 0.0, "point 2, layer 1: ssa = 0"),
    ("soot", 2, -1e-9, "point 2, layer 3: soot = -1e-9 kg kg-1"),
    ("cos_illum", None, 1.5, "point 2: cos_illum = 1.5"),
    ("direct_sw", None, -1.0, "point 2: direct_sw = -1 W m-2"),
])
def test_invalid_inputs_are_reported(driver, tiny_weights, tmp_path, name, column, value, message):
    """With status: the code, a message naming the point and layer, NaN outputs. Without: a stop."""
    profiles = broken(small_profiles(), name, 1, column, value)
    process, out = run_driver(driver, tiny_weights, profiles, tmp_path, nan_as_zero=False)
    assert process.returncode == 0
    for routine, status in statuses(process).items():
        assert status.startswith("3 ") and message in status, (routine, status)
    assert np.isnan(out["albedo"]).all() and np.isnan(out["pradsink"]).all()
    process, _ = run_driver(driver, tiny_weights, profiles, tmp_path, mode="stop", nan_as_zero=False)
    assert process.returncode != 0 and message in process.stderr and "tartes_emulator_budget" in process.stderr
    assert "budget done" not in process.stdout


def test_too_many_layers_are_reported(driver, tiny_weights, tmp_path):
    process, _ = run_driver(driver, tiny_weights, small_profiles(n_layers=51), tmp_path)
    assert statuses(process)["budget"].startswith("2 ") and "51 layers, expected 1 to 50" in statuses(process)["budget"]
    process, _ = run_driver(driver, tiny_weights, small_profiles(n_layers=51), tmp_path, mode="stop")
    assert process.returncode != 0 and "51 layers, expected 1 to 50" in process.stderr


def weights_variant(path: Path, tmp_path: Path, change) -> Path:
    lines = path.read_text().splitlines()
    variant = tmp_path / "variant_weights.txt"
    variant.write_text("\n".join(change(lines)) + "\n")
    return variant


def replace_line(prefix: str, line: str):
    return lambda lines: [line if x.startswith(prefix) else x for x in lines]


def drop_last_number(lines: list[str]) -> list[str]:
    index = lines.index(next(x for x in lines if x.startswith("weight 1 "))) + 1
    return lines[:index] + [lines[index].rsplit(" ", 1)[0]] + lines[index + 1:]


@pytest.mark.parametrize("change, message", [
    (replace_line("tartes-emulator-weights", "tartes-emulator-weights 1"),
     "format version 1, but this module reads version 2"),
    (replace_line("shallow_layers", "shallow_layers 0"), "shallow_layers must be in [1, 50]"),
    (replace_line("tartes-emulator-weights", "something else"), "not a tartes-emulator weights file"),
    (replace_line("architecture", "architecture cnn_seed"), 'unknown architecture "cnn_seed"'),
    (replace_line("activation", "activation relu"), 'unknown activation "relu"'),
    (replace_line("n_features", "n_features 7"), "inconsistent shapes: n_features is 7"),
    (replace_line("feature_std", "feature_std 3"), "inconsistent shapes: feature_std has 3 values"),
    (drop_last_number, "inconsistent shapes: row 1 of weight 1"),
    (lambda lines: lines[:-30], "the file ends early"),
])
def test_bad_weights_files_stop_with_a_message(driver, tiny_weights, tmp_path, change, message):
    variant = weights_variant(tiny_weights, tmp_path, change)
    process, _ = run_driver(driver, variant, small_profiles(), tmp_path)
    assert process.returncode != 0
    assert str(variant) in process.stderr and message in process.stderr, process.stderr


def test_a_missing_weights_file_stops_with_a_message(driver, tmp_path):
    process, _ = run_driver(driver, tmp_path / "nowhere.txt", small_profiles(), tmp_path)
    assert process.returncode != 0
    assert f"tartes_emulator_load: {tmp_path / 'nowhere.txt'}: no such file" in process.stderr
    assert "python export.py" in process.stderr


def test_openmp_build_gives_the_same_numbers(driver, weights_files, tmp_path):
    """Compiled with OpenMP (the blocks of points in parallel): the same outputs on one thread and on
    two, bit for bit, and those of the serial build to rounding (-fopenmp also vectorises the
    `!$omp simd` loops, with vector exp and tanh)."""
    build = tmp_path / "openmp"
    build.mkdir()
    for source in ("tartes_emulator.f90", "emulator_driver.f90"):
        subprocess.run(["gfortran", "-O2", "-std=f2008", "-fopenmp", "-c", str(FORTRAN / source)], cwd=build,
                       check=True)
    subprocess.run(["gfortran", "-fopenmp", "tartes_emulator.o", "emulator_driver.o", "-o", "emulator_driver"],
                   cwd=build, check=True)
    path = weights_files["default"][1]
    profiles = float32_values(sample_profiles(203, seed=5))
    _, serial = run_driver(driver, path, profiles, tmp_path)
    serial = np.concatenate([serial[name].ravel(order="F") for name in
                             ("albedo", "soil", "absorbed", "psnowalb", "pradxs", "pradsink", "outside")])
    source = write_input(tmp_path / "input.bin", profiles)
    parallel = {}
    for threads in (1, 2):
        target = tmp_path / f"parallel{threads}.bin"
        process = subprocess.run([str(build / "emulator_driver"), str(path), str(source), str(target)],
                                 env={**os.environ, "OMP_NUM_THREADS": str(threads)}, capture_output=True, text=True)
        assert process.returncode == 0, process.stderr
        parallel[threads] = np.fromfile(target, dtype="<f8")
    np.testing.assert_array_equal(parallel[2], parallel[1])
    np.testing.assert_allclose(parallel[2], serial, rtol=1e-13, atol=1e-13)


def test_the_shipped_model(driver, tmp_path):
    """data/emulator.pt, when it is an energy-budget model of the current format: its weights file
    computes it (the same bars on realistic and extreme profiles)."""
    shipped = Path(__file__).resolve().parents[1] / "data" / "emulator.pt"
    try:
        emulator = Emulator.load(shipped)
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"no shipped model of the current format: {e}")
    if not emulator.model.BUDGET:
        pytest.skip(f"the shipped model ({emulator.model_name}) gives the albedo only")
    path = export.export_fortran_weights(emulator, tmp_path / export.WEIGHTS_FILE, shipped)
    profiles = float32_values({name: np.concatenate([a, b]) for (name, a), b in
                               zip(sample_profiles(500, seed=21).items(), extreme_profiles().values())})
    _, out = run_driver(driver, path, profiles, tmp_path)
    budget = emulator.energy_budget(**profiles)
    present = ~np.isnan(profiles["dz"])
    np.testing.assert_allclose(out["albedo"], budget.albedo, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["soil"], budget.soil, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["absorbed"][present], budget.absorbed[present], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["albedo"] + out["absorbed"].sum(axis=1) + out["soil"], 1, rtol=0, atol=1e-12)


def test_module_on_the_embedded_test_season(driver, tiny_run, tmp_path):
    """The default path in miniature (conftest.tiny_run: synthetic Crocus seasons on flat and sloped
    points, preprocessing, training): its selected model through the weights file export.py writes,
    on the profiles of its test season, as preprocessing stored them."""
    emulator = Emulator.load(tiny_run / "best.pt")
    weights = export.export_fortran_weights(emulator, tmp_path / "emulator_weights.txt", tiny_run / "best.pt")
    test = ShardDataset([Path(p) for p in json.loads((tiny_run / "splits.json").read_text())["test"]])
    rows = test.rows(np.arange(len(test)))
    assert len(test) > 100 and np.ptp(rows["scalars"][:, 0] - rows["scalars"][:, 3]) > 0.1  # sloped points
    profiles = {name: np.where(rows["mask"], rows["layers"][:, i], np.nan).astype(np.float64)
                for i, name in enumerate(LAYER_VARIABLES)}
    profiles.update({name: rows["scalars"][:, i].astype(np.float64) for i, name in enumerate(ILLUMINATION)})
    process, out = run_driver(driver, weights, profiles, tmp_path)
    assert process.returncode == 0, process.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows outside the tiny training domain: compared all the same
        budget = emulator.energy_budget(**profiles)
    present = rows["mask"]
    np.testing.assert_allclose(out["albedo"], budget.albedo, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["soil"], budget.soil, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["absorbed"][present], budget.absorbed[present], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["albedo"] + out["absorbed"].sum(axis=1) + out["soil"], 1, rtol=0, atol=1e-12)
