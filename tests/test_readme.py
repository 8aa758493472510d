"""The README and docs/ as a newcomer meets them: the README's Python snippets run as written, in
order, from an empty namespace; the README stays short; every relative link resolves inside the
repository; and no file of the repository points at material outside it."""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from models import FILE_FORMAT

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHIPPED = REPO / "data" / "emulator.pt"
MAX_README_LINES = 300
# Written in two pieces so that this file does not name what it looks for.
OUTSIDE_REFERENCES = ("shared" + "/reference", ".." + "/shared")


def python_snippets() -> list[str]:
    """The README's fenced ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def documents() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Targets of Markdown links and images that are not URLs nor anchors within the page."""
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [t for t in targets if not re.match(r"^(https?:|mailto:|#)", t)]


def test_the_readme_has_the_python_snippets():
    snippets = python_snippets()
    assert any("Emulator.load" in s for s in snippets) and any("energy_budget(dz" in s for s in snippets)
    assert any("torch.jit.load" in s for s in snippets) and any("onnxruntime" in s for s in snippets)
    for snippet in snippets:
        compile(snippet, "README.md", "exec")


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines, more than {MAX_README_LINES}"


@pytest.mark.skipif(not SHIPPED.is_file() or torch.load(SHIPPED, weights_only=True).get("format") != FILE_FORMAT,
                    reason="data/emulator.pt is not an emulator of the current format")
def test_every_python_snippet_runs_as_written(tmp_path, monkeypatch):
    """From an empty namespace, in the README's order, in a folder holding what the README's
    commands make: data/emulator.pt and the exports of `python export.py --out export/`."""
    import export

    assert export.main(["--model", str(SHIPPED), "--out", str(tmp_path / "export")]) in (0, None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "emulator.pt").symlink_to(SHIPPED)
    names = {"__name__": "readme"}
    for snippet in python_snippets():
        exec(compile(snippet, "README.md", "exec"), names)

    budget, labels = names["budget"], names["labels"]
    total = budget.albedo + np.nansum(budget.absorbed, axis=1) + budget.soil
    np.testing.assert_allclose(total, 1, atol=1e-5)
    assert np.all((labels.albedo > 0.5) & (labels.albedo < 1))
    # the emulator follows the labels, and the exports follow the emulator
    np.testing.assert_allclose(budget.albedo, labels.albedo, atol=0.02)
    np.testing.assert_allclose(np.asarray(names["albedo"]), budget.albedo, atol=1e-5)


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_inside_the_repository(document):
    broken = []
    for target in relative_links(document.read_text()):
        path = (document.parent / target.split("#")[0]).resolve()
        if not path.exists() or not path.is_relative_to(REPO):
            broken.append(target)
    assert not broken, f"{document.relative_to(REPO)}: links that do not resolve in the repository: {broken}"


def repository_files() -> list[Path]:
    """Tracked files and untracked files that git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    return [REPO / name for name in sorted(set(listed.split("\0"))) if name and (REPO / name).is_file()]


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout: the repository's files are unknown")
def test_no_file_points_outside_the_repository():
    offenders = []
    for path in repository_files():
        content = path.read_bytes()
        if b"\0" in content:  # binary: arrays, images, model files
            continue
        text = content.decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(reference in line for reference in OUTSIDE_REFERENCES):
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert not offenders, ("these lines point at reference material outside the repository (cite docs/ "
                           f"instead): {', '.join(offenders)}")
