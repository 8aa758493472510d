"""benchmarks/yardstick.py, the emulator against SURFEX's own outputs, on the tiny run's model
(tests/conftest.py `tiny_run`): its figures are the emulator's errors on the yardstick's rows with
light, broken down by the yardstick's tags; the dark rows are checked exactly; the labeller's
sanity line."""
import numpy as np
import pytest

from benchmarks import yardstick
from models import Emulator
from utils.report import CATEGORIES

pytestmark = pytest.mark.filterwarnings("ignore:.*outside the input domain:UserWarning")


@pytest.fixture(scope="module")
def cases():
    return yardstick.load_cases()


def test_figures_are_the_emulators_errors_against_surfex(tiny_run, cases, tmp_path, capsys):
    model = tiny_run / "best.pt"
    report = yardstick.main(["--model", str(model), "--out", str(tmp_path / "yardstick.md")])
    printed = capsys.readouterr().out

    lit = ~cases["night"]
    budget = Emulator.load(model).energy_budget(**{name: cases[name] for name in yardstick.INPUTS})
    albedo_error = budget.albedo[lit] - cases["surfex_albedo"][lit]
    absorbed_error = np.nan_to_num(budget.absorbed[lit] - cases["surfex_absorbed"][lit])
    profile = np.abs(absorbed_error).sum(axis=1) + np.abs(budget.soil[lit] - cases["surfex_soil"][lit])
    overall = report["overall"]
    assert overall["n"] == lit.sum() == 2424
    assert overall["albedo"]["mae"] == pytest.approx(np.abs(albedo_error).mean(), rel=1e-12)
    assert overall["albedo"]["p99_abs_error"] == pytest.approx(np.percentile(np.abs(albedo_error), 99), rel=1e-12)
    assert overall["top_layer"]["mae"] == pytest.approx(np.abs(absorbed_error[:, 0]).mean(), rel=1e-12)
    assert overall["profile"]["mean"] == pytest.approx(profile.mean(), rel=1e-12)

    # By the yardstick's tags: behind the slope over no diffuse light, impurity kinds 0-4.
    assert list(report["by"]) == list(yardstick.BREAKDOWNS)
    light = report["by"]["light_rule"]["bins"]
    assert [b["n"] for b in light] == [lit.sum() - 350 - 308, 350, 308]
    kinds = report["by"]["impurity_kind"]["bins"]
    assert [b["label"] for b in kinds] == list(CATEGORIES["impurity_kind"])
    assert [b["n"] for b in kinds] == np.bincount(cases["impurity_kind"][lit], minlength=5).tolist()
    dusty = cases["impurity_kind"][lit] == 2
    assert kinds[2]["albedo"]["mae"] == pytest.approx(np.abs(albedo_error[dusty]).mean(), rel=1e-12)
    for name in ("soil_albedo", "n_layers"):
        assert sum(b["n"] for b in report["by"][name]["bins"]) == lit.sum(), name

    assert "| surface dust event | 586 |" in printed and "## by soil albedo (-)" in printed
    assert (tmp_path / "yardstick.md").read_text() in printed
    assert "dark rows (night, 76): the emulator gives exactly albedo 1 and nothing absorbed in 76 of them\n" in printed
    assert "largest albedo MAE of a category" in printed
    sanity = next(line for line in printed.splitlines() if line.startswith("sanity: the labeller"))
    largest = float(sanity.split("soil: ")[1].split()[0])
    assert largest < 1e-9  # the labeller is SURFEX: the figures are the emulator's own


def test_dark_rows_are_checked_exactly(cases):
    dark = np.flatnonzero(cases["night"])
    n = len(cases["night"])
    present = ~np.isnan(cases["dz"])
    outputs = {"albedo": np.ones(n), "absorbed": np.where(present, 0.0, np.nan), "soil": np.zeros(n)}
    assert yardstick.dark_rows_exact(outputs, cases).all()
    shallow = np.flatnonzero(present[dark].sum(axis=1) < 50)[0]
    outputs["albedo"][dark[0]] = 1 - 1e-7
    outputs["absorbed"][dark[1], 0] = 1e-9
    outputs["soil"][dark[2]] = 1e-9
    outputs["absorbed"][dark[shallow], 49] = 0.0  # below the pack: NaN
    assert np.flatnonzero(~yardstick.dark_rows_exact(outputs, cases)).tolist() == sorted({0, 1, 2, shallow})


def test_an_old_model_file_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        yardstick.main(["--model", str(tmp_path / "nosuch.pt")])
    assert exit_status.value.code == 2
    assert f"error: {tmp_path / 'nosuch.pt'}: no emulator file" in capsys.readouterr().err
