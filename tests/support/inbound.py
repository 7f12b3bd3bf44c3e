"""What a screened call sends and leaves behind, for tests of the inbound script."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert

from ivr.db.calls import get_call
from ivr.db.models import blocklist_entries
from tests.support.service import OPEN_TIME, Service, token_of

SPOOL = "/var/spool/asterisk/monitor/ivr-guard"


def stream(pid: str) -> str:
    return f'STREAM FILE "ivr-guard/ja/{pid}" ""'


GET_MENU = 'GET DATA "ivr-guard/ja/menu" 5000 1'


def decision_vars(
    call_id: str,
    *,
    recording: str = "",
    route: str = "",
    dial: str = "",
    timeout: str = "",
    reason: str,
    decision: str,
    limit: str | None = None,
    warning: str | None = None,
) -> list[str]:
    """The decision variables in the order they are set; a routed call defaults to the 60-minute
    cap with a 60-second warning."""
    routed = decision == "route"
    values = [
        ("IVR_CALL_ID", call_id),
        ("IVR_TOKEN", token_of(call_id)),
        ("IVR_RECORDING", recording),
        ("IVR_LIMIT_MS", limit if limit is not None else ("3600000" if routed else "")),
        ("IVR_WARNING_MS", warning if warning is not None else ("60000" if routed else "")),
        ("IVR_SOUNDS", "ivr-guard/ja"),
        ("IVR_ROUTE", route),
        ("IVR_DIAL", dial),
        ("IVR_DIAL_TIMEOUT", timeout),
        ("IVR_REASON", reason),
        ("IVR_DECISION", decision),
    ]
    return ['EXEC MSet "' + ",".join(f"{k}={v}" for k, v in values) + '"']


def routed_tail(call_id: str, route: str, dial: str, spool: str = SPOOL) -> list[str]:
    rec = f"{spool}/{call_id}.wav"
    return [
        stream("transferring"),
        *decision_vars(
            call_id,
            recording=rec,
            route=route,
            dial=dial,
            timeout="30",
            reason="menu",
            decision="route",
        ),
    ]


def opening(call_id: str, spool: str = SPOOL) -> list[str]:
    return [
        "ANSWER",
        f'EXEC MixMonitor "{spool}/{call_id}.wav"',
        stream("recording-notice"),
        stream("harassment-policy"),
    ]


async def row(svc: Service, call_id: str) -> dict[str, Any]:
    await svc.app.journal.flush()
    async with svc.engine.connect() as conn:
        r = await get_call(conn, call_id)
    assert r is not None
    return r


async def add_entry(
    svc: Service,
    pattern: str,
    *,
    prefix: bool = False,
    status: str = "approved",
    expires: datetime | None = None,
    action: str = "reject",
) -> int:
    async with svc.engine.begin() as conn:
        res = await conn.execute(
            insert(blocklist_entries).values(
                pattern=pattern,
                is_prefix=prefix,
                status=status,
                action=action,
                category="abusive",
                note="test",
                evidence="[]",
                expires_at=expires,
                proposed_by="alice",
                proposed_at=OPEN_TIME,
            )
        )
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])
