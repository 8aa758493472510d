"""utils.compiled_layers, the compiled pass that checks Emulator's layers on a CPU: on valid inputs
exactly what validate_inputs and layer_tensor give; on anything else it declines, and the error
is validate_inputs' own."""
import warnings

import numpy as np
import pytest

from models import Emulator
from preprocessing.profile_sampler import realistic_profiles
from tests.conftest import TINY_BUDGET, extreme_inputs, extreme_profiles, make_emulator
from utils import compiled_layers
from utils.compiled_layers import checked_layers
from utils.domain import layer_tensor, profile_columns, scalar_tensor
from utils.profiles import validate_inputs, validate_scalars
from utils.schema import LAYER_VARIABLES

SCALARS = ("cos_illum", "direct_sw", "diffuse_sw")


def expected(profiles: dict, snow_free: bool = True):
    """(layers, n_layers, ranges, snow depth) as layer_tensor, validate_inputs and profile_columns give them."""
    _, scalars, n_layers, ranges = validate_inputs(**profiles, snow_free=snow_free, allow_dark=True)
    layers = layer_tensor(*(profiles[name] for name in LAYER_VARIABLES))
    return layers, n_layers, ranges, profile_columns(layers, scalar_tensor(scalars, len(layers)))["snow_depth"]


def assert_same(got, want):
    assert got is not None, "the compiled pass declined valid inputs"
    (layers, n_layers, ranges, depth), (want_layers, want_n, want_ranges, want_depth) = got, want
    assert layers.dtype == want_layers.dtype and layers.shape == want_layers.shape
    np.testing.assert_array_equal(layers, want_layers)
    assert n_layers.dtype == want_n.dtype
    np.testing.assert_array_equal(n_layers, want_n)
    assert ranges == want_ranges and all(type(v) is float for pair in ranges.values() for v in pair)
    assert depth.dtype == np.float64
    np.testing.assert_allclose(depth, want_depth, rtol=1e-15, atol=0)  # summed in another order


def columns(profiles: dict, width: int, rows=slice(None)) -> dict:
    return {name: v[rows, :width] if v.ndim == 2 else v[rows] for name, v in profiles.items()}


def test_valid_inputs_of_every_width_give_validate_inputs_and_layer_tensor():
    wide = extreme_inputs(700, seed=11)  # 1 to 50 layers, over 3 parallel blocks of rows
    wide = {name: v for name, v in wide.items() if name in (*LAYER_VARIABLES, *SCALARS)}
    for name in LAYER_VARIABLES:
        wide[name][5] = np.nan  # a row without snow
    for width in range(1, 51):
        profiles = columns(wide, width)
        assert_same(checked_layers(*(profiles[name] for name in LAYER_VARIABLES), snow_free=True), expected(profiles))
        for rows in (slice(0, 1), slice(2, 3), slice(5, 6), slice(0, 0)):  # single rows, snow-free, empty
            one = columns(wide, width, rows)
            assert_same(checked_layers(*(one[name] for name in LAYER_VARIABLES), snow_free=True), expected(one))
    # realistic packs, NaN below the pack or not; Crocus's edge cases; on one thread or the default
    for profiles in (realistic_profiles(300, n_layers=20, seed=1), extreme_profiles(),
                     {name: np.pad(v, ((0, 0), (0, 30)), constant_values=np.nan) if v.ndim == 2 else v
                      for name, v in realistic_profiles(300, n_layers=20, seed=2).items()}):
        profiles = {name: v for name, v in profiles.items() if name in (*LAYER_VARIABLES, *SCALARS)}
        for threads in (0, 1):
            assert_same(checked_layers(*(profiles[name] for name in LAYER_VARIABLES), threads=threads),
                        expected(profiles, snow_free=False))
    # any memory layout, and numbers that are not float64
    profiles = columns(wide, 50)
    assert_same(checked_layers(*(np.asfortranarray(profiles[name]) for name in LAYER_VARIABLES), snow_free=True),
                expected(profiles))
    small = {name: (v.astype(np.float32) if v.ndim == 2 else v) for name, v in columns(wide, 9, slice(10, 40)).items()}
    assert_same(checked_layers(*(small[name] for name in LAYER_VARIABLES), snow_free=True), expected(small))


def base_inputs() -> dict:
    """Three valid profiles of four layer columns; the last has two layers, NaN below."""
    inputs = {"dz": np.full((3, 4), 0.05), "ssa": np.full((3, 4), 20.0), "density": np.full((3, 4), 300.0),
              "soot": np.full((3, 4), 1e-9), "dust": np.zeros((3, 4)), "cos_illum": np.full(3, 0.5),
              "direct_sw": np.full(3, 300.0), "diffuse_sw": np.full(3, 100.0)}
    for name in LAYER_VARIABLES:
        inputs[name][2, 2:] = np.nan
    return inputs


def put(name, index, value):
    return lambda a: a[name].__setitem__(index, value)


LAYER_FAULTS = [
    (put("dz", (0, 1), np.nan), "dz: row 0, layer 2: absent (NaN) above a present layer"),
    (put("dz", (2, 3), 0.05), "dz: row 2, layer 3: absent (NaN) above a present layer"),
    (put("ssa", (1, 0), np.nan), "ssa: row 1, layer 1: NaN inside a present layer"),
    (put("soot", (2, 1), np.nan), "soot: row 2, layer 2: NaN inside a present layer"),
    (put("dz", (1, 3), np.inf), "dz: row 1, layer 4: infinite value"),
    (put("ssa", (0, 2), np.inf), "ssa: row 0, layer 3: infinite value"),
    (put("soot", (1, 1), np.inf), "soot: row 1, layer 2: infinite value"),
    (put("dust", (0, 0), -np.inf), "dust: row 0, layer 1: infinite value"),
    (put("dz", (0, 1), -0.01), "dz: row 0, layer 2: negative value"),
    (put("dust", (2, 1), -1e-9), "dust: row 2, layer 2: negative value"),
    (put("dz", (1, 2), 0.0), "dz: row 1, layer 3: zero inside a present layer"),
    (put("ssa", (0, 0), 0.0), "ssa: row 0, layer 1: zero inside a present layer"),
    (put("density", (2, 0), 0.0), "density: row 2, layer 1: zero inside a present layer"),
    (put("density", (2, 0), -0.0), "density: row 2, layer 1: zero inside a present layer"),
    (put("density", (1, 3), 1200.0), "density: row 1, layer 4: above 917"),
    (put("density", (2, 3), 1200.0), "density: row 2, layer 4: above 917"),  # in an absent layer too
    (put("density", (2, 2), np.inf), "density: row 2, layer 3: above 917"),
    (lambda a: a.update(soot=a["soot"][:, :2]), "soot: shape (3, 2) differs from dz's (3, 4)"),
    (lambda a: a.update(dz=np.full((3, 51), 0.1)), "1 <= L <= 50"),
    (lambda a: a.update(**{name: a[name][:, :0] for name in LAYER_VARIABLES}), "1 <= L <= 50"),
]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Emulator:
    """An emulator with a compiled physics: on a CPU its inputs go through the compiled pass."""
    emulator = make_emulator(TINY_BUDGET, tmp_path_factory.mktemp("compiled_layers") / "emulator.pt")
    assert emulator._compiled(emulator.device)
    return emulator


def error_of(function, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as raised:
        function(*args, **kwargs)
    return str(raised.value)


@pytest.mark.parametrize("change, message", LAYER_FAULTS)
def test_a_layer_fault_is_declined_and_its_error_is_validate_inputs_own(emulator, change, message):
    inputs = base_inputs()
    assert checked_layers(*(inputs[name] for name in LAYER_VARIABLES)) is not None
    change(inputs)
    assert checked_layers(*(inputs[name] for name in LAYER_VARIABLES), snow_free=True) is None
    error = error_of(validate_inputs, **inputs, snow_free=True, allow_dark=True)
    assert message in error
    assert error_of(emulator.predict, **inputs) == error
    assert error_of(emulator.energy_budget, **inputs) == error


@pytest.mark.parametrize("change", [
    put("cos_illum", 0, 1.5), put("direct_sw", 1, np.inf), put("diffuse_sw", 2, -1.0),
    lambda a: a.update(soil_albedo=np.array([0.2, 1.2, 0.2])), lambda a: a.update(soil_albedo=np.full(2, 0.2)),
    lambda a: a.update(cos_zenith=np.array([0.5, np.nan, 1.5])), lambda a: a.update(cos_illum=np.full(4, 0.5)),
    lambda a: a.update(direct_sw=np.full((3, 1), 300.0)),
])
def test_a_fault_of_the_scalars_behind_valid_layers_is_validate_inputs_own(emulator, change):
    inputs = base_inputs()
    change(inputs)
    assert checked_layers(*(inputs[name] for name in LAYER_VARIABLES), snow_free=True) is not None
    error = error_of(validate_inputs, **inputs, snow_free=True, allow_dark=True)
    assert error_of(emulator.predict, **inputs) == error
    # a fault of the layers comes first, as in validate_inputs
    inputs["ssa"][0, 0] = np.nan
    assert error_of(emulator.predict, **inputs) == error_of(validate_inputs, **inputs, snow_free=True, allow_dark=True)


def test_validate_scalars_is_validate_inputs_on_the_scalars():
    profiles = extreme_inputs(300, seed=4)
    _, scalars, n_layers, _ = validate_inputs(**profiles, snow_free=True, allow_dark=True)
    got = validate_scalars(*(profiles[name] for name in SCALARS), n_layers, soil_albedo=profiles["soil_albedo"],
                           cos_zenith=profiles["cos_zenith"], allow_dark=True)
    assert got.keys() == scalars.keys()
    for name, values in scalars.items():
        np.testing.assert_array_equal(got[name], values)
    assert validate_scalars(np.full(2, 0.5), np.ones(2), np.ones(2), np.array([1, 0]))["cos_zenith"].shape == (2,)


def test_no_snow_is_declined_unless_snow_free():
    inputs = base_inputs()
    for name in LAYER_VARIABLES:
        inputs[name][1] = np.nan
    layers = [inputs[name] for name in LAYER_VARIABLES]
    assert checked_layers(*layers) is None
    assert "dz: row 1: no snow layer" in error_of(validate_inputs, **inputs)
    assert_same(checked_layers(*layers, snow_free=True), expected(inputs))


def test_other_shapes_are_declined():
    inputs = base_inputs()
    layers = [inputs[name] for name in LAYER_VARIABLES]
    assert checked_layers(layers[0][0], *layers[1:]) is None
    assert checked_layers(*(a[0] for a in layers)) is None
    assert checked_layers(*(a[None] for a in layers)) is None


@pytest.mark.parametrize("change", [
    put("ssa", (0, 1), 1e39),  # beyond float32: numpy's cast warns of the overflow, as before
    put("soot", (1, 2), -0.0),
    lambda a: a.update(**{name: np.pad(a[name], ((0, 0), (0, 56)), constant_values=np.nan)
                          for name in LAYER_VARIABLES}),  # wider than 50 columns, NaN beyond
])
def test_what_validate_inputs_alone_accepts_takes_its_path(emulator, change):
    inputs = base_inputs()
    change(inputs)
    assert checked_layers(*(inputs[name] for name in LAYER_VARIABLES), snow_free=True) is None
    validate_inputs(**inputs, snow_free=True, allow_dark=True)  # valid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.isfinite(emulator.predict(**inputs)).all()
    overflow = any("overflow encountered in cast" in str(warning.message) for warning in caught)
    assert overflow == (inputs["ssa"][0, 1] == 1e39)


def test_the_emulator_takes_the_compiled_pass_and_gives_what_the_numpy_path_gives(emulator, monkeypatch):
    taken = []

    def spy(*args, **kwargs):
        taken.append(checked_layers(*args, **kwargs))
        return taken[-1]

    cases = [extreme_inputs(600, seed=9), realistic_profiles(500, n_layers=30, seed=3, soil_and_zenith=True),
             extreme_profiles()]
    for profiles in cases:
        outputs = []
        for path in (spy, lambda *args, **kwargs: None):
            monkeypatch.setattr(compiled_layers, "checked_layers", path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # outside the tiny emulator's domain
                budget = emulator.energy_budget(**profiles)
                outputs.append((emulator.predict(**profiles), budget.albedo, budget.absorbed, budget.soil))
        for fast, numpy_path in zip(*outputs):
            np.testing.assert_array_equal(fast, numpy_path)
    assert len(taken) == 2 * len(cases) and all(t is not None for t in taken)
