"""The Unix socket the API listens on, and who is at the other end of each connection.

The kernel tells a Unix-socket server the uid of the process that connected (`SO_PEERCRED`);
it cannot be forged by the client. uvicorn does not pass it to the application, so the
protocol below reads it when the connection is made and puts it in the request's state.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("ivr.api")

SOCKET_MODE = 0o660  # the service's user and the supervisors' group
FOLDER_MODE = 0o755  # a folder the service creates for the socket (/run/ivr-guard)


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer | None:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


class PeerProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with the peer's credentials in `request.state.peer`."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        peer = peer_of(sock) if sock is not None and sock.family == socket.AF_UNIX else None
        # A copy per connection: the app state dict is shared by every connection.
        self.app_state = {**self.app_state, "peer": peer}


class SocketError(OSError):
    """The API socket cannot be made; the message says why."""


def bind(path: Path, group: str) -> socket.socket:
    """A listening Unix socket at `path`, mode 0660 in `group` (or the service's own group).

    A socket left by a stopped service is replaced; any other file there is refused, and so
    is a socket another service still answers on."""
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise SocketError(f"api.group: no group {group!r}") from None
    if not path.parent.exists():
        path.parent.mkdir(parents=True)
        path.parent.chmod(FOLDER_MODE)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocketError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a service that stopped
        else:
            raise SocketError(f"{path}: another service is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Bound under umask 077 (owner only), opened to the group once its group is set, so
        # there is no moment when it is wider than configured.
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        if gid != -1:
            os.chown(path, -1, gid)
        path.chmod(SOCKET_MODE)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise SocketError(f"{path}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock
