"""The compiled two-stream physics (utils/two_stream.py) against the torch form it mirrors
(OpticalBudget.physics, features.TwoStreamOptics), and Emulator's CPU path built on it."""

import numba
import numpy as np
import pytest
import torch

from models import build_model
from preprocessing.profile_sampler import realistic_profiles
from tests.conftest import extreme_inputs, extreme_profiles, make_emulator
from utils.domain import model_inputs
from utils.two_stream import exp_nonpositive


@numba.njit
def exp_of(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_nonpositive(x[i])


def test_exp_to_float32_rounding():
    x = -np.concatenate([np.geomspace(1e-9, 87, 5000), np.linspace(0, 87, 5000)]).astype(np.float32)
    out = np.empty_like(x)
    exp_of(x, out)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 3e-7
    exp_of(np.array([-88.0, -1e4, -np.inf], np.float32), out[:3])
    assert np.all(out[:3] < 2e-38) and np.all(out[:3] >= 0)  # far below any flux that matters


SETTINGS = [{}, {"n_shallow": 0}, {"n_described": 0, "n_surface": 2, "n_depths": 0},
            {"n_shallow": 3, "shallow_layers": 1, "n_described": 1, "n_depths": 1},
            {"wavelengths_nm": [400.0, 560.0, 800.0, 1040.0, 1300.0], "n_described": 4, "n_depths": 6,
             "shallow_layers": 8},
            {"truncation": True}, {"truncation": True, "n_shallow": 3, "shallow_layers": 3}]


@pytest.mark.parametrize("settings", SETTINGS, ids=[str(s) for s in SETTINGS])
@pytest.mark.parametrize("budget", [True, False])
def test_compiled_physics_is_the_torch_form(settings, budget):
    """Both forms in float32, in different orders: co-albedos, shares and optics agree to a few
    units of float32 rounding, 1e-6 of the incident light on realistic and extreme packs (1e-5 on
    random inputs far beyond them: soot 1e-2, 20 m layers, SSA 1e4, any soil albedo, Dumont's
    split of forcing without diffuse light), the direct fraction to float32 rounding (the split's
    exponential), the rest exactly. Packs of every depth: the compiled form computes each block
    of profiles down to its deepest layer only."""
    model, _ = build_model("optical_budget", settings)
    realistic = [model_inputs(realistic_profiles(100, n_layers=k, seed=5, soil_and_zenith=True))
                 for k in (1, 7, 30, 50)]
    for (layers, scalars), tolerance in (
            ([np.concatenate(parts) for parts in zip(*realistic, model_inputs(extreme_profiles()))], 1e-6),
            (model_inputs(extreme_inputs(700, seed=6)), 1e-5)):
        with torch.no_grad():
            expected = model.physics(torch.from_numpy(layers), torch.from_numpy(scalars), budget)
        got = model.compiled_physics(layers, scalars, budget)
        assert set(got) == set(expected)
        for name in ("present", "cos_illum", "soil_albedo"):
            torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0)
        torch.testing.assert_close(got["fraction"], expected["fraction"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(got["depth"], expected["depth"], rtol=1e-6, atol=0)
        for name in ("coalbedo", "top", "rho_described", "f2_described", "optical_depth"):
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=tolerance, msg=name)
        if budget:
            for got_group, expected_group in zip(got["absorbed"], expected["absorbed"], strict=True):
                torch.testing.assert_close(got_group, expected_group, rtol=1e-5, atol=tolerance)
        else:
            assert got["absorbed"] is None and expected["absorbed"] is None


def test_a_profiles_compiled_physics_does_not_depend_on_its_block():
    """A block computes down to its deepest layer, and the absent layers above it change nothing:
    a profile alone, or among deeper packs, gets the same numbers to the last bit."""
    model, _ = build_model("optical_budget")
    profiles = realistic_profiles(300, n_layers=50, seed=9, soil_and_zenith=True)
    below = np.arange(50)[None, :] >= np.random.default_rng(9).integers(1, 51, 300)[:, None]
    layers, scalars = model_inputs({k: np.where(below, np.nan, v) if v.ndim == 2 else v for k, v in profiles.items()})
    together = model.compiled_physics(layers, scalars, budget=True)
    for row in (0, 1, 2, 150, 299):
        alone = model.compiled_physics(layers[row:row + 1], scalars[row:row + 1], budget=True)
        for name in ("coalbedo", "top", "rho_described", "f2_described", "optical_depth", "fraction"):
            torch.testing.assert_close(alone[name][..., 0], together[name][..., row], rtol=0, atol=0)
        for one, group in zip(alone["absorbed"], together["absorbed"], strict=True):
            torch.testing.assert_close(one[..., 0], group[..., row], rtol=0, atol=0)


def test_emulator_on_a_cpu_gives_the_models_outputs(tmp_path):
    """Emulator takes the compiled physics on a CPU: its outputs are the model's own, energy is
    conserved, and numba's thread setting (the labeller's too) is left as it was; packs of
    different depths, which Emulator sorts by depth, come back in their order."""

    emulator = make_emulator({}, tmp_path / "model.pt")
    profiles = realistic_profiles(500, n_layers=50, seed=8, soil_and_zenith=True)
    below = np.arange(50)[None, :] >= np.random.default_rng(8).integers(1, 51, 500)[:, None]
    profiles = {k: np.where(below, np.nan, v) if v.ndim == 2 else v for k, v in profiles.items()}
    profiles["diffuse_sw"][:100] = 0.0  # Dumont's split
    profiles["direct_sw"][:100] = np.maximum(profiles["direct_sw"][:100], 50.0)
    layers, scalars = model_inputs(profiles)
    threads = numba.get_num_threads()
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        budget = emulator.energy_budget(**profiles, batch_size=128)
        assert numba.get_num_threads() == threads
    finally:
        torch.set_num_threads(torch_threads)
    with torch.no_grad():
        expected = [o.double().numpy()
                    for o in emulator.model(torch.from_numpy(layers), torch.from_numpy(scalars))]
    # float32 rounding of the two forms of the physics, which the sharpened untrained network amplifies
    np.testing.assert_allclose(budget.albedo, expected[0], rtol=0, atol=3e-6)
    np.testing.assert_allclose(np.nan_to_num(budget.absorbed), expected[1], rtol=0, atol=3e-6)
    np.testing.assert_allclose(budget.soil, expected[2], rtol=0, atol=3e-6)
    np.testing.assert_allclose(budget.albedo + np.nansum(budget.absorbed, axis=1) + budget.soil, 1, atol=1e-6)
    # the albedo path's last layer sums the two albedo rows alone: float32 rounding (1.2e-7 below 1) apart
    np.testing.assert_allclose(emulator.predict(**profiles), budget.albedo, rtol=0, atol=2.5e-7)
