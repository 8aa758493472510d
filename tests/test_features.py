"""The physics features of features.py against float64 references of the labeller's formulas
(over soils of any albedo), and Crocus's light and layer rules against the labeller's."""
import numpy as np
import pytest
import torch

from preprocessing.profile_sampler import realistic_profiles
from features import TwoStreamOptics, crocus_rules, variables_first
from utils.crocus_rules import crocus_inputs
from utils.profiles import validate_inputs
from utils.domain import layer_tensor, model_inputs
from utils.schema import COS_ILLUM, DIFFUSE_SW, DIRECT_SW, LAYER_VARIABLES, MODEL_SCALARS
from utils.tartes_constants import BANDS, COS_ILLUM_MIN

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


def diffuse_budget(optics: TwoStreamOptics, profiles: dict):
    """rho, f2, the optical depths (W, 50, B), the co-albedos P (W, 51, B) and the absorbed shares (W, 51, B) of the
    profiles over their soil albedo, optics with every wavelength on every layer."""
    assert len(optics.groups) == 1
    with torch.no_grad():
        return optics.group_budget(variables_first(model_layers(profiles)), soil_albedo_of(profiles), optics.groups[0])


def soil_albedo_of(profiles: dict) -> torch.Tensor:
    return torch.as_tensor(profiles["soil_albedo"], dtype=torch.float32)


@pytest.fixture(scope="module")
def profiles():
    return realistic_profiles(64, n_layers=50, seed=3, soil_and_zenith=True)


def reference_diffuse_budget(r: np.ndarray, f: np.ndarray, soil_albedo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Co-albedo (N, W) and absorbed shares (N, W, L + 1) of unit diffuse light, float64, from the
    reflectances R under each interface (the labeller's recursion, up from soils of albedo
    soil_albedo (N,)) and the flux through each layer D' / D = f (1 + a) / (1 + f^2 a),
    a = (R - r) / (1/r - R), as in the labeller's downward pass."""
    n, n_layers, _ = r.shape
    below = [np.broadcast_to(soil_albedo[:, None], r[:, 0].shape)]
    for k in range(n_layers - 1, -1, -1):
        below.append(reference_reflectance(r[:, k:k + 1], f[:, k:k + 1], below[-1]))
    R = below[::-1]  # R[k]: above layer k; R[n_layers]: the soil
    down = np.ones_like(r[:, 0])
    net = [1 - R[0]]
    for k in range(n_layers):
        a = (R[k + 1] - r[:, k]) / (1 / r[:, k] - R[k + 1])
        down = down * f[:, k] * (1 + a) / (1 + f[:, k] ** 2 * a)
        net.append(down * (1 - R[k + 1]))
    net = np.stack(net, axis=2)
    shares = np.concatenate([net[:, :, :-1] - net[:, :, 1:], net[:, :, -1:]], axis=2)
    return 1 - R[0], shares / shares.sum(axis=2, keepdims=True)


def test_layer_optics_match_the_labellers_formulas(profiles):
    optics = TwoStreamOptics(WAVELENGTHS_NM)
    with torch.no_grad():
        rho, f2, minus_two_way = (t.permute(2, 1, 0).double().numpy()
                                  for t in optics.layer_optics(variables_first(model_layers(profiles))))
    r, f = reference_optics(profiles, WAVELENGTHS_NM)
    # co-albedos to float32 precision, even where r is 0.99
    np.testing.assert_allclose(rho, 1 - r, rtol=2e-5)
    np.testing.assert_allclose(f2, f ** 2, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(np.exp(minus_two_way), f2, rtol=1e-5, atol=1e-30)
    with torch.no_grad():
        opacity = optics.opacity(torch.from_numpy(minus_two_way).float()).double().numpy()
    np.testing.assert_allclose(opacity, -np.expm1(minus_two_way), rtol=1e-6)  # 1 - f2 to float32 rounding


@pytest.mark.parametrize("n_layers", [1, 5, 50])
def test_diffuse_coalbedo_and_absorbed_match_the_labellers_two_stream_sweeps(profiles, n_layers):
    subset = top_layers(profiles, n_layers)
    optics = TwoStreamOptics(WAVELENGTHS_NM)
    rho, f2, _, P, absorbed = diffuse_budget(optics, subset)
    with torch.no_grad():
        opacity = optics.opacity(optics.layer_optics(variables_first(model_layers(subset)))[2])
    _, denominators = optics.diffuse_coalbedo(rho, f2, 1 - soil_albedo_of(subset), opacity=opacity)
    top = optics.top_absorbed(P, optics.transmission(rho[:, :1], f2[:, :1], denominators[:, :1]))
    torch.testing.assert_close(top, absorbed[:, 0], rtol=1e-6, atol=1e-9)
    coalbedo, absorbed = P[:, 0].T.double().numpy(), absorbed.permute(2, 0, 1).double().numpy()
    np.testing.assert_allclose(absorbed.sum(axis=2), coalbedo, rtol=1e-5)
    shares = absorbed / absorbed.sum(axis=2, keepdims=True)
    reference_coalbedo, reference_shares = reference_diffuse_budget(*reference_optics(subset, WAVELENGTHS_NM),
                                                                    subset["soil_albedo"])
    np.testing.assert_allclose(coalbedo, reference_coalbedo, rtol=1e-4)
    assert np.all((coalbedo > 0) & (coalbedo < 1))
    # (W, 51): layers present, then absent (nothing absorbed), then the soil
    np.testing.assert_allclose(shares[:, :, :n_layers], reference_shares[:, :, :-1], rtol=2e-3, atol=2e-6)
    np.testing.assert_allclose(shares[:, :, -1], reference_shares[:, :, -1], rtol=2e-3, atol=2e-6)
    assert np.all(shares[:, :, n_layers:-1] <= 1e-6) and np.all(shares >= 0)
    np.testing.assert_allclose(shares.sum(axis=2), 1, atol=1e-6)


def test_diffuse_coalbedo_and_absorbed_limits():
    """A thick layer is semi-infinite and keeps everything, whatever the soil; a thin one shows the
    soil; soot darkens the visible; a brighter soil under a thin pack raises its albedo."""
    def budget(dz, soot=0.0, soil_albedo=0.2):
        profiles = {"dz": np.array([[dz]]), "ssa": np.array([[20.0]]), "density": np.array([[300.0]]),
                    "soot": np.array([[soot]]), "dust": np.array([[0.0]]), "soil_albedo": np.array([soil_albedo])}
        rho, _, _, P, absorbed = diffuse_budget(TwoStreamOptics(WAVELENGTHS_NM), profiles)
        shares = absorbed / absorbed.sum(dim=1, keepdim=True)
        return P[:, 0, 0].numpy(), shares[:, :, 0].numpy(), rho[:, 0, 0].numpy()

    thick, shares, rho = budget(50.0)
    np.testing.assert_allclose(thick, rho, rtol=1e-5)
    np.testing.assert_allclose(budget(50.0, soil_albedo=0.9)[0], thick, rtol=1e-6)
    np.testing.assert_allclose(shares[:, 0], 1, atol=1e-6)  # all absorbed in the layer, none by the soil
    for soil_albedo in (0.0, 0.2, 0.5):
        thin, shares, _ = budget(1e-6, soil_albedo=soil_albedo)
        np.testing.assert_allclose(thin, 1 - soil_albedo, rtol=1e-3)
        np.testing.assert_allclose(shares[:, -1], 1, atol=1e-3)  # all absorbed by the soil
    dark, bright = budget(0.02, soil_albedo=0.1)[0], budget(0.02, soil_albedo=0.4)[0]
    assert np.all(bright < dark) and dark[-1] - bright[-1] < dark[0] - bright[0]  # the soil shows most in the visible
    sooty, _, _ = budget(50.0, soot=1e-6)
    assert sooty[0] > 2 * thick[0] and sooty[-1] == pytest.approx(thick[-1], rel=0.05)


def test_crocus_rules_match_the_labellers():
    """Layer rules and light rules (utils.crocus_rules: behind the slope, Dumont's split where the
    forcing has no diffuse light and cos_zenith is known, NaN cos_zenith: no split) on random rows."""
    rng = np.random.default_rng(5)
    n = 400
    profiles = realistic_profiles(n, n_layers=50, seed=4, soil_and_zenith=True)
    profiles["density"][rng.random((n, 50)) < 0.1] = 900.0
    profiles["density"][:, 0][rng.random(n) < 0.2] = 850.0
    profiles["ssa"][rng.random((n, 50)) < 0.1] = 140.0
    profiles["cos_illum"][:80] = rng.uniform(-0.5, 0.003, 80)  # behind the slope, or just not
    profiles["diffuse_sw"][40:200] = 0.0  # no diffuse light: behind the slope too (40-80), or not
    profiles["cos_zenith"] = rng.uniform(0.0, 1.0, n)
    profiles["cos_zenith"][rng.random(n) < 0.25] = np.nan  # not known: the light as it is
    profiles["direct_sw"][profiles["direct_sw"] + profiles["diffuse_sw"] < 1] = 300.0  # lit rows
    layers, scalars, _, _ = validate_inputs(**profiles)
    expected_layers, expected_scalars = crocus_inputs(layers, scalars)
    got_layers, got_scalars = crocus_rules(*(torch.from_numpy(a) for a in model_inputs(profiles)))
    np.testing.assert_allclose(got_layers.numpy(), layer_tensor(*(expected_layers[k] for k in LAYER_VARIABLES)),
                               rtol=1e-6)
    got, expected = got_scalars.numpy(), np.stack([expected_scalars[k] for k in MODEL_SCALARS], axis=1)
    # Behind the slope the beam carries no flux: its cosine (0.0017 in the labeller, the diffuse
    # light's in the model) changes nothing.
    behind = scalars["cos_illum"] < COS_ILLUM_MIN
    split = ~behind & (scalars["diffuse_sw"] == 0) & np.isfinite(scalars["cos_zenith"])
    unsplit = ~behind & (scalars["diffuse_sw"] == 0) & np.isnan(scalars["cos_zenith"])
    assert behind.sum() >= 40 and split.sum() >= 60 and unsplit.sum() >= 20
    assert np.all(got[behind, DIRECT_SW] == 0) and np.all(got[unsplit, DIFFUSE_SW] == 0)
    assert np.all((got[split, DIFFUSE_SW] > 0) & (got[split, DIRECT_SW] >= 0))
    expected[behind, COS_ILLUM] = got[behind, COS_ILLUM]
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-4)  # W m-2 in float32


def test_crocus_rules_agree_on_both_layouts():
    """The (5, 50, B) layout of the physics gives the same rules as the (B, 5, 50) of model inputs."""
    profiles = realistic_profiles(30, n_layers=50, seed=6)
    profiles["density"][:, 3] = 900.0
    profiles["ssa"][:, 5] = 140.0
    layers, scalars = (torch.from_numpy(a) for a in model_inputs(profiles))
    scalars[:5, COS_ILLUM] = -0.1
    by_profile, scalars_1 = crocus_rules(layers, scalars)
    by_variable, scalars_0 = crocus_rules(variables_first(layers), scalars, dim=0)
    torch.testing.assert_close(variables_first(by_profile), by_variable, rtol=0, atol=0)
    torch.testing.assert_close(scalars_1, scalars_0, rtol=0, atol=0, equal_nan=True)
    assert by_variable.shape == (5, 50, 30) and by_variable.is_contiguous()
    torch.testing.assert_close(variables_first(layers), layers.permute(1, 2, 0), rtol=0, atol=0)


def test_layer_tensor_places_layers_and_zeroes_absent_ones():
    dz = np.array([[0.1, 0.2, np.nan]])
    ones = np.ones_like(dz)
    layers = layer_tensor(dz, 2 * ones, 3 * ones, 4 * ones, 5 * ones)
    assert layers.shape == (1, 5, 50) and layers.dtype == np.float32
    np.testing.assert_array_equal(layers[0, 0, :3], np.float32([0.1, 0.2, 0.0]))
    np.testing.assert_array_equal(layers[0, 1:, 1], [2, 3, 4, 5])
    assert not layers[0, :, 3:].any()


def test_shallow_wavelengths_see_the_top_layers_over_semi_infinite_snow(profiles):
    """The last n_shallow wavelengths on the top shallow_layers only: exact for packs that thin,
    and for deeper ones the same as the top layers with the last made semi-infinite (what passes
    below them is taken by the next layer)."""
    K = 6
    full, shallow = TwoStreamOptics(WAVELENGTHS_NM), TwoStreamOptics(WAVELENGTHS_NM, n_shallow=2, shallow_layers=K)
    assert [(w.stop - w.start, n) for w, n in shallow.groups] == [(3, 50), (2, K)]
    with torch.no_grad():
        soil_albedo = soil_albedo_of(profiles)
        thin = variables_first(model_layers(top_layers(profiles, K)))
        for got, expected in zip(shallow.diffuse_budget(thin, soil_albedo), full.diffuse_budget(thin, soil_albedo)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
        deep = variables_first(model_layers(profiles))
        coalbedo, absorbed = shallow.diffuse_budget(deep, soil_albedo)
        torch.testing.assert_close(coalbedo[:3], full.diffuse_budget(deep, soil_albedo)[0][:3])
        # over semi-infinite snow the soil, whatever its albedo, does not enter
        torch.testing.assert_close(coalbedo[3:], shallow.diffuse_budget(deep, 1 - soil_albedo)[0][3:], rtol=0, atol=0)
        semi_infinite = top_layers(profiles, K)
        semi_infinite["dz"] = semi_infinite["dz"].copy()
        semi_infinite["dz"][:, -1] = 1e3
        expected_coalbedo, expected = full.diffuse_budget(variables_first(model_layers(semi_infinite)), soil_albedo)
        torch.testing.assert_close(coalbedo[3:], expected_coalbedo[3:], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(absorbed[3:, :K - 1], expected[3:, :K - 1], rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(absorbed[3:, K - 1] + absorbed[3:, K], expected[3:, K - 1], rtol=1e-4, atol=1e-7)
        assert torch.all(absorbed[3:, K + 1:] == 0)  # deeper layers and the soil: nothing
        *_, top = shallow.group_budget(deep, soil_albedo, shallow.groups[1], budget=False)
        torch.testing.assert_close(top, absorbed[3:, 0])


def test_truncation_drops_the_layers_surfex_drops():
    """With truncation, at a wavelength on the band grid, the layers dropped are those of SURFEX's
    own truncation (the labeller's n_eff, ESTIMATE_EFFECTIVE_LAYER_NUMBER) but where the cumulative
    ke tau* is within float32 rounding of 30; the kept layers lie on a white floor: the pack's
    co-albedo is that of the kept layers over a soil of albedo 1, and nothing reaches the soil."""
    from preprocessing.tartes_labels import BAND_TABLE, _band_optics, _layer_terms
    from utils.crocus_rules import layer_rules

    profiles = realistic_profiles(300, n_layers=30, seed=9, soil_and_zenith=True)
    profiles["dz"][:100, 1] = 0.5  # a thick layer under the first: dropped in the near infrared
    # Crocus's layer rules first, as the models apply them
    profiles["ssa"], profiles["soot"], profiles["dust"] = layer_rules(profiles["ssa"], profiles["density"],
                                                                      profiles["soot"], profiles["dust"])
    optics = TwoStreamOptics(WAVELENGTHS_NM, truncation=True)
    layers = variables_first(model_layers(profiles))
    with torch.no_grad():
        rho, f2, optical_depth, P, absorbed = optics.group_budget(layers, soil_albedo_of(profiles), optics.groups[0])
        truncated = optics.truncated(optical_depth)
    kept = np.where(truncated.any(dim=1), truncated.int().argmax(dim=1), 30)  # (W, B): the layers kept
    ssa, soot, dust = profiles["ssa"], profiles["soot"], profiles["dust"]
    checked = 0
    for w, wavelength in enumerate(WAVELENGTHS_NM):
        band = int(np.argmin(np.abs(BANDS["wavelength"] - wavelength * 1e-9)))
        for row in range(300):
            terms, band_optics = np.empty((4, 30)), np.empty((8, 30))
            _layer_terms(30, profiles["dz"][row], ssa[row], profiles["density"][row], soot[row], dust[row], terms)
            n_eff = _band_optics(band, 30, terms, BAND_TABLE, band_optics, True)
            tau = np.cumsum(band_optics[1, :n_eff] * band_optics[6, :n_eff])
            if n_eff < 30:
                tau = np.append(tau, tau[-1] + 30.0)  # the crossing layer's, beyond 30
            near = np.isclose(tau, 30.0, rtol=1e-4).any()
            if not near:
                assert kept[w, row] == n_eff, (wavelength, row)
                checked += 1
    assert (kept < 30).sum() >= 150 and checked >= 1400
    # white floor: the kept layers alone over a soil of albedo 1
    for w in range(len(WAVELENGTHS_NM)):
        for row in np.flatnonzero(kept[w] < 30)[:20]:
            n = int(kept[w, row])
            alone = {k: (v[row:row + 1, :n] if v.ndim == 2 else v[row:row + 1]) for k, v in profiles.items()}
            alone["soil_albedo"] = np.ones(1)
            *_, P_alone, _ = diffuse_budget(TwoStreamOptics(WAVELENGTHS_NM), alone)
            np.testing.assert_allclose(P[w, 0, row], P_alone[w, 0, 0], rtol=1e-4, atol=1e-7)
            assert absorbed[w, n:, row].abs().max() < 1e-6
