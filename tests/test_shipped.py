"""The shipped emulator, data/emulator.pt, loaded as users load it: against the labeller on realistic
profiles it was not trained on, and against known physics."""
from pathlib import Path

import numpy as np
import pytest

from benchmarks.profiles import realistic_profiles
from models import Emulator
from preprocessing.tartes_labels import broadband_albedo

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "emulator.pt"
pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


@pytest.fixture(scope="module")
def emulator():
    return Emulator.load(SHIPPED)


def profile(ssa: float, dust: float, cos_sza: float, direct_sw: float = 500.0, diffuse_sw: float = 50.0) -> dict:
    """One pack of 20 layers of 5 cm at 300 kg m-3, as the labeller and Emulator.predict take it."""
    layer = np.ones((1, 20))
    return dict(dz=0.05 * layer, ssa=ssa * layer, density=300 * layer, soot=0 * layer, dust=dust * layer,
                cos_sza=np.array([cos_sza]), direct_sw=np.array([direct_sw]), diffuse_sw=np.array([diffuse_sw]))


def test_shipped_emulator_agrees_with_the_labeller(emulator):
    profiles = realistic_profiles(1024, n_layers=50, seed=7)
    error = np.abs(emulator.predict(**profiles) - broadband_albedo(**profiles))
    # measured: MAE 0.00017, p99 0.0008, max 0.0022
    assert error.mean() < 5e-4 and np.quantile(error, 0.99) < 3e-3


def test_shipped_emulator_follows_the_physics(emulator):
    fresh, dusty_old = (emulator.predict(**profile(ssa, dust, 0.5))[0] for ssa, dust in ((60, 0), (5, 1e-4)))
    assert 0 < dusty_old < fresh < 1 and fresh - dusty_old > 0.1
    # under direct light, albedo rises as the sun goes down
    by_height = [emulator.predict(**profile(20, 1e-7, mu, diffuse_sw=5.0))[0] for mu in (0.9, 0.7, 0.5, 0.3, 0.15)]
    assert np.all(np.diff(by_height) > 0)
