"""The shipped dialplan: asterisklint passes, and it agrees with ivr.names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ivr import names
from ivr.paths import project_root

ROOT = project_root()
DIALPLAN = ROOT / "dialplan" / "ivr-guard.conf"
LINT = Path(sys.executable).with_name("asterisklint")
# Hints that only make sense for a whole extensions.conf, not for a file it includes.
INCLUDED_FILE_HINTS = "H_DP_GENERAL_MISPLACED,H_DP_GLOBALS_MISPLACED"


def _lint(conf: Path, cwd: Path, ignore: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ALINT_IGNORE=ignore)
    return subprocess.run(
        [str(LINT), "dialplan-check", conf.name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_asterisklint_on_every_dialplan_file(tmp_path: Path) -> None:
    files = sorted((ROOT / "dialplan").glob("*.conf"))
    assert files
    for f in files:
        shutil.copy(f, tmp_path / f.name)
        res = _lint(tmp_path / f.name, tmp_path, INCLUDED_FILE_HINTS)
        assert res.returncode == 0 and not res.stdout.strip(), f"{f.name}: {res.stdout}{res.stderr}"


def test_asterisklint_on_the_sample_extensions_conf(tmp_path: Path) -> None:
    # Laid out as in /etc/asterisk: extensions.conf with the dialplan file beside it.
    for f in (ROOT / "dialplan").glob("*.conf"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(ROOT / "asterisk-conf" / "extensions.conf", tmp_path / "extensions.conf")
    res = _lint(tmp_path / "extensions.conf", tmp_path)
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_lint_catches_a_broken_dialplan(tmp_path: Path) -> None:
    bad = tmp_path / "extensions.conf"
    bad.write_text("[general]\n\n[globals]\n\n[x]\nexten => s,1,NoOp(unbalanced\n")
    assert _lint(bad, tmp_path).returncode != 0


def test_dialplan_agrees_with_names() -> None:
    text = DIALPLAN.read_text()
    contexts = set(re.findall(r"^\[([^\]]+)\]", text, re.M))
    assert set(names.CONTEXTS) <= contexts
    for script in names.SCRIPTS:
        assert f"/{script}," in text, f"AGI script {script} not called"
    for var in (names.VAR_DECISION, names.VAR_DIAL, names.VAR_DIAL_TIMEOUT):
        assert "${" + var + "}" in text
    # The feature code is enabled on the agent's leg only (Dial's U() routine), never inherited
    # from the caller's channel, where the caller could press it.
    assert f"Set(DYNAMIC_FEATURES={names.FEATURE_HARASSMENT})" in text
    assert "__DYNAMIC_FEATURES" not in text
    assert f"U({names.CONTEXT_ANSWERED}^" in text
    for value in (names.DECISION_ROUTE, names.DECISION_HANGUP):
        assert f'"{value}"' in text
    # Every IVR_* variable the dialplan reads is one the service sets (or the dialplan's own).
    read = set(re.findall(r"\$\{(IVR_[A-Z_]+)\}", text))
    own = {v for v in read if v.startswith("IVR_GUARD_")} | {
        names.VAR_DIALLED,
        "IVR_ANSWERED",
        "IVR_LEFT_AT",
        "IVR_ENDED_AT",
    }
    assert read - own <= set(names.DECISION_VARS)


def test_sample_extensions_conf_defines_the_globals_the_dialplan_reads() -> None:
    globals_used = set(re.findall(r"\$\{(IVR_GUARD_[A-Z_]+)\}", DIALPLAN.read_text()))
    sample = (ROOT / "asterisk-conf" / "extensions.conf").read_text()
    defined = set(re.findall(r"^(IVR_GUARD_[A-Z_]+)=", sample, re.M))
    assert globals_used <= defined
