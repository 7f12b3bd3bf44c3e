"""`ivr doctor`: one test per kind of failure, against real servers, and a clean bill of health."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ivr.clock import SystemClock
from ivr.config import Config, build_config
from ivr.db import migrate
from ivr.doctor import Finding, run_checks
from ivr.paths import project_root, prompts_dir
from ivr.prompts import PromptCatalog
from ivr.sim.fake_ami import FakeAmi
from tests.support.mqtt import Broker
from tests.support.prompts import tone
from tests.support.s3 import CREDENTIALS, S3Server
from tests.support.servers import free_port

IVR = str(Path(sys.executable).with_name("ivr"))


def healthy(tmp_path: Path, db_url: str) -> dict[str, Any]:
    """A configuration whose every local dependency is in place (no AMI, no broker)."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    sounds = tmp_path / "sounds"
    for lang in ("ja", "en"):
        shutil.copytree(prompts_dir() / lang, sounds / "ivr-guard" / lang, dirs_exist_ok=True)
    return {
        "data_dir": str(tmp_path / "data"),
        "database": {"url": db_url},
        "recording": {"spool_dir": str(spool)},
        "prompts": {"sounds_dir": str(sounds)},
    }


async def check(data: dict[str, Any], catalog: PromptCatalog) -> dict[str, Finding]:
    cfg: Config = build_config(data, os.environ, catalog)
    return {f.check: f for f in await run_checks(cfg, catalog, SystemClock())}


def only_failure(found: dict[str, Finding]) -> Finding:
    [failed] = [f for f in found.values() if f.status == "fail"]
    return failed


async def test_all_ok_with_ami_broker_and_storage(
    tmp_path: Path, db_url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    ami = FakeAmi("ivr-guard", "s3cret")
    await ami.start()
    broker = Broker(tmp_path)
    await broker.start()
    monkeypatch.setenv("IVR_AMI_SECRET", "s3cret")
    data = healthy(tmp_path, db_url)
    data["ami"] = {"host": "127.0.0.1", "port": ami.port}
    data["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
    ami.globals["IVR_GUARD_SPOOL"] = data["recording"]["spool_dir"]
    try:
        found = await check(data, catalog)
    finally:
        await broker.stop()
        await ami.close()
    assert {k: f.status for k, f in found.items()} == {
        "configuration": "ok",
        "database": "ok",
        "prompts": "ok",
        "installed prompts": "ok",
        "spool": "ok",
        "storage": "ok",
        "AMI": "ok",
        "dialplan spool": "ok",
        "MQTT": "ok",
    }, found
    assert "logged in to 127.0.0.1" in found["AMI"].detail
    assert "SHA-256" in found["storage"].detail
    # The probe left nothing behind in the recordings store.
    assert not [p for p in (tmp_path / "data" / "recordings").rglob("*") if p.is_file()]


async def test_database_unreachable(
    tmp_path: Path, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+asyncpg://ivr:x@127.0.0.1:{free_port()}/ivr"
    monkeypatch.setenv("IVR_DATABASE_URL", url)  # a password is only taken from there
    failed = only_failure(await check(healthy(tmp_path, url.replace(":x@", "@")), catalog))
    assert failed.check == "database" and failed.detail.startswith("cannot reach postgresql")
    assert ":x@" not in failed.detail  # no password in the report


async def test_database_without_schema(tmp_path: Path, catalog: PromptCatalog) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"
    failed = only_failure(await check(healthy(tmp_path, url), catalog))
    assert failed.check == "database" and "has no schema: run `ivr db upgrade`" in failed.detail


async def test_database_schema_out_of_date(tmp_path: Path, catalog: PromptCatalog) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url, "0003")
    failed = only_failure(await check(healthy(tmp_path, url), catalog))
    head = migrate.head_revision()
    assert failed.detail.endswith(
        f"is at schema 0003, this version needs {head}: run `ivr db upgrade`"
    )


async def test_installed_prompt_missing_or_wrong_format(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog
) -> None:
    data = healthy(tmp_path, sqlite_url)
    installed = Path(data["prompts"]["sounds_dir"]) / "ivr-guard"
    (installed / "en" / "goodbye.wav").unlink()
    failed = only_failure(await check(data, catalog))
    assert failed.check == "installed prompts"
    assert failed.detail.startswith(f"{installed}/en/goodbye.wav: missing; copy them: cp -r ")
    tone(installed / "en" / "goodbye.wav", 1.0, rate=44100, channels=2)
    failed = only_failure(await check(data, catalog))
    assert "goodbye.wav: 44100 Hz, 2 channel(s), 16-bit; Asterisk needs 8000 Hz" in failed.detail


async def test_sounds_folder_elsewhere_is_a_warning(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog
) -> None:
    data = healthy(tmp_path, sqlite_url)
    data["prompts"]["sounds_dir"] = str(tmp_path / "no-such-folder")
    found = await check(data, catalog)
    assert found["installed prompts"].status == "warn"
    assert "is not on this host" in found["installed prompts"].detail
    assert not [f for f in found.values() if f.status == "fail"]


def test_shipped_prompt_broken(tmp_path: Path, sqlite_url: str) -> None:
    # A copy of the install whose prompts folder lost one file, run through the CLI.
    home = tmp_path / "home"
    shutil.copytree(prompts_dir(), home / "prompts")
    (home / "migrations").symlink_to(project_root() / "migrations")
    (home / "prompts" / "ja" / "menu.wav").write_bytes(b"")
    cfg = tmp_path / "ivr.toml"
    data = healthy(tmp_path, sqlite_url)
    cfg.write_text(
        f'data_dir = "{data["data_dir"]}"\n[database]\nurl = "{sqlite_url}"\n'
        f'[recording]\nspool_dir = "{data["recording"]["spool_dir"]}"\n'
        f'[prompts]\nsounds_dir = "{data["prompts"]["sounds_dir"]}"\n'
    )
    res = subprocess.run(
        [IVR, "doctor", "--json", "-c", str(cfg)],
        env=dict(os.environ, IVR_HOME=str(home)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1, res.stderr
    rows = {r["check"]: r for r in json.loads(res.stdout)}
    assert rows["prompts"]["status"] == "fail"
    assert "ja/menu.wav: not a readable PCM WAV file" in rows["prompts"]["detail"]


async def test_spool_missing(tmp_path: Path, sqlite_url: str, catalog: PromptCatalog) -> None:
    data = healthy(tmp_path, sqlite_url)
    data["recording"]["spool_dir"] = str(tmp_path / "gone")
    failed = only_failure(await check(data, catalog))
    assert failed.check == "spool" and failed.detail.startswith(f"{tmp_path / 'gone'} does not")


async def test_local_storage_not_writable(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    data = healthy(tmp_path, sqlite_url)
    data["storage"] = {"local_dir": str(tmp_path / "a-file" / "recordings")}
    failed = only_failure(await check(data, catalog))
    assert failed.check == "storage"
    assert failed.detail.startswith(f"cannot write to local directory {tmp_path / 'a-file'}")


async def test_s3_bucket_missing(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = S3Server(tmp_path)
    await s3.start()
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    data = healthy(tmp_path, sqlite_url)
    data["storage"] = {"backend": "s3", "s3_endpoint_url": s3.url, "s3_bucket": "nobody"}
    try:
        failed = only_failure(await check(data, catalog))
        await asyncio.to_thread(s3.client().create_bucket, Bucket="nobody")
        found = await check(data, catalog)
    finally:
        await s3.stop()
    assert failed.check == "storage" and failed.detail.startswith("cannot write to s3://nobody")
    assert "NoSuchBucket" in failed.detail
    assert found["storage"].status == "ok"


async def ami_finding(
    tmp_path: Path, url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch,
    secret: str, denied: frozenset[str] = frozenset(),
) -> Finding:  # fmt: skip
    """The one failure when the service logs in to a fake AMI whose user's secret is s3cret."""
    ami = FakeAmi("ivr-guard", "s3cret")
    ami.denied = set(denied)
    await ami.start()
    monkeypatch.setenv("IVR_AMI_SECRET", secret)
    data = healthy(tmp_path, url)
    data["ami"] = {"host": "127.0.0.1", "port": ami.port}
    try:
        return only_failure(await check(data, catalog))
    finally:
        await ami.close()


async def test_ami_login_refused(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = await ami_finding(tmp_path, sqlite_url, catalog, monkeypatch, "wrong")
    assert failed.check == "AMI"
    assert failed.detail.startswith("AMI login as 'ivr-guard' refused by 127.0.0.1")


async def test_ami_user_without_the_reporting_class(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = await ami_finding(
        tmp_path, sqlite_url, catalog, monkeypatch, "s3cret", frozenset({"coreshowchannels"})
    )
    assert failed.check == "AMI" and "Permission denied" in failed.detail
    assert failed.detail.endswith("the user needs write=call,reporting and read=call")


async def test_ami_unreachable_and_no_secret(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = healthy(tmp_path, sqlite_url)
    data["ami"] = {"host": "127.0.0.1", "port": free_port()}
    monkeypatch.delenv("IVR_AMI_SECRET", raising=False)
    failed = only_failure(await check(data, catalog))
    assert failed.detail == "no secret: set IVR_AMI_SECRET or [ami] secret_file"
    monkeypatch.setenv("IVR_AMI_SECRET", "s3cret")
    failed = only_failure(await check(data, catalog))
    assert failed.check == "AMI" and failed.detail.startswith("cannot reach 127.0.0.1:")


async def test_broker_unreachable(tmp_path: Path, sqlite_url: str, catalog: PromptCatalog) -> None:
    data = healthy(tmp_path, sqlite_url)
    data["mqtt"] = {"host": "127.0.0.1", "port": free_port()}
    failed = only_failure(await check(data, catalog))
    assert failed.check == "MQTT" and failed.detail.startswith("broker 127.0.0.1:")


async def test_broker_refuses_the_client(
    tmp_path: Path, sqlite_url: str, catalog: PromptCatalog
) -> None:
    broker = Broker(tmp_path)
    conf = broker._conf.read_text().replace("allow_anonymous: true", "allow_anonymous: false")
    broker._conf.write_text(conf)
    await broker.start()
    data = healthy(tmp_path, sqlite_url)
    data["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
    try:
        failed = only_failure(await check(data, catalog))
    finally:
        await broker.stop()
    assert failed.detail == f"broker 127.0.0.1:{broker.port}: [code:135] Not authorized"


def test_configuration_error_is_reported_not_raised(tmp_path: Path) -> None:
    cfg = tmp_path / "ivr.toml"
    cfg.write_text('[caps]\nper_call_minutes = "an hour"\n')
    res = subprocess.run(
        [IVR, "doctor", "-c", str(cfg)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 1
    assert "configuration" in res.stdout and "caps.per_call_minutes" in res.stdout
    assert "not ready: fix configuration" in res.stdout
