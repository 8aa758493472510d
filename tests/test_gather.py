"""utils.gather, the emulator's one-pass input layout: the same layout and ranges as the numpy
path, and invalid exactly where utils.profiles says so."""
import numpy as np
import pytest

from preprocessing.profile_sampler import sample_profiles
from utils.domain import layer_tensor
from utils.gather import gather_layers
from utils.profiles import as_profile_arrays, check_layer_values
from utils.schema import LAYER_VARIABLES, N_LAYERS


def layer_arrays(profiles: dict, width: int = N_LAYERS) -> dict:
    return as_profile_arrays(*(profiles[name][:, :width] for name in LAYER_VARIABLES),
                             profiles["cos_illum"], profiles["direct_sw"], profiles["diffuse_sw"])[0]


@pytest.mark.parametrize("width", [1, 7, N_LAYERS])
def test_layout_and_ranges_are_the_numpy_paths(width):
    profiles = sample_profiles(300, seed=4)  # 1 to 50 layers, ice, zeros of soot and dust
    layers = layer_arrays(profiles, width)
    for name in LAYER_VARIABLES:
        layers[name][:5] = np.nan  # snow-free rows
    layers["ssa"][5, :] = 30.0  # values under the pack are ignored: absent layers hold 0
    variables, low, high, n_layers = gather_layers(layers)
    present = ~np.isnan(layers["dz"])
    expected = layer_tensor(*(np.where(present, layers[name], np.nan) for name in LAYER_VARIABLES))  # (N, 5, 50)
    np.testing.assert_array_equal(variables, expected.transpose(1, 2, 0))
    np.testing.assert_array_equal(n_layers, present.sum(axis=1))
    for v, name in enumerate(LAYER_VARIABLES):
        values = layers[name].astype(np.float32)
        np.testing.assert_array_equal(low[v], np.where(present, values, np.inf).min(axis=1))
        np.testing.assert_array_equal(high[v], np.where(present, values, -np.inf).max(axis=1))


def test_invalid_exactly_where_the_checks_say():
    rng = np.random.default_rng(8)
    profiles = sample_profiles(64, seed=5)
    faults = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e-30, 950.0, 917.0]
    for trial in range(400):
        layers = {k: v.copy() for k, v in layer_arrays(profiles).items()}
        for _ in range(rng.integers(1, 3)):
            name = LAYER_VARIABLES[rng.integers(5)]
            row, layer = rng.integers(64), rng.integers(N_LAYERS)
            layers[name][row, layer] = faults[rng.integers(len(faults))]
        try:
            check_layer_values(layers, snow_free=True)
            valid = True
        except ValueError:
            valid = False
        assert (gather_layers(layers) is not None) == valid, trial
