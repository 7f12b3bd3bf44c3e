"""The prompt catalog: prompt ids with their Japanese and English texts."""

from __future__ import annotations

import tomllib
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
