"""The web console's way in: HTTPS on `api.listen`, a password and a one-time code, then a
bearer token. Whoever logs in meets the same authorization layer as the socket's users."""

from __future__ import annotations

import ssl
import subprocess
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest

from tests.support.cli import IVR, as_user, ivr_json, setup, supervised
from tests.support.servers import free_port
from tests.support.service import JST

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=JST)  # the service's clock (`setup`)
PASSWORD = "correct horse battery"


def _cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _set_login(env: dict[str, str], name: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IVR, "logins", "set", name, "--password-stdin"],
        env=env, input=password + "\n", capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_login_with_password_and_code_then_the_same_rules(tmp_path: Path) -> None:
    cert, key = _cert(tmp_path)
    port = free_port()
    api = f'listen = "127.0.0.1:{port}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    env = setup(tmp_path, api=api)
    res = _set_login(env, "sato", PASSWORD)
    assert res.returncode == 0, res.stderr
    secret = parse_qs(urlparse(res.stdout.strip()).query)["secret"][0]
    assert _set_login(env, "mallory", PASSWORD).returncode == 2  # not a supervisor
    assert _set_login(env, "suzuki", "short").returncode == 4
    logins = tmp_path / "data" / "logins.json"
    assert logins.stat().st_mode & 0o077 == 0
    code = pyotp.TOTP(secret).at(NOW)
    trust = ssl.create_default_context(cafile=str(cert))
    with (
        supervised(env),
        httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust) as web,
    ):
        assert web.get("/v1/me").status_code == 403  # no login, no access

        def login(password: str, otp: str) -> httpx.Response:
            return web.post("/v1/login", json={"user": "sato", "password": password, "otp": otp})

        assert login("wrong password!!", code).status_code == 401
        wrong_code = "000000" if code != "000000" else "111111"
        assert login(PASSWORD, wrong_code).status_code == 401
        ok = login(PASSWORD, code)
        assert ok.status_code == 200, ok.text
        bearer = {"Authorization": f"Bearer {ok.json()['token']}"}
        assert web.get("/v1/me", headers=bearer).json()["user"] == "sato"
        entry = web.post(
            "/v1/blocklist",
            headers=bearer,
            json={"number": "0312345678", "category": "threats", "note": "from the console"},
        ).json()
        assert entry["proposed_by"] == "sato"
        own = web.post(f"/v1/blocklist/{entry['id']}/approve", headers=bearer, json={})
        assert own.status_code == 403 and "another supervisor must approve" in own.text
        done = ivr_json(["blocklist", "approve", str(entry["id"])], as_user(env, "suzuki"))
        assert done["status"] == "approved"
        assert web.post("/v1/logout", headers=bearer).status_code == 200
        assert web.get("/v1/me", headers=bearer).status_code == 403
        # Five failures lock the name, even for the right password and code.
        for _ in range(5):
            assert login("guess guess guess", code).status_code == 401
        locked = login(PASSWORD, code)
        assert locked.status_code == 401 and "too many failed logins" in locked.text
        # Plain HTTP is not spoken on the TLS port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/me", timeout=5)


def test_a_listener_without_tls_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('[api]\nlisten = "127.0.0.1:8443"\n')
    res = subprocess.run(
        [IVR, "config", "check", "--config", str(cfg)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2 and "logins go over TLS only" in res.stderr
