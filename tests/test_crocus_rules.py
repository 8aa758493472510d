"""SURFEX's clean-up regime (utils.crocus_rules.cleanup_rows): the profiles whose labels depend on the
fluxes themselves, which the models are not trained on and `Emulator` hands to the labeller."""
import numpy as np
import pytest

from preprocessing.tartes_labels import (BAND_TABLE, C_TIMES_SSA, G_SPAN, GINF, W_STAR, Y, _band_optics, _layer_terms,
                                         energy_budget)
from tests.conftest import extreme_inputs, make_emulator
from tests.test_tartes_labels import YARDSTICK, inputs
from utils.crocus_rules import CLEANUP_BANDS, cleanup_bound, cleanup_rows, layer_rules
from utils.domain import model_inputs


@pytest.fixture(scope="module")
def yardstick():
    with np.load(YARDSTICK) as cases:
        return inputs({name: cases[name] for name in cases.files})


def flux_dependent(profiles) -> np.ndarray:
    """(N,) bool: rows whose albedo changes by more than 1e-8 when both fluxes are scaled by 1e-3 or 1e3."""
    albedo = energy_budget(**profiles).albedo
    change = np.zeros(len(albedo))
    for factor in (1e-3, 1e3):
        scaled = {**profiles, "direct_sw": profiles["direct_sw"] * factor, "diffuse_sw": profiles["diffuse_sw"] * factor}
        change = np.maximum(change, np.nan_to_num(np.abs(energy_budget(**scaled).albedo - albedo)))
    return change > 1e-8


def layers_of(profiles):
    return [profiles[name] for name in ("ssa", "density", "soot", "dust")]


def test_every_flux_dependent_profile_is_flagged(yardstick):
    """On the yardstick, which holds very dark surfaces: the labels that depend on the fluxes are all
    flagged, and flagging is rare beyond them (a flagged layer deep in the pack may see too little light)."""
    flagged, dependent = cleanup_rows(*layers_of(yardstick)), flux_dependent(yardstick)
    assert dependent.sum() >= 50  # the test has something to find
    assert not (dependent & ~flagged).any(), np.flatnonzero(dependent & ~flagged)
    assert flagged.sum() <= 2 * dependent.sum()
    extreme = extreme_inputs(400, seed=5)
    assert not (flux_dependent(extreme) & ~cleanup_rows(*layers_of(extreme))).any()


def test_flags_a_non_positive_single_scattering_albedo(yardstick):
    """The rule agrees with the labeller's own optics: a flagged row has a present layer whose
    single-scattering albedo w (from w* of its delta-Eddington optics) is <= 0 in a band up to 1300 nm."""
    flagged = cleanup_rows(*layers_of(yardstick))
    ssa, soot, dust = layer_rules(yardstick["ssa"], yardstick["density"], yardstick["soot"], yardstick["dust"])
    n_bands = len(CLEANUP_BANDS["mae_dust"])
    for row in np.flatnonzero(flagged)[:40].tolist() + np.flatnonzero(~flagged)[:40].tolist():
        n = int((~np.isnan(yardstick["dz"][row])).sum())
        terms, optics = np.empty((4, n)), np.empty((8, n))
        _layer_terms(n, yardstick["dz"][row], ssa[row], yardstick["density"][row], soot[row], dust[row], terms)
        lowest = np.inf
        for b in range(n_bands):
            # without truncation: every layer's optics (the truncation drops layers, not the rule)
            _band_optics(b, n, np.vstack([terms[:3], np.zeros((1, n))]), BAND_TABLE, optics, True)
            table = BAND_TABLE[:, b]
            w_star, g = optics[W_STAR], table[GINF] - table[G_SPAN] * np.exp(-table[Y] * table[C_TIMES_SSA] * terms[0])
            w = w_star / (1 - g * g + g * g * w_star)  # w* = w (1 - g^2) / (1 - g^2 w), inverted
            lowest = min(lowest, w.min())
        assert (lowest <= 0) == flagged[row], (row, lowest)


def test_bound_keeps_every_flagged_layer():
    """cleanup_bound never clears a profile cleanup_rows flags, float32 inputs included."""
    profiles = extreme_inputs(3000, seed=11)
    flagged = cleanup_rows(*layers_of(profiles))
    soot_weight, dust_weight, threshold = cleanup_bound()
    ssa, soot, dust = layer_rules(profiles["ssa"], profiles["density"], profiles["soot"], profiles["dust"])
    bound = np.nan_to_num(soot_weight * soot.astype(np.float32) + dust_weight * dust.astype(np.float32)
                          >= threshold * ssa.astype(np.float32)).any(axis=1)
    assert flagged.any() and not (flagged & ~bound).any()
    from utils import two_stream
    layers, _ = model_inputs(profiles)
    candidates = two_stream.cleanup_candidates(layers, soot_weight, dust_weight, threshold)
    assert not (flagged & ~candidates).any()


@pytest.mark.filterwarnings("ignore:.*outside the input domain")  # an untrained model on the whole yardstick
def test_emulator_gives_the_labels_in_the_regime(tmp_path, yardstick, monkeypatch):
    """Emulator's outputs on flagged rows are the labeller's, on both paths (the compiled physics of
    CPUs and the torch form of GPUs); the other rows are the model's; flagged rows are not outside
    the domain."""
    emulator = make_emulator({}, tmp_path / "model.pt")
    labels = energy_budget(**yardstick)
    flagged = cleanup_rows(*layers_of(yardstick))
    lit = labels.albedo < 1  # NaN (no snow) and 1 (dark) are set, not computed
    assert (flagged & lit).sum() >= 50
    for path in ("compiled", "torch"):
        if path == "torch":
            monkeypatch.delattr(type(emulator.model), "compiled_physics")
        out = emulator.energy_budget(**yardstick)
        for name in ("albedo", "absorbed", "soil"):
            np.testing.assert_allclose(getattr(out, name)[flagged], getattr(labels, name)[flagged], rtol=0, atol=1e-12)
        assert np.abs(out.albedo - labels.albedo)[~flagged & lit].mean() > 1e-3  # the untrained model's
        np.testing.assert_array_equal(emulator.predict(**yardstick)[flagged], labels.albedo[flagged])
    assert not emulator.outside_domain(**yardstick)[flagged].any()
