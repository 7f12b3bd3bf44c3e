"""The service under test, in this process, and the moment the centre is open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.app import App
from ivr.clock import FixedClock
from ivr.config import Config
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
