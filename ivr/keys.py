"""The service's secret key, and the per-call tokens derived from it.

The key is 32 random bytes in `<data_dir>/service.key`, made at the first start, readable by
the service's user alone; every worker of `ivr serve --workers` reads the same file. A call's
token is an HMAC of its call id: the `inbound` script gives it to the dialplan
(`IVR_TOKEN`), and the `hangup` and `harassment` scripts must present it. Anyone who can reach
the FastAGI port but did not receive the call from Asterisk cannot end it or charge it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ivr.files import write_private_file

KEY_FILE = "service.key"
KEY_BYTES = 32


class KeyFileError(Exception):
    """The key file is unreadable, the wrong size, or readable by others."""


def service_key(data_dir: Path) -> bytes:
    """The key, created on first use: written to a temporary file and linked into place, so a
    second worker starting at the same moment reads either nothing or the whole key."""
    path = data_dir / KEY_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = data_dir / f".{KEY_FILE}.{secrets.token_hex(6)}"
    write_private_file(tmp, secrets.token_bytes(KEY_BYTES))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another worker was first: use its key
    finally:
        tmp.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    st = path.stat()
    if st.st_mode & 0o077:
        raise KeyFileError(f"{path} is readable by others: chmod 600 it")
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} is not a key ({len(key)} bytes, not {KEY_BYTES})")
    return key


class CallTokens:
    """Tokens for call ids, under one purpose of the service key."""

    def __init__(self, key: bytes) -> None:
        self._key = hmac.new(key, b"ivr-guard agi call token", hashlib.sha256).digest()

    def token(self, call_id: str) -> str:
        return hmac.new(self._key, call_id.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, call_id: str, token: str) -> bool:
        return hmac.compare_digest(self.token(call_id), token)
