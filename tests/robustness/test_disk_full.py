"""Disk full, on real small filesystems (tmpfs mounts; the suite runs as root): the spool's disk
and the storage disk. Alerts are raised, no partial copy is ever recorded as stored, and once
there is room the recording is stored and verified with nothing lost."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.alerts import mqtt, subscribed
from tests.support.mqtt import Broker
from tests.support.recordings import age, routed_and_ended, row, storage_cfg
from tests.support.service import Service


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs and needs root: {res.stderr.strip()}")


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    _mount(path, size)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> int:
    """Write into `path` until the disk is full, as Asterisk's MixMonitor would; bytes written."""
    written = 0
    with path.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                written += 65536
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return written


async def test_full_spool_and_full_storage(
    make_service: Any, broker: Broker, tmp_path: Path
) -> None:
    with (
        small_disk(tmp_path / "spool", "2m") as spool,
        small_disk(tmp_path / "store", "256k") as store,
    ):
        cfg = storage_cfg(tmp_path, spool_alert_percent=95, local_dir=str(store))
        svc: Service = await make_service({**cfg, **mqtt(broker.port)})
        call_id = await routed_and_ended(svc)
        wav = spool / f"{call_id}.wav"
        data = b"RIFF" + hashlib.sha256(b"x").digest() * (600 * 1024 // 32)  # 600 KiB
        wav.write_bytes(data)
        # A fail-open recording grows until the spool's disk is full.
        fill(spool / "failopen-1795.77.wav")
        for p in spool.iterdir():
            age(p, svc, 3600)
        async with subscribed(broker.port) as inbox:
            await svc.app.handoff.scan_once()
            [spool_alert] = await inbox.wait("spool-usage")
            [full] = await inbox.wait("storage-full")
        assert spool_alert["percent"] >= 95 and spool_alert["spool"] == str(spool)
        assert full["recording"] in (wav.name, "failopen-1795.77.wav")
        assert "No space left on device" in full["error"]
        # Nothing partial was left in storage, and nothing is recorded as stored.
        assert [p for p in store.rglob("*") if p.is_file()] == []
        r = await row(svc, wav.name)
        assert r["state"] == "spooled" and r["storage_uri"] is None and r["attempts"] >= 1
        assert "No space left on device" in r["last_error"]
        assert wav.read_bytes() == data  # the spool copy is untouched

        # Room again: the next attempt stores and verifies it; the spool copy goes only then.
        (spool / "failopen-1795.77.wav").unlink()
        subprocess.run(["mount", "-o", "remount,size=4m", str(store)], check=True)
        svc.clock.at += timedelta(hours=1)
        await svc.app.handoff.scan_once()
        r = await row(svc, wav.name)
        assert r["state"] == "complete"
        stored = Path(r["storage_uri"].removeprefix("file://"))
        assert stored.read_bytes() == data and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert not wav.exists()
