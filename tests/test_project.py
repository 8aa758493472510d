"""The repository as a newcomer meets it: its layering (utils/ imports nothing of the stages above
it, `import models` loads no numba, no plot script imports the preprocessing pipeline), what git
ignores, the install notes of requirements.txt, and the reasons of skipped tests in the default
test output."""
import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The project's modules and packages above utils/
STAGES = {"main", "predict", "export", "models", "features", "dataset", "training", "preprocessing", "plot",
          "benchmarks", "tests"}


def imported_modules(path: Path) -> set[str]:
    """The absolute imports of a Python file, wherever they stand (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_utils_imports_nothing_above_it():
    for path in sorted((REPO / "utils").glob("*.py")):
        above = sorted(name for name in imported_modules(path) if name.split(".")[0] in STAGES)
        assert not above, f"utils/{path.name} imports {above}"


def test_plot_scripts_do_not_import_the_preprocessing_pipeline():
    """The plots read Crocus files through preprocessing.crocus_files, not the 900-line pipeline."""
    for path in sorted((REPO / "plot").glob("*.py")):
        assert "preprocessing.preprocess" not in imported_modules(path), f"plot/{path.name}"


def test_import_models_and_export_load_no_numba():
    """The API users load (models.Emulator) and the exporter run without the compiled labeller:
    numba is loaded only where the compiled physics runs (utils.two_stream)."""
    code = "import sys, models, export; print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_git_ignores_what_the_commands_write():
    ignored = subprocess.run(["git", "check-ignore", "export/emulator.ts", "logs/preprocess-1.log", "runs/x/best.pt",
                              "cache/embedded/shards"], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == ["export/emulator.ts", "logs/preprocess-1.log", "runs/x/best.pt",
                                      "cache/embedded/shards"]


def test_requirements_tell_a_public_user_how_to_get_the_cpu_wheel():
    text = (REPO / "requirements.txt").read_text()
    assert "project machines" not in text
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "torch==2.13.0" in text.splitlines()


def test_skipped_tests_say_why_in_the_default_output(tmp_path):
    """Without gfortran, `python -m pytest -q` shows why the Fortran tests are skipped, not only "s"
    (pytest.ini: -rs)."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fortran.py",
                             "-k", "a_missing_weights_file"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PATH": str(tmp_path)}, timeout=300)  # no gfortran on this PATH
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED [1] tests/test_fortran.py" in result.stdout and "gfortran not found" in result.stdout, result.stdout
