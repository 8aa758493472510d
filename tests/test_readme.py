"""Every Python snippet of the README runs, on the shipped model and realistic profiles."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from preprocessing.profile_sampler import realistic_profiles
from models import FILE_FORMAT
from tests.conftest import model_inputs

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "emulator.pt"


def python_snippets() -> list[str]:
    """The README's indented code blocks that are Python (not shell commands, not Fortran, not tables)."""
    blocks, block = [], []
    for line in (REPO / "README.md").read_text().splitlines() + [""]:
        if line.startswith("    ") or (block and not line.strip()):
            block.append(line[4:] if line.startswith("    ") else "")
            continue
        if block:
            blocks.append("\n".join(block).strip("\n"))
        block = []
    python = re.compile(r"^(from |import |model = |session = )")
    return [re.sub(r"^ {2}", "", b, flags=re.M) if b.startswith("  ") else b for b in blocks if python.match(b.lstrip())]


def test_the_readme_has_the_python_snippets():
    snippets = python_snippets()
    assert any("Emulator.load" in s for s in snippets) and any("energy_budget(dz" in s for s in snippets)
    assert any("torch.jit.load" in s for s in snippets)


@pytest.mark.skipif(not SHIPPED.is_file() or torch.load(SHIPPED, weights_only=True).get("format") != FILE_FORMAT,
                    reason="data/emulator.pt is not an emulator of the current format")
def test_every_python_snippet_runs(tmp_path, monkeypatch):
    import export

    assert export.main(["--model", str(SHIPPED), "--out", str(tmp_path / "export")]) in (0, None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "emulator.pt").symlink_to(SHIPPED)
    profiles = realistic_profiles(64, n_layers=50, seed=5)
    layers, illumination = model_inputs(profiles)
    names = {**profiles, "np": np, "torch": torch, "layers": layers, "illumination": illumination}
    for snippet in python_snippets():
        code = snippet.replace("...", ", ".join(("dz", "ssa", "density", "soot", "dust", "cos_illum", "direct_sw",
                                                 "diffuse_sw")))
        if "onnxruntime" in code:
            code = "import onnxruntime\n" + code
        exec(compile(code, "README.md", "exec"), names)
    assert np.all((names["albedo"] > 0) & (names["albedo"] < 1))
