"""Files only their owner may read: the secret key, the SQLite database and job queue, uploads waiting for
their import. They are created with mode 0600 from the start (os.open with the mode, never chmod after: a
file is never readable by others, not even for a moment), whatever the process's umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["PRIVATE_MODE", "create_private", "open_private"]

PRIVATE_MODE = 0o600


def create_private(path: Path, content: bytes = b"") -> bool:
    """Create `path` with mode 0600 holding `content`, unless it exists; True when it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    return True


def open_private(path: Path) -> BinaryIO:
    """A new file at `path` (an existing one is replaced), mode 0600, open for writing bytes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)  # an existing file keeps its old mode through O_CREAT: make it private too
    return os.fdopen(fd, "wb")
