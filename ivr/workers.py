"""`ivr serve --workers N`: N service processes on one FastAGI port.

Each worker is a whole `ivr serve --worker I` process listening with SO_REUSEPORT, so the kernel
spreads Asterisk's connections over them. They share the database and nothing else: each has
its own journal, alert queue and AMI connection; worker 0 alone runs the blocklist expiry and
the recording hand-off and purge. This parent only starts them, passes SIGTERM and SIGINT on,
and stops the others when one fails.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from ivr.config import parse_hostport

log = logging.getLogger("ivr.workers")


def fixed_listen(listen: str) -> tuple[str, socket.socket | None]:
    """`listen` with port 0 replaced by a free port every worker can share, and the socket
    holding it (bound with SO_REUSEPORT, never listening) while the workers run."""
    host, port = parse_hostport(listen)
    if port:
        return listen, None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    port = holder.getsockname()[1]
    return (f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"), holder


def run_workers(n: int, serve_args: Sequence[str], listen: str) -> int:
    """Run `n` workers until a signal stops them or one of them exits; its exit status (or
    0 after a signal) is returned."""
    listen, holder = fixed_listen(listen)
    argv = [sys.executable, "-m", "ivr", "serve", *serve_args, "--agi-listen", listen]
    procs = [subprocess.Popen([*argv, "--worker", str(i)]) for i in range(n)]  # noqa: S603
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    log.info("started %d workers on %s: pids %s", n, listen, [p.pid for p in procs])
    status = 0
    try:
        while True:
            done = [p for p in procs if p.poll() is not None]
            if len(done) == n:
                break
            if done and not stopping:
                failed = done[0]
                status = failed.returncode if failed.returncode > 0 else 1
                log.error("worker pid %d exited (%s): stopping the others", failed.pid, status)
                forward(signal.SIGTERM, None)
            time.sleep(0.1)
    finally:
        if holder is not None:  # never listened, so it took no connection meanwhile
            holder.close()
    return status or max((1 if p.returncode < 0 else p.returncode) for p in procs)
