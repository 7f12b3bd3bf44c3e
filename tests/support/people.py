"""Real OS users for the tests of who may do what: `sato` and `suzuki` (supervisors, in the
API's group) and `mallory` (no role, not in the group). Created once, as root."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import tempfile
from pathlib import Path

GROUP = "ivr-sup"
SUPERVISORS = ("sato", "suzuki")
OUTSIDER = "mallory"


def ensure_people() -> None:
    """Create the group and the users unless they exist (needs root, as CI and the dev
    machine run the suite)."""
    if os.geteuid() != 0:
        raise RuntimeError("the tests of OS users need root, to create sato, suzuki, mallory")
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    for name in (*SUPERVISORS, OUTSIDER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
            )
    for name in SUPERVISORS:
        if name not in grp.getgrnam(GROUP).gr_mem:
            subprocess.run(["usermod", "-aG", GROUP, name], check=True)


# Every user may enter these folders (pytest's own tmp_path is root's alone); the session
# removes them at its end (tests/conftest.py).
PUBLIC = Path(tempfile.gettempdir()) / f"ivr-tests-{os.getpid()}"


def public_dir() -> Path:
    """A new folder every user can enter."""
    PUBLIC.mkdir(mode=0o755, exist_ok=True)
    PUBLIC.chmod(0o755)
    path = Path(tempfile.mkdtemp(dir=PUBLIC))
    path.chmod(0o755)
    return path


def own_dir(base: Path, user: str) -> Path:
    """A folder in `base` that `user` owns (for the files that user's commands write)."""
    path = base / user
    path.mkdir(exist_ok=True)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    return path
