"""Shared fixtures: a migrated SQLite file per test and the service on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.app import build_app
from ivr.clock import FixedClock
from ivr.config import build_config
from ivr.db import migrate
from ivr.db.engine import create_engine
from ivr.paths import prompts_dir
from ivr.prompts import PromptCatalog
from ivr.sim.fake_ami import FakeAmi
from ivr.sim.fake_asterisk import FakeAsterisk
from tests.support.cli import ME, setup, supervised
from tests.support.mqtt import Broker
from tests.support.people import PUBLIC
from tests.support.pg import PgServer
from tests.support.service import OPEN_TIME, Service, place_test_key


@pytest.fixture(scope="session")
def catalog() -> PromptCatalog:
    return PromptCatalog.load(prompts_dir() / "catalog.toml")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ivr.sqlite3"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(template_db: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite file for one test (for tests about SQLite itself)."""
    target = tmp_path / "ivr.sqlite3"
    shutil.copy(template_db, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Every database-facing test runs twice: on SQLite and on the suite's PostgreSQL server."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    server: PgServer = request.getfixturevalue("pg_server")
    return asyncio.run(_fresh_pg_database(server))


@pytest.fixture
async def make_service(
    db_url: str, tmp_path: Path, catalog: PromptCatalog
) -> AsyncIterator[Callable[..., Any]]:
    """Build and start the service; `overrides` is a TOML-shaped dict merged into the config."""
    started: list[Service] = []
    counter = itertools.count(1)

    async def factory(
        overrides: dict[str, Any] | None = None,
        *,
        at: datetime = OPEN_TIME,
        url: str | None = None,
        sounds: set[str] | None = None,
    ) -> Service:
        data: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "database": {"url": url or db_url},
            # Most tests call from one number many times; caps tests set their own [caps].
            "caps": {"repeat_threshold": 0},
            # The service's roster: the supervisor commands the tests run are this OS user's.
            "supervisors": {ME: "admin"},
        }
        for key, value in (overrides or {}).items():
            data[key] = value
        cfg = build_config(data, os.environ, catalog)
        place_test_key(cfg.data_path())
        engine = create_engine(cfg.database_url(), timeout_s=cfg.database.timeout_s)
        clock = FixedClock(at)
        app = build_app(cfg, clock=clock, engine=engine, new_id=lambda: f"call{next(counter):04d}")
        await app.start("127.0.0.1", 0)
        svc = Service(
            app, engine, clock, FakeAsterisk("127.0.0.1", app.agi.port, sounds=sounds), cfg
        )
        started.append(svc)
        return svc

    yield factory
    for svc in started:
        await svc.app.close(grace=1.0)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session, with a migrated template database."""
    server = PgServer()
    server.start()
    try:
        asyncio.run(server.create_database("ivr_template"))
        migrate.upgrade(server.url("ivr_template"))
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_url(pg_server: PgServer) -> str:
    """A fresh migrated PostgreSQL database for one test."""
    return await _fresh_pg_database(pg_server)


_pg_counter = itertools.count(1)


async def _fresh_pg_database(server: PgServer) -> str:
    return await server.create_database(
        f"t{next(_pg_counter)}_{os.getpid()}", template="ivr_template"
    )


@dataclass
class AmiFixture:
    server: FakeAmi
    config: dict[str, Any]


@pytest.fixture
async def fake_ami(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AmiFixture]:
    """A fake AMI server and the `[ami]` overrides pointing the service at it."""
    server = FakeAmi("ivr-guard", "s3cret")
    await server.start()
    monkeypatch.setenv("IVR_AMI_SECRET", "s3cret")
    cfg = {"ami": {"host": "127.0.0.1", "port": server.port, "cdr_grace_s": 0}}
    try:
        yield AmiFixture(server, cfg)
    finally:
        await server.close()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """A real MQTT broker (amqtt) on a loopback port for one test."""
    b = Broker(tmp_path)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
def supervise() -> Iterator[Callable[..., dict[str, str]]]:
    """`supervise(tmp_path, roster=None, url=None, extra="")`: a configuration and database
    (`tests.support.cli.setup`) with `ivr serve` running on them until the test ends; the
    environment for the supervisor commands."""
    with contextlib.ExitStack() as stack:

        def start(
            tmp_path: Path,
            roster: dict[str, str] | None = None,
            url: str | None = None,
            extra: str = "",
        ) -> dict[str, str]:
            env = setup(tmp_path, roster, url, extra)
            stack.enter_context(supervised(env))
            return env

        yield start


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(PUBLIC, ignore_errors=True)
