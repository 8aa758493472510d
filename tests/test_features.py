"""The physics features of utils/features.py against float64 references of the labeller's formulas."""
import numpy as np
import pytest
import torch

from benchmarks.profiles import realistic_profiles
from preprocessing.shards import LAYER_VARIABLES
from preprocessing.tartes_labels import BANDS, SOIL_ALBEDO
from utils.features import TwoStreamOptics, layer_tensor

WAVELENGTHS_NM = [400.0, 560.0, 800.0, 1040.0, 1300.0]


def reference_optics(profiles: dict, wavelengths_nm: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """r and f = exp(-ke tau*) (N, L, W), float64, written as preprocessing/tartes_labels.py
    writes them (with tartes' clamp of gamma2, which must not bind here)."""
    wavelength = np.asarray(wavelengths_nm) * 1e-9
    band = {k: np.interp(wavelength, BANDS["wavelength"], BANDS[k]) for k in BANDS if k != "wavelength"}
    dz, ssa, density, soot, dust = (profiles[name][..., None] for name in LAYER_VARIABLES)
    c = band["c_times_ssa"] / ssa
    g = band["ginf"] - (band["ginf"] - band["g00"]) * np.exp(-band["y"] * c)
    coalbedo = (0.5 * (1 - band["W"]) * -np.expm1(-c * band["phi"])
                + 2 / ssa * (band["mae_soot"] * soot + band["mae_dust"] * dust))
    ssalb = 1 - coalbedo
    ss = ssalb * (1 - g ** 2) / (1 - g ** 2 * ssalb)
    gs = g / (1 + g)
    gamma1 = 0.25 * (7 - ss * (4 + 3 * gs))
    gamma2_free = -0.25 * (1 - ss * (4 - 3 * gs))
    assert gamma2_free.min() > 1e-4
    ke = np.sqrt(gamma1 ** 2 - gamma2_free ** 2)
    r = gamma2_free / (gamma1 + ke)
    f = np.exp(-ke * density * ssa / 2 * dz * (1 - ssalb * g ** 2))
    return r, f


def reference_reflectance(r: np.ndarray, f: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """R (N, W) up through the layers from `bottom`, the labeller's recursion."""
    R = bottom
    for k in range(r.shape[1] - 1, -1, -1):
        a = (f[:, k] ** 2) * (R - r[:, k]) / (1 / r[:, k] - R)
        R = (r[:, k] + a / r[:, k]) / (1 + a)
    return R


def top_layers(profiles: dict, n: int) -> dict:
    return {k: (v[:, :n] if v.ndim == 2 else v) for k, v in profiles.items()}


def model_layers(profiles: dict) -> torch.Tensor:
    return torch.from_numpy(layer_tensor(*(profiles[name] for name in LAYER_VARIABLES)))


@pytest.fixture(scope="module")
def profiles():
    return realistic_profiles(64, n_layers=50, seed=3)


def test_layer_optics_match_the_labellers_formulas(profiles):
    optics = TwoStreamOptics(WAVELENGTHS_NM, n_top=16)
    with torch.no_grad():
        rho, f2 = (t.permute(2, 1, 0).double().numpy() for t in optics.layer_optics(model_layers(profiles)))
    r, f = reference_optics(top_layers(profiles, 17), WAVELENGTHS_NM)
    # co-albedos to float32 precision, even where r is 0.99
    np.testing.assert_allclose(rho, 1 - r, rtol=2e-5)
    np.testing.assert_allclose(f2, f ** 2, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("n_layers", [5, 16, 50])
def test_stack_coalbedo_matches_the_labellers_recursion(profiles, n_layers):
    """Packs shallower than n_top on the soil, as deep, and deeper (a semi-infinite layer below)."""
    subset = top_layers(profiles, n_layers)
    optics = TwoStreamOptics(WAVELENGTHS_NM, n_top=16)
    with torch.no_grad():
        layers = model_layers(subset)
        coalbedo = optics.stack_coalbedo(layers, *optics.layer_optics(layers)).T.double().numpy()
    r, f = reference_optics(subset, WAVELENGTHS_NM)
    seen = min(n_layers, 16)
    bottom = r[:, 16] if n_layers > 16 else np.full_like(r[:, 0], SOIL_ALBEDO)
    R = reference_reflectance(r[:, :seen], f[:, :seen], bottom)
    np.testing.assert_allclose(coalbedo, 1 - R, rtol=1e-4)
    assert np.all((coalbedo > 0) & (coalbedo < 1))


def test_stack_coalbedo_limits():
    """A thick layer is semi-infinite; a thin one shows the soil; soot darkens the visible."""
    def stack_coalbedo(dz, soot=0.0):
        profiles = {"dz": np.array([[dz]]), "ssa": np.array([[20.0]]), "density": np.array([[300.0]]),
                    "soot": np.array([[soot]]), "dust": np.array([[0.0]])}
        optics = TwoStreamOptics(WAVELENGTHS_NM, n_top=4)
        with torch.no_grad():
            layers = model_layers(profiles)
            rho, f2 = optics.layer_optics(layers)
            return optics.stack_coalbedo(layers, rho, f2)[:, 0].numpy(), rho[:, 0, 0].numpy()

    thick, rho = stack_coalbedo(50.0)
    np.testing.assert_allclose(thick, rho, rtol=1e-5)
    thin, _ = stack_coalbedo(1e-6)
    np.testing.assert_allclose(thin, 1 - SOIL_ALBEDO, rtol=1e-3)
    sooty, _ = stack_coalbedo(50.0, soot=1e-6)
    assert sooty[0] > 2 * thick[0] and sooty[-1] == pytest.approx(thick[-1], rel=0.05)


def test_layer_tensor_places_layers_and_zeroes_absent_ones():
    dz = np.array([[0.1, 0.2, np.nan]])
    ones = np.ones_like(dz)
    layers = layer_tensor(dz, 2 * ones, 3 * ones, 4 * ones, 5 * ones)
    assert layers.shape == (1, 5, 50) and layers.dtype == np.float32
    np.testing.assert_array_equal(layers[0, 0, :3], np.float32([0.1, 0.2, 0.0]))
    np.testing.assert_array_equal(layers[0, 1:, 1], [2, 3, 4, 5])
    assert not layers[0, :, 3:].any()
