"""`ivr prompts`: generate the prompt WAV files from the catalog, and check the shipped ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivr.cli.common import EXIT_CONFIG, EXIT_FAILED, catalog, fail, out
from ivr.paths import prompts_dir
from ivr.prompts import LANGUAGES, prompt_file_problems

app = typer.Typer(no_args_is_help=True, help="Prompt sound files (Japanese and English).")

DirOpt = Annotated[
    Path | None, typer.Option("--dir", help="Folder holding <lang>/<id>.wav (default: prompts/).")
]


@app.command("build")
def build(
    only: Annotated[list[str] | None, typer.Argument(help="Prompt ids (default: all).")] = None,
    language: Annotated[
        list[str] | None, typer.Option("--lang", help="ja and/or en (default: both).")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="kokoro (neural) or openjtalk (OpenJTalk + espeak-ng).")
    ] = "kokoro",
    voice: Annotated[str, typer.Option("--voice", help="Kokoro speaker.")] = "jf_alpha",
    directory: DirOpt = None,
) -> None:
    """Synthesise the prompts offline (needs the `voice` extra, sox and espeak-ng)."""
    from ivr import voice as gen

    langs = language or list(LANGUAGES)
    if bad := [x for x in langs if x not in LANGUAGES]:
        raise fail(f"unknown language: {', '.join(bad)} (use ja or en)", EXIT_CONFIG)
    if engine not in ("kokoro", "openjtalk"):
        raise fail(f"unknown engine {engine!r} (use kokoro or openjtalk)", EXIT_CONFIG)
    try:
        synth = gen.kokoro_voice(voice) if engine == "kokoro" else gen.fallback_voice()
        written = gen.build(
            catalog(),
            directory or prompts_dir(),
            synth,
            langs,
            only or (),
            lambda line: out.print(line, highlight=False, markup=False),
        )
    except gen.VoiceError as exc:
        raise fail(f"cannot build prompts: {exc}", EXIT_FAILED) from None
    out.print(f"prompt files written: {len(written)}")


@app.command("check")
def check(directory: DirOpt = None) -> None:
    """Every catalog prompt exists in both languages, 8 kHz mono 16-bit, audible, under 20 s."""
    root = directory or prompts_dir()
    problems = prompt_file_problems(catalog(), root)
    for line in problems:
        out.print(line, highlight=False, markup=False)
    if problems:
        raise typer.Exit(EXIT_FAILED)
    out.print(f"{len(catalog().texts) * len(LANGUAGES)} prompt files OK in {root}")
