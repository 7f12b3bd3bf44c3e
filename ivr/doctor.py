"""`ivr doctor`: check everything the service depends on and say plainly what is wrong.

Each check returns one `Finding`. `fail` means calls or recordings are affected and it must be
fixed; `warn` means something to look at; `off` means the feature is not configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import aiomqtt
from sqlalchemy.exc import SQLAlchemyError

from ivr.ami.client import AmiAuthError, AmiClient, AmiError
from ivr.clock import Clock
from ivr.config import Config
from ivr.db.migrate import schema_status
from ivr.events.publisher import mqtt_client, settle
from ivr.paths import prompts_dir
from ivr.prompts import PromptCatalog, prompt_file_problems
from ivr.recordings.storage import StorageError, hash_file
from ivr.wiring import Parts

Status = Literal["ok", "warn", "fail", "off"]
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


async def check_database(parts: Parts) -> Finding:
    engine = parts.engine
    where = engine.url.render_as_string(hide_password=True)
    try:
        status = await asyncio.wait_for(schema_status(engine), TIMEOUT_S)
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        return Finding("database", "fail", f"cannot reach {where}: {reason.splitlines()[0]}")
    finally:
        await engine.dispose()
    if status.current is None:
        return Finding("database", "fail", f"{where} has no schema: run `ivr db upgrade`")
    if not status.up_to_date:
        return Finding(
            "database",
            "fail",
            f"{where} is at schema {status.current}, this version needs {status.head}: "
            "run `ivr db upgrade`",
        )
    return Finding("database", "ok", f"{where}, schema {status.current}")


def check_prompts(cfg: Config, catalog: PromptCatalog) -> list[Finding]:
    """The shipped files, and the copy Asterisk plays when its sounds folder is on this host."""
    found: list[Finding] = []
    shipped = prompt_file_problems(catalog, prompts_dir())
    found.append(
        Finding("prompts", "fail", _first(shipped))
        if shipped
        else Finding("prompts", "ok", f"{len(catalog.texts)} prompts in ja and en, 8 kHz mono")
    )
    installed = Path(cfg.prompts.sounds_dir) / cfg.prompts.sound_prefix
    if not Path(cfg.prompts.sounds_dir).is_dir():
        found.append(
            Finding(
                "installed prompts",
                "warn",
                f"{cfg.prompts.sounds_dir} is not on this host; install the prompts where "
                f"Asterisk runs: cp -r prompts/ja prompts/en {installed}/",
            )
        )
        return found
    problems = prompt_file_problems(catalog, installed)
    if problems:
        hint = f"; copy them: cp -r {prompts_dir()}/ja {prompts_dir()}/en {installed}/"
        found.append(Finding("installed prompts", "fail", _first(problems) + hint))
    else:
        found.append(Finding("installed prompts", "ok", f"{installed}"))
    return found


def _first(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


async def _dialplan_spool(client: AmiClient, cfg: Config) -> Finding | None:
    """The dialplan's IVR_GUARD_SPOOL (fail-open recordings) against recording.spool_dir: the
    hand-off only looks in the latter, so a recording written elsewhere is never stored."""
    if not cfg.recording.enabled:
        return None
    try:
        reply = await client.action("Getvar", {"Variable": "IVR_GUARD_SPOOL"})
    except AmiError as exc:
        return Finding("dialplan spool", "fail", f"cannot read IVR_GUARD_SPOOL over AMI: {exc}")
    value = str(reply.get("Value") or "").rstrip("/")
    if not value:
        return Finding(
            "dialplan spool", "warn", "IVR_GUARD_SPOOL is not set in Asterisk's [globals] (or "
            "this AMI user may not read it): fail-open calls may be recorded where the service "
            "never looks"
        )  # fmt: skip
    if value != cfg.recording.spool_dir.rstrip("/"):
        return Finding(
            "dialplan spool", "fail", f"IVR_GUARD_SPOOL is {value!r} but recording.spool_dir is "
            f"{cfg.recording.spool_dir!r}: they must be the same folder"
        )  # fmt: skip
    return Finding("dialplan spool", "ok", f"IVR_GUARD_SPOOL = recording.spool_dir ({value})")


async def check_ami(parts: Parts) -> list[Finding]:
    cfg = parts.cfg
    if not cfg.ami.host:
        return [
            Finding("AMI", "off", "[ami] host is not set: no cap timers at answer, no Redirect")
        ]
    where = f"{cfg.ami.host}:{cfg.ami.port}"
    if not cfg.ami.secret:
        return [Finding("AMI", "fail", "no secret: set IVR_AMI_SECRET or [ami] secret_file")]
    client = parts.ami
    assert client is not None  # [ami] host is set
    task = asyncio.create_task(client.run())
    try:
        ready = asyncio.create_task(client.wait_connected(TIMEOUT_S))
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            exc = task.exception()
            while isinstance(exc, BaseExceptionGroup):  # AmiClient.run() uses a TaskGroup
                exc = exc.exceptions[0]
            if isinstance(exc, AmiAuthError):
                return [Finding("AMI", "fail", f"{exc}")]
            return [Finding("AMI", "fail", f"{where}: {exc}")]
        if ready.exception() is not None:
            return [Finding(
                "AMI", "fail", f"cannot reach {where} within {TIMEOUT_S:.0f} s: is manager.conf "
                "enabled, bound to that address, and the port open?"
            )]  # fmt: skip
        try:
            await client.action_list("CoreShowChannels")
        except AmiError as exc:
            return [Finding(
                "AMI", "fail", f"logged in, but CoreShowChannels failed ({exc}): "
                "the user needs write=call,reporting and read=call"
            )]  # fmt: skip
        ok = Finding("AMI", "ok", f"logged in to {where} as {cfg.ami.username}")
        spool = await _dialplan_spool(client, cfg)
        return [ok] if spool is None else [ok, spool]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def check_broker(cfg: Config) -> Finding:
    c = cfg.mqtt
    if not c.host:
        return Finding("MQTT", "off", "[mqtt] host is not set: alerts are only logged")
    where = f"{c.host}:{c.port}"
    client = mqtt_client(c, f"ivr-doctor-{secrets.token_hex(4)}", TIMEOUT_S)
    try:
        async with client:
            await client.publish(f"{c.topic_prefix}/doctor", b"{}", qos=1)
    except aiomqtt.MqttError as exc:
        return Finding("MQTT", "fail", f"broker {where}: {exc}")
    finally:
        settle(client)
    return Finding("MQTT", "ok", f"connected to {where}, published to {c.topic_prefix}/doctor")


async def check_storage(parts: Parts) -> Finding:
    """Store a probe, read it back, compare, delete: what the hand-off does to a recording."""
    storage = parts.storage
    where = storage.describe()
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.txt"
        probe.write_bytes(secrets.token_bytes(64))
        digest = hash_file(probe)
        key = f"ivr-guard-doctor/{secrets.token_hex(8)}.txt"
        try:
            uri = await asyncio.wait_for(storage.put(probe, key, digest), TIMEOUT_S * 2)
        except (StorageError, TimeoutError) as exc:
            return Finding("storage", "fail", f"cannot write to {where}: {exc or 'timed out'}")
        try:
            back = await asyncio.wait_for(storage.digest(uri), TIMEOUT_S * 2)
            if back != digest:
                return Finding("storage", "fail", f"{where} returned different bytes for a probe")
            await asyncio.wait_for(storage.delete(uri), TIMEOUT_S * 2)
        except (StorageError, TimeoutError) as exc:
            return Finding("storage", "fail", f"{where}: wrote a probe but {exc or 'timed out'}")
    return Finding("storage", "ok", f"{where}: write, read back, SHA-256 and delete work")


def check_spool(cfg: Config) -> Finding:
    spool = Path(cfg.recording.spool_dir)
    if not cfg.recording.enabled:
        return Finding("spool", "off", "recording is disabled")
    if not spool.is_dir():
        return Finding(
            "spool",
            "fail",
            f"{spool} does not exist: create it, writable by Asterisk and readable by the "
            "service (the same folder on both hosts or containers)",
        )
    if not os.access(spool, os.R_OK | os.W_OK | os.X_OK):
        return Finding("spool", "fail", f"{spool}: this user cannot read and remove files there")
    return Finding("spool", "ok", str(spool))


async def run_checks(cfg: Config, catalog: PromptCatalog, clock: Clock) -> list[Finding]:
    parts = Parts(cfg, clock, timeout_s=TIMEOUT_S)
    findings: list[Finding] = [Finding("configuration", "ok", "valid")]
    findings.append(await check_database(parts))
    findings += check_prompts(cfg, catalog)
    findings.append(check_spool(cfg))
    findings.append(await check_storage(parts))
    findings += await check_ami(parts)
    findings.append(await check_broker(cfg))
    return findings
