"""Several layers as one /opt, merged as Lambda merges a function's layers: in order, a file of
a later layer replacing the same path of an earlier one, folders merged.

Lambda extracts each layer into /opt; here the merge is a folder the sandbox owns, made of
hard links to the layers' files where the filesystem allows (a copy otherwise), so it costs
little and keeps each file's mode. Symbolic links stay links, pointing where they pointed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from .errors import SandboxConfigError

__all__ = ["merge_layers"]


def merge_layers(layers: Sequence[Path], into: Path) -> Path:
    """Merge ``layers`` (first to last) into the empty folder ``into``; returns ``into``."""
    for layer in layers:
        if not layer.is_dir():
            raise SandboxConfigError(f"layer {layer} is not a directory")
    for layer in layers:
        for folder, dirs, files in os.walk(layer):
            source = Path(folder)
            target = into / source.relative_to(layer)
            _make_dir(target)
            for name in dirs:
                if (source / name).is_symlink():  # os.walk lists it as a folder, never enters it
                    _place(source / name, target / name)
            for name in files:
                _place(source / name, target / name)
    return into


def _make_dir(target: Path) -> None:
    """A folder where an earlier layer may have put a file or a link of that name."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    target.mkdir(exist_ok=True)


def _place(source: Path, target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)  # a later layer's file replaces an earlier layer's folder
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: a copy, with its mode
        shutil.copy2(source, target)
