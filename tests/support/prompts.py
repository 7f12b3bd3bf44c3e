"""Sound files made on the spot."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path


def tone(path: Path, seconds: float, rate: int = 8000, channels: int = 1, amp: float = 0.3) -> None:
    frames = array("h")
    for i in range(int(seconds * rate)):
        frames.extend([int(amp * 32767 * math.sin(2 * math.pi * 440 * i / rate))] * channels)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
