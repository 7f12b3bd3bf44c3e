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
