"""The prompt catalog: prompt ids with their Japanese and English texts."""

from __future__ import annotations

import math
import tomllib
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class PromptCatalog:
    texts: dict[str, dict[str, str]]

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.texts

    def text(self, prompt_id: str, language: str) -> str:
        return self.texts.get(prompt_id, {}).get(language, f"<{prompt_id}>")

    @classmethod
    def load(cls, path: Path) -> PromptCatalog:
        """Read `catalog.toml`; every prompt must have a text in every language."""
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        texts: dict[str, dict[str, str]] = {}
        for pid, langs in raw.items():
            if not isinstance(langs, dict):
                raise ValueError(f"{path}: [{pid}] must be a table of language = text")
            for lang in LANGUAGES:
                if not isinstance(langs.get(lang), str) or not langs[lang].strip():
                    raise ValueError(f"{path}: [{pid}] has no {lang} text")
            texts[pid] = {lang: str(langs[lang]) for lang in LANGUAGES}
        return cls(texts)


def sound_path(prefix: str, language: str, prompt_id: str) -> str:
    """The file name Asterisk plays: relative to its sounds directory, no extension."""
    return f"{prefix}/{language}/{prompt_id}"


# What Asterisk plays on a phone channel without transcoding, and what a caller will sit through.
PROMPT_RATE = 8000
MAX_PROMPT_S = 20.0
MIN_PROMPT_RMS = 200  # of 32767: well above dither, well below any speech


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int
    seconds: float
    rms: float


def inspect_wav(path: Path) -> WavInfo:
    """Format, length and loudness of a PCM WAV file (`wave.Error`/`OSError` if unreadable)."""
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
        info = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    samples = array("h", frames[: len(frames) - len(frames) % 2]) if info[2] == 2 else array("h")
    rms = math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0
    return WavInfo(info[0], info[1], info[2], info[3] / info[0] if info[0] else 0.0, rms)


def prompt_file_problems(catalog: PromptCatalog, root: Path) -> list[str]:
    """Each catalog prompt as `<root>/<lang>/<id>.wav`: 8 kHz mono 16-bit, audible, short."""
    problems: list[str] = []
    for pid in sorted(catalog.texts):
        for lang in LANGUAGES:
            path = root / lang / f"{pid}.wav"
            try:
                info = inspect_wav(path)
            except FileNotFoundError:
                problems.append(f"{path}: missing")
                continue
            except (OSError, wave.Error, EOFError) as exc:
                problems.append(f"{path}: not a readable PCM WAV file ({exc})")
                continue
            if (info.rate, info.channels, info.sample_width) != (PROMPT_RATE, 1, 2):
                got = f"{info.rate} Hz, {info.channels} channel(s), {8 * info.sample_width}-bit"
                problems.append(f"{path}: {got}; Asterisk needs {PROMPT_RATE} Hz mono 16-bit")
            elif info.rms < MIN_PROMPT_RMS:
                problems.append(f"{path}: silent (RMS {info.rms:.0f})")
            elif not 0 < info.seconds <= MAX_PROMPT_S:
                limit = f"keep prompts under {MAX_PROMPT_S:.0f} s"
                problems.append(f"{path}: {info.seconds:.1f} s long; {limit}")
    return problems
