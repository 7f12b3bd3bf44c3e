"""Files this service writes for people: private to their owner whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def private_new_file(dest: Path) -> BinaryIO:
    """`dest` created for writing, readable by its owner only whatever the umask (a recording
    is personal data); FileExistsError when it exists."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def write_private_file(path: Path, data: bytes, *, sync_folder: bool = False) -> None:
    """`data` in a new file `path` (`0600`), on disk before this returns; with `sync_folder`,
    its folder's entry too. FileExistsError when it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if sync_folder:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
