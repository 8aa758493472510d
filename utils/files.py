"""The one way the project writes a file: under a temporary name beside it, renamed when complete.

A reader (or a resumed run) sees a file whole or not at all, whatever interrupts the writer; the
temporary names `<name>.tmp-<pid>` say which process left them.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextmanager
def written(path: str | Path):
    """Yields a temporary path to write `path` through (a file, or a directory); on success it
    replaces `path`, on an exception it is removed and `path` is left as it was."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with written(path) as tmp:
        tmp.write_text(text)


def save_json(obj, path: str | Path) -> None:
    write_text(path, json.dumps(obj, indent=1, default=str))


def copy_file(source: str | Path, path: str | Path) -> None:
    with written(path) as tmp:
        shutil.copyfile(source, tmp)


def save_torch(obj, path: str | Path) -> None:
    import torch  # only the writers of model files need torch

    with written(path) as tmp:
        torch.save(obj, tmp)
