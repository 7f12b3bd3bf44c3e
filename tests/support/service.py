"""The service under test, in this process, and the moment the centre is open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.app import App
from ivr.clock import FixedClock
from ivr.config import Config
from ivr.files import write_private_file
from ivr.keys import KEY_FILE, CallTokens, service_key
from ivr.sim.fake_asterisk import FakeAsterisk

JST = ZoneInfo("Asia/Tokyo")


# A Tuesday, 10:00 in Tokyo: the centre is open.
OPEN_TIME = datetime(2026, 11, 24, 10, 0, tzinfo=JST)


@dataclass
class Service:
    app: App
    engine: AsyncEngine
    clock: FixedClock
    fake: FakeAsterisk
    cfg: Config


# The key `make_service` puts in place of a generated one (as an operator may provide the
# key file), so that expected command lines can carry a call's token (`token_of`).
TEST_KEY = bytes(range(32))


def place_test_key(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = data_dir / KEY_FILE
    if not key.exists():
        write_private_file(key, TEST_KEY)


def token_of(call_id: str) -> str:
    """The token of `call_id` under `TEST_KEY`."""
    return CallTokens(TEST_KEY).token(call_id)


def token_for(data_dir: str | Path, call_id: str) -> str:
    """The call's token, as the dialplan has it from the inbound script (`IVR_TOKEN`): from
    the service key in `data_dir`."""
    return CallTokens(service_key(Path(data_dir))).token(call_id)
