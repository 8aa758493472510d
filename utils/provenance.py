"""What a written file records about where it comes from."""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The project's git commit, when it runs from a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


PACKAGES = ("numpy", "torch", "numba", "tartes", "snowtools", "xarray", "netCDF4")


def provenance() -> dict:
    """What every written file records: the project's version and git commit, and the versions of
    the packages that compute it (read from their metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    import utils

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"tartes_emulator": utils.__version__, "git_commit": git_commit(),
            **{name: installed(name) for name in PACKAGES}}
