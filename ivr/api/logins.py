"""Logins for the web console: a password (argon2) and a one-time code (TOTP) per supervisor,
kept in `<data_dir>/logins.json` (0600); sessions are random tokens held in memory.

Who may log in is decided here; what they may do is not: the role still comes from the
service's `[supervisors]`, through the same authorization layer as the Unix socket's users.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.files import write_private_file

FILE = "logins.json"
MAX_FAILURES = 5  # then the name is locked for LOCKOUT
LOCKOUT = timedelta(minutes=5)
MIN_PASSWORD = 12


class LoginError(Exception):
    """Why a login was refused; the same words for a wrong name, password or code."""


@dataclass(frozen=True)
class Session:
    name: str
    expires_at: datetime


class Logins:
    def __init__(self, path: Path, session_length: timedelta) -> None:
        self._path = path
        self._hasher = PasswordHasher()
        self._length = session_length
        self._sessions: dict[str, Session] = {}
        self._failures: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    @cached_property
    def _dummy(self) -> str:
        """A hash to check an unknown name's password against (made at the first login, not
        at every start)."""
        return self._hasher.hash(secrets.token_hex(16))

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{self._path}: not a logins file")
        return data

    def add(self, name: str, password: str) -> str:
        """Set `name`'s password and a new one-time-code secret; the otpauth:// URI to scan."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
        with self._lock:
            data = self._load()
            secret = pyotp.random_base32()
            data[name] = {"hash": self._hasher.hash(password), "totp": secret}
            tmp = self._path.with_name(f".{FILE}.{secrets.token_hex(4)}")
            write_private_file(tmp, json.dumps(data, indent=1).encode(), sync_folder=True)
            tmp.replace(self._path)
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="ivr-guard")

    def login(self, name: str, password: str, code: str, now: datetime) -> tuple[str, Session]:
        """A new session token for `name`, or LoginError. Five failures lock the name."""
        with self._lock:  # logins run in threads: count every failure
            failures, since = self._failures.get(name, (0, now))
        if failures >= MAX_FAILURES and now - since < LOCKOUT:
            raise LoginError(f"too many failed logins for this name; wait {LOCKOUT}")
        entry = self._load().get(name)
        ok = False
        try:
            # An unknown name is checked against a hash too: the answer takes as long.
            ok = self._hasher.verify(entry["hash"] if entry else self._dummy, password)
            if entry is None:
                ok = False
            else:
                ok = ok and pyotp.TOTP(entry["totp"]).verify(code, for_time=now, valid_window=1)
        except (VerificationError, InvalidHashError):
            ok = False
        with self._lock:
            if not ok:
                failures, since = self._failures.get(name, (0, now))
                self._failures[name] = (failures + 1 if now - since < LOCKOUT else 1, now)
                raise LoginError("wrong name, password or one-time code")
            self._failures.pop(name, None)
        token = secrets.token_urlsafe(32)
        session = Session(name, now + self._length)
        self._sessions[token] = session
        return token, session

    def session(self, token: str, now: datetime) -> Session | None:
        s = self._sessions.get(token)
        if s is None:
            return None
        if s.expires_at <= now:
            del self._sessions[token]
            return None
        return s

    def logout(self, token: str) -> None:
        self._sessions.pop(token, None)
