"""What the caller hears: the notices and the recording, prompts, and the DTMF menu."""

from __future__ import annotations

from ivr.agi.session import AgiSession
from ivr.config import Config
from ivr.core import menu
from ivr.logs import Log
from ivr.prompts import sound_path

log = Log("ivr.inbound")


class Announcer:
    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._sounds = (cfg.prompts.sound_prefix, cfg.prompts.language)
        self._menu = cfg.menu_spec()
        self.missing_prompts = 0

    async def announce(self, session: AgiSession, call_id: str, record: bool) -> str | None:
        """Answer; when the call goes on (`record`), record it and play both notices. The
        recording's path, if one was started."""
        await session.answer()
        if not record:
            return None
        rec, path = self._cfg.recording, None
        if rec.enabled:
            path = f"{rec.spool_dir}/{call_id}.wav"  # our id only: never caller data
            options = f"{path},{rec.mixmonitor_options}" if rec.mixmonitor_options else path
            await session.exec("MixMonitor", options)
        await self.play(session, "recording-notice")
        await self.play(session, "harassment-policy")
        return path

    async def play(self, session: AgiSession, prompt_id: str) -> None:
        file = sound_path(*self._sounds, prompt_id)
        result = await session.stream_file(file)
        if result.missing:
            self.missing_prompts += 1
            log.warning("prompt file missing in Asterisk: %s", file)

    async def menu(self, session: AgiSession) -> menu.Routed | menu.GaveUp:
        """Ask until the caller chose a route or the attempts ran out."""
        spec = self._menu
        prompt_file = sound_path(*self._sounds, spec.prompt)
        ask = menu.start()
        while True:
            if ask.before:
                await self.play(session, ask.before)
            digits = await session.get_data(prompt_file, spec.timeout_ms, spec.max_digits)
            step = menu.step(spec, ask, digits)
            if not isinstance(step, menu.Ask):
                return step
            ask = step
