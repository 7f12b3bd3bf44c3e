"""Harassment end from the agent's feature code and from `ivr calls end`, and the calls CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ivr.db.models import blocklist_entries
from ivr.review.trail import verify
from ivr.sim.fake_asterisk import CallerScript, Channel
from tests.support.alerts import subscribed
from tests.support.caps import hang_up
from tests.support.cli import IVR, ME
from tests.support.inbound import row
from tests.support.mqtt import Broker
from tests.support.service import Service, token_for

CALLER_CHANNEL = "Local/s@ivr-in-00000002;2"  # the fake's channel name for the caller's leg
AGENT = "PJSIP/sales-00000007"


async def routed(svc: Service, number: str = "0312345678") -> str:
    rec = await svc.fake.call(Channel(callerid=number, uniqueid="1.1"), CallerScript(["1"]))
    assert rec.variables["IVR_DECISION"] == "route"
    await svc.app.journal.flush()
    return rec.variables["IVR_CALL_ID"]


async def entries(svc: Service) -> list[dict[str, Any]]:
    async with svc.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(blocklist_entries))]


async def test_agent_feature_code_redirects_holds_proposes(
    make_service: Any, fake_ami: Any
) -> None:
    svc: Service = await make_service(fake_ami.config)
    await svc.app.ami.wait_connected(5)  # type: ignore[union-attr]
    fake_ami.server.channels = [{"Channel": CALLER_CHANNEL, "Uniqueid": "1.1"}]
    call_id = await routed(svc)
    rec = await svc.fake.call(
        Channel(script="harassment", args=agent_args(svc, call_id), channel=AGENT, uniqueid="1.2")
    )
    assert rec.commands == []  # AMI did the redirect; nothing on the agent's channel
    redirects = [a for a in fake_ami.server.actions if a.get("Action") == "Redirect"]
    assert len(redirects) == 1
    assert {k: redirects[0][k] for k in ("Channel", "Context", "Exten", "Priority")} == {
        "Channel": CALLER_CHANNEL,
        "Context": "ivr-guard-harassment-end",
        "Exten": "s",
        "Priority": "1",
    }
    r = await row(svc, call_id)
    assert (r["legal_hold"], r["end_reason"]) == (True, "harassment")
    assert r["hold_note"] == f"harassment end by agent {AGENT}"
    [e] = await entries(svc)
    assert (e["pattern"], e["status"], e["category"], e["proposed_by"]) == (
        "+81312345678",
        "pending",
        "abusive-language",
        "system",
    )
    assert json.loads(e["evidence"]) == [call_id]
    assert (await verify(svc.engine, svc.app.seals)).ok
    # The caller's hang-up after the announcement keeps the reason and counts the talk time.
    await hang_up(svc, call_id, "95")
    r = await row(svc, call_id)
    assert (r["talk_s"], r["end_reason"], r["legal_hold"]) == (95, "harassment", True)


async def test_without_ami_the_feature_uses_channelredirect(make_service: Any) -> None:
    svc: Service = await make_service()
    call_id = await routed(svc)
    svc.fake.live_channels = {CALLER_CHANNEL}
    rec = await svc.fake.call(
        Channel(script="harassment", args=agent_args(svc, call_id), channel=AGENT)
    )
    assert rec.commands == [
        f'EXEC ChannelRedirect "{CALLER_CHANNEL},ivr-guard-harassment-end,s,1"',
        "GET VARIABLE CHANNELREDIRECT_STATUS",
    ]
    assert (await row(svc, call_id))["legal_hold"] is True


async def test_a_failed_redirect_changes_nothing(make_service: Any) -> None:
    svc: Service = await make_service()
    call_id = await routed(svc)
    svc.fake.live_channels = set()  # the caller's channel is already gone
    await svc.fake.call(Channel(script="harassment", args=agent_args(svc, call_id), channel=AGENT))
    r = await row(svc, call_id)
    assert (r["legal_hold"], r["end_reason"]) == (False, None)
    assert await entries(svc) == []


async def ivr(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The CLI as a subprocess, without blocking this loop (the fake AMI answers from it)."""
    proc = await asyncio.create_subprocess_exec(
        IVR, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def cli_env(svc: Service) -> dict[str, str]:
    """A supervisor's environment: the service's API socket, nothing else of it."""
    return dict(os.environ, IVR_API_SOCKET=str(svc.cfg.api_socket()))


async def test_supervisor_ends_a_call_from_the_cli(
    make_service: Any, fake_ami: Any, tmp_path: Path
) -> None:
    broker = Broker(tmp_path)
    await broker.start()
    try:
        mqtt = {"host": "127.0.0.1", "port": broker.port}
        svc: Service = await make_service({**fake_ami.config, "mqtt": mqtt})
        call_id = await routed(svc)
        fake_ami.server.channels = [{"Channel": CALLER_CHANNEL, "Uniqueid": "1.1"}]
        env = cli_env(svc)

        code, out, err = await ivr(env, "calls", "active", "--json")
        assert code == 0, err
        [live] = json.loads(out)
        assert (live["call_id"], live["caller"], live["route"], live["cap_s"]) == (
            call_id,
            "+81312345678",
            "sales",
            3600,
        )

        async with subscribed(broker.port) as inbox:
            code, out, err = await ivr(
                env, "calls", "end", call_id, "--harassment", "--category", "threats",
                "--note", "threatened to come to the office",
            )  # fmt: skip
            assert code == 0, err
            [alert] = await inbox.wait("harassment-end")
        assert "hears harassment-end and is hung up" in out
        assert "blocklist entry 1 proposed" in out
        assert (alert["call_id"], alert["category"], alert["by"]) == (
            call_id,
            "threats",
            f"supervisor {ME}",
        )
        redirect = next(a for a in fake_ami.server.actions if a.get("Action") == "Redirect")
        assert (redirect["Channel"], redirect["Context"]) == (
            CALLER_CHANNEL,
            "ivr-guard-harassment-end",
        )
        r = await row(svc, call_id)
        assert r["legal_hold"] is True and "threatened" in r["hold_note"]
        [e] = await entries(svc)
        assert (e["proposed_by"], e["category"], e["status"]) == (ME, "threats", "pending")

        # Ending it again: the call is not over yet (no hang-up seen) but the entry exists.
        await hang_up(svc, call_id, "120")
        code, _, err = await ivr(env, "calls", "end", call_id, "--harassment")
        assert code == 7 and "not in progress" in err
        code, out, _ = await ivr(env, "calls", "active", "--json")
        assert json.loads(out) == []

        code, out, err = await ivr(env, "callers", "show", "03-1234-5678", "--json")
        assert code == 0, err
        shown = json.loads(out)
        assert shown["caller"] == "+81312345678"
        assert shown["today_talk_s"] == 120 and shown["next_call_limit_s"] == 3480
        assert "legal-hold" in shown["flags"] and "blocked" not in shown["flags"]
        assert [c["call_id"] for c in shown["calls"]] == [call_id]
        assert shown["calls"][0]["end_reason"] == "harassment"
        assert [(b["id"], b["status"], b["acting"]) for b in shown["blocklist"]] == [
            (1, "pending", False)
        ]
        code, out, _ = await ivr(env, "callers", "show", "03-1234-5678")
        assert code == 0 and "legal-hold" in out and "blocklist #1 number +81312345678" in out
    finally:
        await broker.stop()


async def test_calls_end_errors(make_service: Any, fake_ami: Any, tmp_path: Path) -> None:
    svc: Service = await make_service(fake_ami.config)
    env = cli_env(svc)
    code, _, err = await ivr(env, "calls", "end", "0123456789abcdef", "--harassment")
    assert code == 6 and "no call" in err
    code, _, err = await ivr(env, "callers", "show", "not-a-number")
    assert code == 4
    call_id = await routed(svc)
    code, _, err = await ivr(env, "calls", "end", call_id, "--harassment", "--category", "rude")
    assert code == 4 and "unknown category" in err
    # The channel has gone from Asterisk: the redirect fails and nothing is recorded.
    code, _, err = await ivr(env, "calls", "end", call_id, "--harassment")
    assert code == 1 and "Channel specified does not exist" in err
    assert (await row(svc, call_id))["legal_hold"] is False
    # The command line's own configuration and secrets play no part: the service acts.
    wrong = dict(env, IVR_AMI_SECRET="wrong")
    code, _, err = await ivr(wrong, "calls", "end", call_id)
    assert code == 1 and "Channel specified does not exist" in err


def agent_args(svc: Service, call_id: str) -> tuple[str, str]:
    """What the feature code passes on the agent's leg: the call id and its token."""
    return call_id, token_for(svc.cfg.data_dir, call_id)
