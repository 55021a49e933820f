"""Content hashes of files: what the registry records of a version's files, and what names a
served model's digest and a converted base."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
