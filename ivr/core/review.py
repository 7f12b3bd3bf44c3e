"""The blocklist review state machine: who may do what to an entry, and what it becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ivr.core.blocklist import EntryStatus

SYSTEM_ACTOR = "system"


class Role(StrEnum):
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Action(StrEnum):
    PROPOSE = "propose"
    IMPORT = "import"
    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"
    RENEW = "renew"
    EXPIRE = "expire"


class ReviewError(Exception):
    """A request the rules refuse; `kind` picks the CLI exit code."""

    kind = "invalid"


class NotPermitted(ReviewError):
    kind = "not-permitted"


class Conflict(ReviewError):
    kind = "conflict"


@dataclass(frozen=True)
class Actor:
    """Who acts; `via` is the admin who acted on their behalf (recorded in the audit trail)."""

    name: str
    via: str | None = None


@dataclass(frozen=True)
class EntryState:
    status: EntryStatus
    proposed_by: str
    expires_at: datetime | None


def resolve_actor(
    person: str, on_paper: str | None, note: str, roster: Mapping[str, Role]
) -> Actor:
    """Who decides: the authenticated `person`, or, for an admin recording a decision given on
    paper, the supervisor named `on_paper`, with a note saying where it was given. `decide`
    then refuses it for the proposer, and for an entry the admin proposed."""
    role = roster.get(person)
    if role is None:
        raise NotPermitted(
            f"OS user {person!r} is not a supervisor (see [supervisors] in the configuration)"
        )
    if on_paper is None or on_paper == person:
        return Actor(person)
    if role is not Role.ADMIN:
        raise NotPermitted(f"--as is for admins only; {person!r} is not an admin")
    if on_paper not in roster or on_paper == SYSTEM_ACTOR:
        raise NotPermitted(f"{on_paper!r} is not a supervisor (see [supervisors])")
    if not note.strip():
        raise ReviewError(
            "a decision recorded for another supervisor needs --note saying where it was "
            "given (the signed form, its date)"
        )
    return Actor(on_paper, via=person)


def effective_status(state: EntryState, now: datetime) -> EntryStatus:
    """The stored status, with approved or pending entries past their expiry shown as expired."""
    if state.status in (EntryStatus.APPROVED, EntryStatus.PENDING) and (
        state.expires_at is not None and state.expires_at <= now
    ):
        return EntryStatus.EXPIRED
    return state.status


def decide(
    action: Action,
    state: EntryState,
    actor: Actor,
    now: datetime,
    *,
    note: str = "",
    expires_at: datetime | None = None,
) -> EntryStatus:
    """The entry's status after `action` by `actor`, or raise why it may not happen."""
    status = effective_status(state, now)
    own = actor.name == state.proposed_by
    if action in (Action.APPROVE, Action.REJECT):
        if status is not EntryStatus.PENDING:
            raise Conflict(f"cannot {action} an entry that is {status}")
        if own:
            raise NotPermitted(
                f"{actor.name!r} proposed this entry; another supervisor must {action} it"
            )
        if actor.via is not None and actor.via == state.proposed_by:
            raise NotPermitted(
                f"{actor.via!r} proposed this entry and may not record its {action} "
                "for another supervisor"
            )
        if action is Action.REJECT and not note.strip():
            raise ReviewError("reject needs --note saying why")
        return EntryStatus.APPROVED if action is Action.APPROVE else EntryStatus.REJECTED
    if action is Action.REVOKE:
        if status not in (EntryStatus.PENDING, EntryStatus.APPROVED):
            raise Conflict(f"cannot revoke an entry that is {status}")
        if not note.strip():
            raise ReviewError("revoke needs --note saying why")
        return EntryStatus.REVOKED
    if action is Action.RENEW:
        if status not in (EntryStatus.PENDING, EntryStatus.APPROVED):
            raise Conflict(f"cannot renew an entry that is {status}; propose it again")
        # Extending an active block is a new decision: not the proposer's alone.
        if status is EntryStatus.APPROVED and own:
            raise NotPermitted(
                f"{actor.name!r} proposed this entry; another supervisor must renew it"
            )
        if expires_at is None or expires_at <= now:
            raise ReviewError("the new expiry must be in the future")
        if state.expires_at is not None and expires_at <= state.expires_at:
            raise ReviewError("renew must move the expiry later; use revoke to end an entry early")
        return state.status
    if action is Action.EXPIRE:
        if state.status is EntryStatus.EXPIRED or status is not EntryStatus.EXPIRED:
            raise Conflict("only a pending or approved entry past its expiry expires")
        return EntryStatus.EXPIRED
    raise ReviewError(f"{action} does not apply to an existing entry")
