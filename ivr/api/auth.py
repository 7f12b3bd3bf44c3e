"""Who is asking, and what they may do: the one authorization layer of the API.

A request is authenticated by a backend (today the Unix socket's peer credentials; a login for
the web console plugs in as another backend) and then authorized here, the same way whatever
the backend: the person's role comes only from the service's own `[supervisors]` table.
"""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
)
from starlette.requests import HTTPConnection

from ivr.api.logins import Logins
from ivr.api.peer import Peer
from ivr.clock import Clock
from ivr.core.review import NotPermitted, Role

READ = "read"  # a supervisor reading lists, logs and recordings' metadata
ACT = "act"  # a supervisor changing something (every change is audited)
ADMIN = "admin"  # recording a decision another supervisor gave on paper


@dataclass(frozen=True)
class Person(BaseUser):
    name: str
    role: Role | None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.name


def scopes(role: Role | None) -> list[str]:
    if role is None:
        return []
    return [READ, ACT, ADMIN] if role is Role.ADMIN else [READ, ACT]


class PeerCredentials(AuthenticationBackend):
    """The OS user of the process at the other end of the Unix socket."""

    def __init__(self, roster: Mapping[str, Role]) -> None:
        self._roster = dict(roster)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Person] | None:
        peer = conn.scope.get("state", {}).get("peer")
        if not isinstance(peer, Peer):
            return None
        try:
            name = pwd.getpwuid(peer.uid).pw_name
        except KeyError:
            name = f"uid {peer.uid}"  # no such user: never in the roster
        role = self._roster.get(name)
        return AuthCredentials(scopes(role)), Person(name, role)


class SessionTokens(AuthenticationBackend):
    """A web console's login: `Authorization: Bearer TOKEN` from `POST /v1/login`."""

    def __init__(self, logins: Logins, roster: Mapping[str, Role], clock: Clock) -> None:
        self._logins = logins
        self._roster = dict(roster)
        self._clock = clock

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, Person] | None:
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        session = self._logins.session(token.strip(), self._clock.now())
        if session is None:
            return None
        role = self._roster.get(session.name)
        return AuthCredentials(scopes(role)), Person(session.name, role)


class Either(AuthenticationBackend):
    """The first backend that knows the request's person (the socket's peer, or a login)."""

    def __init__(self, *backends: AuthenticationBackend) -> None:
        self._backends = backends

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        for backend in self._backends:
            found = await backend.authenticate(conn)
            if found is not None:
                return found
        return None


def require(person: BaseUser, granted: list[str], scope: str) -> Person:
    """The person, if they hold `scope`; else NotPermitted naming what is missing."""
    if not isinstance(person, Person):
        raise NotPermitted("not authenticated")
    if scope not in granted:
        if person.role is None:
            raise NotPermitted(
                f"OS user {person.name!r} is not a supervisor "
                "(see [supervisors] in the service's configuration)"
            )
        raise NotPermitted(f"{person.name!r} is a {person.role}; this needs an admin")
    return person
