"""The fake AMI in a process of its own, so that a flood of events costs the service's process
only what receiving them costs.

    python -m tests.robustness.ami_server PORT [--rate EVENTS_PER_S] [--seconds S]
        [--channel CHANNEL,UNIQUEID]...

It logs in the user `ivr-guard` with the secret `s3cret`, answers like `ivr.sim.fake_ami`, and
from half a second after the first login sends the captured Asterisk 22 events (Cdr left out: one
per call, not a flood) round-robin at `--rate` for `--seconds`, in batches every 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from ivr.paths import project_root
from ivr.sim.fake_ami import FakeAmi, split_messages

CAPTURE = project_root() / "tests" / "fixtures" / "asterisk22" / "ami-events.raw"
SKIP = (b"Event: Cdr", b"Event: FullyBooted", b"Event: SuccessfulAuth")


def flood_events() -> list[bytes]:
    messages = split_messages(CAPTURE.read_bytes())
    return [m for m in messages if m.startswith(b"Event: ") and not m.startswith(SKIP)]


async def main(port: int, rate: int, seconds: float, channels: list[str]) -> None:
    fake = FakeAmi("ivr-guard", "s3cret")
    fake.channels = [
        {"Channel": ch, "Uniqueid": uid, "Linkedid": uid}
        for ch, uid in (c.rsplit(",", 1) for c in channels)
    ]
    await fake.start("127.0.0.1", port)
    if rate:
        while fake.logins == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        events = itertools.cycle(flood_events())
        loop = asyncio.get_running_loop()
        per_tick = max(1, rate // 100)
        t0 = loop.time()
        sent = 0
        for tick in range(int(seconds * 100)):
            await fake.send(b"".join(next(events) for _ in range(per_tick)))
            sent += per_tick
            await asyncio.sleep(max(0.0, t0 + (tick + 1) / 100 - loop.time()))
        print(f"sent {sent} events in {loop.time() - t0:.2f} s", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=0.0)
    ap.add_argument("--channel", action="append", default=[])
    a = ap.parse_args()
    asyncio.run(main(a.port, a.rate, a.seconds, a.channel))
