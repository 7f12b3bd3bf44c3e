"""A real Asterisk for the tests: found or built, configured in a temporary folder, started.

Where it comes from: `IVR_TEST_ASTERISK` (an installed `asterisk` binary), else a build of
`ASTERISK_TARBALL` by `tests/asterisk/build.sh`, cached outside the checkout. The shipped
`asterisk-conf/` and `dialplan/` are installed verbatim except the values an admin sets (the
`[globals]`, the AMI port and secret), plus test-only contexts (`TEST_CONTEXTS`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

from tests.support.ami import AmiTestClient
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tests" / "asterisk" / "build.sh"
AMI_SECRET = "guard-secret-for-tests"
TEST_AMI_USER, TEST_AMI_SECRET = "tester", "tester-secret"
# Each prompt is cut to this much of its real audio: the call flow is the same, only shorter.
PROMPT_SECONDS = 1.2
# Played whole: after a harassment end the caller's channel lives on through this prompt, and the
# tests check that no cap alert comes during it (the shipped prompt is 13 s).
WHOLE_PROMPTS = frozenset({"harassment-end"})

# Modules that open network ports or need hardware; nothing here uses them.
NOLOAD = (
    "chan_iax2", "chan_unistim", "chan_mgcp", "chan_skinny", "pbx_dundi", "res_pjsip",
    "chan_rtp", "res_hep", "res_phoneprov", "res_http_media_cache", "res_smdi",
    "app_voicemail", "res_calendar", "res_config_curl", "res_curl", "func_curl",
    "res_statsd", "res_chan_stats", "res_endpoint_stats", "cdr_custom", "cdr_csv",
    "cdr_sqlite3_custom", "cel_custom", "cel_sqlite3_custom", "res_musiconhold",
)  # fmt: skip

# Test-only contexts: the caller's side of a call and the agents' phones.
TEST_CONTEXTS = r"""
; The caller (the ;2 half of an originated Local channel): caller ID as the test chose it,
; then a call into the site's trunk context, as a carrier's call would arrive.
[test-caller]
exten => s,1,Set(CALLERID(num)=${TEST_NUM})
 same => n,ExecIf($["${TEST_B64}" != ""]?Set(CALLERID(name)=${BASE64_DECODE(${TEST_B64})}))
 same => n,ExecIf($["${TEST_PRES}" != ""]?Set(CALLERID(pres)=${TEST_PRES}))
 same => n,Dial(Local/${TEST_DIALLED}@from-trunk/n)
 same => n,Hangup()

; The caller's handset (the ;1 half): stays on the line; the test sends its digits over AMI.
[test-phone]
exten => s,1,Wait(600)
 same => n,Hangup()

; Agents answer and talk (a tone), so that the recording has the agent's audio in it.
[test-agents]
exten => _[a-z].,1,Answer()
 same => n,Milliwatt()
 same => n,Hangup()
"""


def find_asterisk() -> Path | None:
    """The `asterisk` binary to test with, building it when only a tarball is given."""
    installed = os.environ.get("IVR_TEST_ASTERISK", "")
    if installed:
        return Path(installed)
    tarball = os.environ.get("ASTERISK_TARBALL", "")
    if not tarball:
        return None
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), tarball], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"building Asterisk failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1]) / "sbin" / "asterisk"


@dataclass(frozen=True)
class Globals:
    """The `[globals]` an admin sets in extensions.conf."""

    agi: str
    default_dial: str
    spool: str
    sounds: str = "ivr-guard/ja"


def _edit_globals(text: str, g: Globals) -> str:
    values = {
        "IVR_GUARD_AGI": g.agi,
        "IVR_GUARD_DEFAULT_DIAL": g.default_dial,
        "IVR_GUARD_SPOOL": g.spool,
        "IVR_GUARD_SOUNDS": g.sounds,
    }
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key}=.*$", f"{key}={value}", text)
        assert n == 1, f"{key} not in the shipped extensions.conf"
    return text


def _short_prompts(target: Path, seconds: float) -> None:
    """The shipped prompts, each but WHOLE_PROMPTS cut to its first `seconds`, in Asterisk's
    sounds folder."""
    for lang in ("ja", "en"):
        out_dir = target / "ivr-guard" / lang
        out_dir.mkdir(parents=True)
        for src in sorted((ROOT / "prompts" / lang).glob("*.wav")):
            with wave.open(str(src), "rb") as r:
                params = r.getparams()
                whole = src.stem in WHOLE_PROMPTS
                frames = r.readframes(params.nframes if whole else int(params.framerate * seconds))
            with wave.open(str(out_dir / src.name), "wb") as w:
                w.setparams(params)
                w.writeframes(frames)


class RealAsterisk:
    """One Asterisk process with the shipped configuration, in `run_dir`."""

    def __init__(self, binary: Path, run_dir: Path) -> None:
        self.binary = binary
        self.prefix = binary.resolve().parents[1]
        self.run = run_dir
        self.ami_port = free_port()
        self.agi_port = free_port()
        self.spool = run_dir / "spool" / "monitor" / "ivr-guard"
        self.log = run_dir / "log" / "full"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def agi_url(self) -> str:
        return f"agi://127.0.0.1:{self.agi_port}"

    def configure(self) -> None:
        run, etc = self.run, self.run / "etc"
        for sub in ("etc", "varlib/sounds", "spool", "run", "log", "agi-bin"):
            (run / sub).mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)
        modules = self.prefix / "lib" / "asterisk" / "modules"
        (run / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {etc}\nastmoddir => {modules}\nastvarlibdir => {run}/varlib\n"
            f"astdbdir => {run}/varlib\nastkeydir => {run}/varlib\nastdatadir => {run}/varlib\n"
            f"astagidir => {run}/agi-bin\nastspooldir => {run}/spool\nastrundir => {run}/run\n"
            f"astlogdir => {run}/log\nastsbindir => {self.prefix}/sbin\n"
            "[options]\nverbose = 3\ndebug = 0\nnocolor = yes\n"
        )
        noload = "".join(f"noload => {m}.so\n" for m in NOLOAD)
        (etc / "modules.conf").write_text(f"[modules]\nautoload=yes\n{noload}")
        (etc / "logger.conf").write_text(
            "[general]\ndateformat=%F %T.%3q\n[logfiles]\nfull => notice,warning,error,verbose\n"
        )
        conf = ROOT / "asterisk-conf"
        extensions = _edit_globals(
            (conf / "extensions.conf").read_text(),
            Globals(self.agi_url, "Local/operator@test-agents/n", str(self.spool)),
        )
        (etc / "extensions.conf").write_text(extensions + "\n#include test-contexts.conf\n")
        (etc / "test-contexts.conf").write_text(TEST_CONTEXTS)
        shutil.copy(ROOT / "dialplan" / "ivr-guard.conf", etc / "ivr-guard.conf")
        shutil.copy(conf / "features.conf", etc / "features.conf")
        manager = (conf / "manager.conf").read_text()
        manager = re.sub(r"(?m)^port=\d+$", f"port={self.ami_port}", manager)
        manager = manager.replace("secret=change-this-secret", f"secret={AMI_SECRET}")
        manager += (
            f"\n[{TEST_AMI_USER}]\nsecret={TEST_AMI_SECRET}\ndeny=0.0.0.0/0.0.0.0\n"
            "permit=127.0.0.1/255.255.255.255\nread=all\nwrite=all\n"
        )
        (etc / "manager.conf").write_text(manager)
        _short_prompts(run / "varlib" / "sounds", PROMPT_SECONDS)

    async def start(self) -> None:
        self.configure()
        out = (self.run / "log" / "stdout").open("ab")
        self._proc = subprocess.Popen(
            [str(self.binary), "-C", str(self.run / "asterisk.conf"), "-f", "-n"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(600):
            if self._proc.poll() is not None:
                raise RuntimeError(f"Asterisk exited: {self.output()[-3000:]}")
            try:
                client = await self.ami()
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                # AMI answers before every module is loaded; FullyBooted says all are (it is
                # sent on login once Asterisk has booted, or when it does).
                await client.wait_for(lambda e: e.get("Event") == "FullyBooted", 60)
            finally:
                await client.close()
            return
        raise RuntimeError(f"Asterisk did not start: {self.output()[-3000:]}")

    async def ami(self) -> AmiTestClient:
        client = AmiTestClient("127.0.0.1", self.ami_port)
        await client.connect(TEST_AMI_USER, TEST_AMI_SECRET)
        return client

    def output(self) -> str:
        parts = []
        for name in ("stdout", "full"):
            p = self.run / "log" / name
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def cli(self, command: str) -> str:
        done = subprocess.run(
            [str(self.binary), "-C", str(self.run / "asterisk.conf"), "-rx", command],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        return done.stdout + done.stderr

    def terminate(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
