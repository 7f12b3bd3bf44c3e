"""The shipped prompt files: every prompt referred to anywhere, in both languages, playable."""

from __future__ import annotations

import re
from pathlib import Path

from ivr.config import FIXED_PROMPTS, build_config
from ivr.paths import project_root, prompts_dir
from ivr.prompts import LANGUAGES, PromptCatalog, inspect_wav, prompt_file_problems
from ivr.voice import kokoro_phonemes, sentences, sox_command
from tests.support.prompts import tone


def referred_prompts() -> set[str]:
    """Prompt ids named by the code, the default configuration and the dialplan files."""
    cfg = build_config({}, {})
    used = set(cfg.prompt_ids().values()) | set(FIXED_PROMPTS)
    for conf in (project_root() / "dialplan").glob("*.conf"):
        # Playback(${...SOUNDS...}/<id>) and LIMIT_*_FILE=${IVR_SOUNDS}/<id>
        used |= set(re.findall(r"SOUNDS[^/\n]*\}/([a-z][a-z0-9-]*)", conf.read_text()))
    return used


def test_every_referred_prompt_is_shipped_in_both_languages(catalog: PromptCatalog) -> None:
    used = referred_prompts()
    assert {"recording-notice", "goodbye", "time-warning", "harassment-end"} <= used
    assert used <= set(catalog.texts)
    for pid in used:
        for lang in LANGUAGES:
            info = inspect_wav(prompts_dir() / lang / f"{pid}.wav")
            assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2), (pid, lang)
            assert 0.5 < info.seconds < 20, (pid, lang, info.seconds)
            assert info.rms > 500, (pid, lang, info.rms)
    assert prompt_file_problems(catalog, prompts_dir()) == []


def test_the_check_names_each_kind_of_bad_file(tmp_path: Path) -> None:
    catalog = PromptCatalog({p: {"ja": "x", "en": "x"} for p in ("a", "b", "c", "d", "e")})
    for lang in LANGUAGES:
        (tmp_path / lang).mkdir()
        tone(tmp_path / lang / "a.wav", 1.0)
    tone(tmp_path / "ja" / "b.wav", 1.0, rate=44100, channels=2)
    tone(tmp_path / "en" / "b.wav", 1.0)
    tone(tmp_path / "ja" / "c.wav", 1.0, amp=0.0)
    tone(tmp_path / "en" / "c.wav", 25.0)
    (tmp_path / "ja" / "d.wav").write_bytes(b"RIFF not really")
    tone(tmp_path / "en" / "d.wav", 1.0)
    problems = "\n".join(prompt_file_problems(catalog, tmp_path))
    assert "a.wav" not in problems
    assert "ja/b.wav: 44100 Hz, 2 channel(s), 16-bit; Asterisk needs 8000 Hz mono" in problems
    assert "ja/c.wav: silent" in problems
    assert "en/c.wav: 25.0 s long" in problems
    assert "ja/d.wav: not a readable PCM WAV file" in problems
    assert "ja/e.wav: missing" in problems and "en/e.wav: missing" in problems


def test_generator_helpers() -> None:
    assert sentences("お電話ありがとうございます。失礼いたします。") == [
        "お電話ありがとうございます。",
        "失礼いたします。",
    ]
    assert sentences("Thank you. Goodbye.") == ["Thank you.", "Goodbye."]
    assert sentences("Open 9 a.m. to 6 p.m. on weekdays. Call again.") == [
        "Open 9 a.m. to 6 p.m. on weekdays.",
        "Call again.",
    ]
    # espeak-ng's American English diphthongs become Kokoro's single-letter phonemes.
    assert kokoro_phonemes("ɡˈo^ʊ ha^ʊ ɹˈe^ɪ  ma^ɪ\n") == "ɡˈO hW ɹˈA mI"
    cmd = sox_command(Path("in.wav"), Path("out.wav"))
    assert cmd[:3] == ["sox", "-G", "in.wav"] and ["-r", "8000", "-c", "1", "-b", "16"] == cmd[3:9]
