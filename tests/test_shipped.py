"""The shipped emulator, data/emulator.pt, loaded as users load it: its energy budget against the
labeller's on realistic profiles it was not trained on (soil albedos of ISBA's range, forcing
without diffuse light), and against known physics. Fails, with the reason, while the shipped file
is of another format than models.FILE_FORMAT: a skipped test would hide a stale model."""
from pathlib import Path

import numpy as np
import pytest
import torch

from preprocessing.profile_sampler import realistic_profiles
from models import FILE_FORMAT, Emulator
from preprocessing.tartes_labels import energy_budget

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "emulator.pt"
pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


def shipped_format() -> str | None:
    try:
        saved = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    except Exception:  # not there, or not a torch file
        return None
    return saved.get("format") if isinstance(saved, dict) else None


@pytest.fixture(scope="module")
def emulator():
    found = shipped_format()
    if found != FILE_FORMAT:
        pytest.fail(f"{SHIPPED} is of format {found or 'unknown (missing or unreadable)'}, not {FILE_FORMAT}: a stale "
                    "model; ship one of the current format (python main.py --ship true)")
    emulator = Emulator.load(SHIPPED)
    if not emulator.model.BUDGET:
        pytest.fail(f"{SHIPPED}: model {emulator.model_name!r} gives the albedo only; the shipped model must give "
                    "the energy budget")
    return emulator


def profile(ssa: float, dust: float, cos_illum: float, direct_sw: float = 500.0, diffuse_sw: float = 50.0,
            dust_top: float | None = None) -> dict:
    """One pack of 20 layers of 5 cm at 300 kg m-3, as the labeller and the emulator take it; dust
    in every layer, or `dust_top` in the top layer only."""
    layer = np.ones((1, 20))
    dust_profile = dust * layer
    if dust_top is not None:
        dust_profile[0, 0] = dust_top
    return dict(dz=0.05 * layer, ssa=ssa * layer, density=300 * layer, soot=0 * layer, dust=dust_profile,
                cos_illum=np.array([cos_illum]), direct_sw=np.array([direct_sw]), diffuse_sw=np.array([diffuse_sw]))


def test_shipped_emulator_agrees_with_the_labeller(emulator):
    profiles = realistic_profiles(1024, n_layers=50, seed=7, soil_and_zenith=True)  # soil albedos 0.1-0.35
    no_diffuse = np.arange(1024) % 5 == 0  # a fifth without diffuse light: Crocus splits it on cos_zenith
    profiles["direct_sw"][no_diffuse] += profiles["diffuse_sw"][no_diffuse]
    profiles["diffuse_sw"][no_diffuse] = 0.0
    mine, label = emulator.energy_budget(**profiles), energy_budget(**profiles)
    albedo = np.abs(mine.albedo - label.albedo)
    top = np.abs(mine.absorbed[:, 0] - label.absorbed[:, 0])
    profile_error = np.nansum(np.abs(mine.absorbed - label.absorbed), axis=1) + np.abs(mine.soil - label.soil)
    assert albedo.mean() <= 5e-4 and np.quantile(albedo, 0.99) < 3e-3, (albedo.mean(), np.quantile(albedo, 0.99))
    assert top.mean() <= 2e-3, top.mean()
    assert profile_error.mean() <= 5e-3, profile_error.mean()
    assert albedo[no_diffuse].mean() <= 1e-3, albedo[no_diffuse].mean()
    # Energy conserved, nothing absorbed in absent layers.
    np.testing.assert_allclose(mine.albedo + np.nansum(mine.absorbed, axis=1) + mine.soil, 1, atol=1e-5)
    np.testing.assert_array_equal(np.isnan(mine.absorbed), np.isnan(profiles["dz"]))


def test_shipped_emulator_takes_the_soil_albedo(emulator):
    """Thin packs, where the ground shows, over soils of albedo 0.05 to 0.5 (the wide-range data's
    span): the labeller's albedo, energy budget included, whatever the soil."""
    profiles = realistic_profiles(512, n_layers=2, seed=8)
    profiles["dz"] = profiles["dz"] / 4  # about 2 cm of snow
    labels = {}
    for soil_albedo in (0.05, 0.2, 0.5):
        mine, labels[soil_albedo] = (budget(**profiles, soil_albedo=soil_albedo)
                                     for budget in (emulator.energy_budget, energy_budget))
        albedo = np.abs(mine.albedo - labels[soil_albedo].albedo)
        soil = np.abs(mine.soil - labels[soil_albedo].soil)
        assert albedo.mean() <= 1e-3 and np.quantile(albedo, 0.99) < 5e-3, (soil_albedo, albedo.mean())
        assert soil.mean() <= 2e-3, (soil_albedo, soil.mean())
    assert np.mean(labels[0.5].albedo - labels[0.05].albedo) > 0.02  # the soil matters in these packs (0.04)


def test_shipped_emulator_splits_forcing_without_diffuse_light(emulator):
    """No diffuse light in the forcing and cos_zenith given: Crocus's split of the shortwave on
    cos_zenith (Dumont), which moves the albedo by several hundredths; the emulator follows it."""
    profiles = realistic_profiles(256, n_layers=50, seed=9, soil_and_zenith=True)
    profiles["direct_sw"] = profiles["direct_sw"] + profiles["diffuse_sw"]
    profiles["diffuse_sw"] = np.zeros(256)
    label, all_direct = energy_budget(**profiles).albedo, energy_budget(**profiles | {"cos_zenith": None}).albedo
    assert np.abs(label - all_direct).mean() > 0.01  # the rule matters
    error = np.abs(emulator.predict(**profiles) - label)
    assert error.mean() <= 1e-3 and np.quantile(error, 0.99) < 5e-3, error.mean()


def test_shipped_emulator_follows_the_physics(emulator):
    fresh, dusty_old = (emulator.predict(**profile(ssa, dust, 0.5))[0] for ssa, dust in ((60, 0), (5, 1e-4)))
    assert 0 < dusty_old < fresh < 1 and fresh - dusty_old > 0.1
    # under direct light, albedo rises as the sun goes down
    by_height = [emulator.predict(**profile(20, 1e-7, mu, diffuse_sw=5.0))[0] for mu in (0.9, 0.7, 0.5, 0.3, 0.15)]
    assert np.all(np.diff(by_height) > 0), by_height
    # dust at the surface moves the absorption to the top layer, as in the labeller
    clean, dusty = (emulator.energy_budget(**profile(20, 1e-8, 0.5, dust_top=top)) for top in (1e-8, 1e-4))
    assert dusty.absorbed[0, 0] > clean.absorbed[0, 0] + 0.01
    assert dusty.absorbed[0, 0] / np.nansum(dusty.absorbed[0]) > clean.absorbed[0, 0] / np.nansum(clean.absorbed[0])
    label = energy_budget(**profile(20, 1e-8, 0.5, dust_top=1e-4))
    assert dusty.absorbed[0, 0] == pytest.approx(label.absorbed[0, 0], abs=0.01)
