"""The inbound script end to end: fake Asterisk → FastAGI over TCP → handler → SQLite."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from ivr import names
from ivr.calls.ids import new_call_id
from ivr.recordings.handoff import _CALL_FILE
from ivr.sim.fake_asterisk import CallerScript, Channel, hang_up_during
from tests.support.inbound import (
    GET_MENU,
    SPOOL,
    add_entry,
    decision_vars,
    opening,
    routed_tail,
    row,
    stream,
)
from tests.support.service import JST, OPEN_TIME, Service, token_of


async def test_normal_caller_through_the_menu(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(
        Channel(callerid="03-1234-5678", args=("0120123456", "1795.1")), CallerScript(digits=["1"])
    )
    assert rec.commands == [
        *opening("call0001"),
        GET_MENU,
        *routed_tail("call0001", "sales", "PJSIP/sales"),
    ]
    assert rec.variables["IVR_DECISION"] == "route"
    assert rec.variables["IVR_DIAL"] == "PJSIP/sales"
    assert rec.closed_by_server and not rec.hung_up
    r = await row(svc, "call0001")
    assert r["caller_e164"] == "+81312345678" and r["caller_class"] == "number"
    assert (r["decision"], r["reason"], r["route"]) == ("route", "menu", "sales")
    assert r["dialled"] == "+81120123456" and r["linkedid"] == "1795.1"
    assert r["recording_path"] == f"{SPOOL}/call0001.wav"
    assert r["started_at"] == OPEN_TIME and r["ended_at"] is None


async def test_decision_in_one_mset_reaches_the_dialplan_as_separate_variables(
    make_service: Any,
) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(Channel(), CallerScript(digits=["2"]))
    assert len(rec.commands) == 7 and rec.commands[-1].startswith('EXEC MSet "IVR_CALL_ID=')
    assert rec.replies[-1] == ["200 result=0"]
    assert {k: v for k, v in rec.variables.items() if k.startswith("IVR_")} == {
        "IVR_CALL_ID": "call0001",
        "IVR_TOKEN": token_of("call0001"),
        "IVR_RECORDING": f"{SPOOL}/call0001.wav",
        "IVR_LIMIT_MS": "3600000",
        "IVR_WARNING_MS": "60000",
        "IVR_SOUNDS": "ivr-guard/ja",
        "IVR_ROUTE": "support",
        "IVR_DIAL": "PJSIP/support",
        "IVR_DIAL_TIMEOUT": "30",
        "IVR_REASON": "menu",
        "IVR_DECISION": "route",
    }


async def test_values_mset_would_reparse_go_one_set_variable_each(make_service: Any) -> None:
    # A dial string holding what MSet's argument parser acts on (quotes, brackets, `$`).
    dial = 'PJSIP/${AGENT}@"trunk"(x)'
    routes = {"sales": {"dial": dial}, "support": {"dial": "x"}, "operator": {"dial": "y"}}
    svc: Service = await make_service({"routes": routes})
    rec = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    sets = [c for c in rec.commands if c.startswith("SET VARIABLE")]
    assert not any(c.startswith("EXEC MSet") for c in rec.commands)
    assert [c.split()[2] for c in sets] == list(names.DECISION_VARS)
    assert sets[7] == 'SET VARIABLE IVR_DIAL "PJSIP/${AGENT}@\\"trunk\\"(x)"'
    assert rec.variables["IVR_DIAL"] == dial and rec.variables["IVR_DECISION"] == "route"


async def test_an_asterisk_without_mset_gets_set_variable_each(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service()
    svc.fake.apps = svc.fake.apps - {"MSet"}
    with caplog.at_level(logging.WARNING):
        rec = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
        again = await svc.fake.call(Channel(), CallerScript(digits=["2"]))
    i = next(i for i, c in enumerate(rec.commands) if c.startswith("EXEC MSet"))
    assert rec.replies[i] == ["200 result=-2"]
    assert [c.split()[2] for c in rec.commands[i + 1 :]] == list(names.DECISION_VARS)
    assert rec.variables["IVR_DECISION"] == "route" and rec.variables["IVR_ROUTE"] == "sales"
    assert caplog.text.count("Asterisk refused EXEC MSet") == 1
    # Not asked again: the next call goes straight to one SET VARIABLE each.
    assert not any(c.startswith("EXEC MSet") for c in again.commands)
    assert again.variables["IVR_ROUTE"] == "support"
    r = await row(svc, "call0001")
    assert (r["decision"], r["route"]) == ("route", "sales")


async def test_withheld_number_is_refused(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(
        Channel(callerid="anonymous", calleridname="Anonymous", callingpres=35)
    )
    assert rec.commands == [
        "ANSWER",
        stream("anonymous-rejected"),
        *decision_vars("call0001", reason="withheld", decision="hangup"),
    ]
    r = await row(svc, "call0001")
    assert (r["caller_class"], r["decision"], r["reason"]) == ("withheld", "hangup", "withheld")
    assert r["caller_e164"] is None and r["ended_at"] == OPEN_TIME and r["recording_path"] is None


async def test_unavailable_allowed_by_default(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(
        Channel(callerid="unknown", callingpres=67), CallerScript(digits=["2"])
    )
    assert rec.commands == [
        *opening("call0001"),
        GET_MENU,
        *routed_tail("call0001", "support", "PJSIP/support"),
    ]
    assert (await row(svc, "call0001"))["caller_class"] == "unavailable"


async def test_unavailable_refused_for_one_dialled_number(make_service: Any) -> None:
    svc: Service = await make_service(
        {
            "screening": {
                "by_dialled": {"0120-123-456": {"withheld": "reject", "unavailable": "reject"}}
            }
        }
    )
    rec = await svc.fake.call(
        Channel(callerid="unknown", callingpres=67, args=("0120123456", "1.1"))
    )
    assert rec.commands == [
        "ANSWER",
        stream("unavailable-rejected"),
        *decision_vars("call0001", reason="unavailable", decision="hangup"),
    ]
    # Another dialled number keeps the default (allow).
    rec2 = await svc.fake.call(
        Channel(callerid="unknown", callingpres=67, args=("0312340000", "1.2")),
        CallerScript(digits=["1"]),
    )
    assert rec2.variables["IVR_DECISION"] == "route"


async def test_blocked_exact(make_service: Any) -> None:
    svc: Service = await make_service()
    entry = await add_entry(svc, "+81312345678")
    rec = await svc.fake.call(Channel(callerid="+81312345678"))
    assert rec.commands == [
        "ANSWER",
        stream("blocked"),
        *decision_vars("call0001", reason="blocked", decision="hangup"),
    ]
    r = await row(svc, "call0001")
    assert (r["decision"], r["blocklist_entry_id"]) == ("hangup", entry)


async def test_blocked_prefix_and_longest_prefix_wins(make_service: Any) -> None:
    svc: Service = await make_service()
    await add_entry(svc, "+81312", prefix=True, action="route:support")
    longer = await add_entry(svc, "+8131234", prefix=True)
    rec = await svc.fake.call(Channel(callerid="03-1234-5678"))
    assert rec.commands == [
        "ANSWER",
        stream("blocked"),
        *decision_vars("call0001", reason="blocked", decision="hangup"),
    ]
    assert (await row(svc, "call0001"))["blocklist_entry_id"] == longer
    # The shorter prefix still acts on numbers the longer one does not cover: its own route.
    rec2 = await svc.fake.call(Channel(callerid="0312999999"))
    assert rec2.commands == [
        "ANSWER",
        *decision_vars(
            "call0002",
            route="support",
            dial="PJSIP/support",
            timeout="30",
            reason="blocked",
            decision="route",
        ),
    ]


@pytest.mark.parametrize(
    ("status", "expires_in"),
    [
        ("approved", timedelta(0)),
        ("approved", -timedelta(days=1)),
        ("pending", None),
        ("rejected", None),
        ("revoked", None),
    ],
)
async def test_inactive_entries_do_not_block(
    make_service: Any, status: str, expires_in: timedelta | None
) -> None:
    svc: Service = await make_service()
    await add_entry(
        svc,
        "+81312345678",
        status=status,
        expires=OPEN_TIME + expires_in if expires_in is not None else None,
    )
    rec = await svc.fake.call(Channel(callerid="0312345678"), CallerScript(digits=["1"]))
    assert rec.variables["IVR_REASON"] == "menu"
    assert rec.variables["IVR_DECISION"] == "route"


async def test_invalid_digit_then_valid(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(Channel(), CallerScript(digits=["9", "2"]))
    assert rec.commands == [
        *opening("call0001"),
        GET_MENU,
        stream("invalid-input"),
        GET_MENU,
        *routed_tail("call0001", "support", "PJSIP/support"),
    ]


async def test_timeouts_until_retries_run_out(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(Channel(), CallerScript(digits=[None, None, None]))
    assert rec.commands == [
        *opening("call0001"),
        GET_MENU,
        stream("no-input"),
        GET_MENU,
        stream("no-input"),
        GET_MENU,
        stream("goodbye"),
        *decision_vars(
            "call0001", recording=f"{SPOOL}/call0001.wav", reason="menu-timeout", decision="hangup"
        ),
    ]
    r = await row(svc, "call0001")
    assert (r["decision"], r["reason"]) == ("hangup", "menu-timeout")


async def test_menu_fallback_route_after_retries(make_service: Any) -> None:
    svc: Service = await make_service({"menu": {"retries": 0, "fallback_route": "operator"}})
    rec = await svc.fake.call(Channel(), CallerScript(digits=["7"]))
    assert rec.commands[-3:] == [
        GET_MENU,
        stream("goodbye"),
        *decision_vars(
            "call0001",
            recording=f"{SPOOL}/call0001.wav",
            route="operator",
            dial="PJSIP/operator",
            timeout="30",
            reason="menu-invalid",
            decision="route",
        ),
    ]


async def test_after_hours(make_service: Any) -> None:
    svc: Service = await make_service(at=datetime(2026, 11, 24, 20, 0, tzinfo=JST))
    rec = await svc.fake.call(Channel())
    assert rec.commands == [
        "ANSWER",
        stream("after-hours"),
        *decision_vars("call0001", reason="after-hours", decision="hangup"),
    ]


async def test_public_holiday(make_service: Any) -> None:
    # 2026-11-23 is Labour Thanksgiving Day, a Monday.
    svc: Service = await make_service(at=datetime(2026, 11, 23, 10, 0, tzinfo=JST))
    rec = await svc.fake.call(Channel())
    assert rec.commands == [
        "ANSWER",
        stream("holiday"),
        *decision_vars("call0001", reason="holiday", decision="hangup"),
    ]
    assert (await row(svc, "call0001"))["reason"] == "holiday"


async def test_caller_hangs_up_during_the_notice(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(
        Channel(), CallerScript(hangup_when=hang_up_during("recording-notice")), timeout=1.0
    )
    assert rec.commands == opening("call0001")[:3]
    assert rec.hung_up and rec.closed_by_server
    r = await row(svc, "call0001")
    assert (r["decision"], r["end_reason"]) == ("abandoned", "caller-hangup")
    assert r["ended_at"] == OPEN_TIME


async def test_missing_prompt_is_logged_and_the_call_goes_on(
    make_service: Any, catalog: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sounds = {f"ivr-guard/ja/{pid}" for pid in catalog.texts if pid != "harassment-policy"}
    svc: Service = await make_service(sounds=sounds)
    with caplog.at_level(logging.WARNING):
        rec = await svc.fake.call(Channel(), CallerScript(digits=["1"]))
    assert rec.replies[3] == ["200 result=-1 endpos=0"]
    assert rec.variables["IVR_DECISION"] == "route"
    assert svc.app.inbound.missing_prompts == 1
    assert "prompt file missing" in caplog.text and "harassment-policy" in caplog.text


async def test_unknown_script_is_answered_and_logged(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    svc: Service = await make_service()
    with caplog.at_level(logging.WARNING):
        rec = await svc.fake.call(Channel(script="nosuch"))
    assert rec.commands == ['VERBOSE "ivr-guard: unknown AGI script" 1']
    assert rec.closed_by_server
    assert "unknown AGI script 'nosuch'" in caplog.text


async def test_script_query_string_is_ignored(make_service: Any) -> None:
    svc: Service = await make_service()
    rec = await svc.fake.call(Channel(script="inbound?lang=ja"), CallerScript(digits=["1"]))
    assert rec.variables["IVR_ROUTE"] == "sales"


async def test_database_unavailable_fails_open(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    svc: Service = await make_service(url="postgresql+asyncpg://ivr@127.0.0.1:1/ivr")
    with caplog.at_level(logging.ERROR):
        rec = await svc.fake.call(Channel(callerid="0312345678"), CallerScript(digits=["1"]))
    assert rec.commands == [
        *opening("call0001"),
        GET_MENU,
        *routed_tail("call0001", "sales", "PJSIP/sales"),
    ]
    assert svc.app.inbound.db_failures == 1
    assert "database unavailable, blocklist and caps fail open" in caplog.text
    # The call's writes are kept for when the database returns, not dropped.
    assert svc.app.journal.backlog == 2 and svc.app.journal.dropped == 0


def test_call_ids_are_unique_and_name_a_recording_the_handoff_accepts() -> None:
    ids = [new_call_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(_CALL_FILE.match(f"{i}.wav") for i in ids)
