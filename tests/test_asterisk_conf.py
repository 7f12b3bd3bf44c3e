"""The sample Asterisk configuration: it parses, and the AMI user has least privilege."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ivr.paths import project_root
from tests.support.asterisk_conf import LINT, parse

CONF = project_root() / "asterisk-conf"


def test_every_non_dialplan_file_passes_asterisklint() -> None:
    files = sorted(p for p in CONF.glob("*.conf") if p.name != "extensions.conf")
    assert {p.name for p in files} >= {
        "manager.conf",
        "features.conf",
        "pjsip.conf",
    }
    for f in files:
        sections, warnings = parse(f)
        assert sections, f.name
        assert warnings == "", f"{f.name}: {warnings}"


def test_the_lint_reports_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "manager.conf"
    bad.write_text("[general]\nenabled = yes\n")
    assert "W_WSH_VARSET" in parse(bad)[1]


def test_the_ami_user_has_least_privilege() -> None:
    sections, _ = parse(CONF / "manager.conf")
    user = sections["ivr-guard"]
    assert set(user["read"].split(",")) == {"call"}
    assert set(user["write"].split(",")) == {"call", "reporting"}
    forbidden = {"originate", "system", "command", "config", "all"}
    assert not forbidden & set(user["read"].split(",") + user["write"].split(","))
    assert user["deny"] == "0.0.0.0/0.0.0.0" and user["permit"].startswith("127.0.0.1/")
    assert sections["general"]["bindaddr"] == "127.0.0.1"
    # The user name and port agree with the service's defaults.
    from ivr.config import build_config

    cfg = build_config({}, {})
    assert cfg.ami.username in sections and int(sections["general"]["port"]) == cfg.ami.port


def test_the_feature_code_reaches_the_shipped_dialplan() -> None:
    from ivr import names

    sections, _ = parse(CONF / "features.conf")
    [(name, value)] = sections["applicationmap"].items()
    assert name == names.FEATURE_HARASSMENT
    assert value.endswith(f"Gosub({names.CONTEXT_FEATURE},s,1)")
    # Asterisk 22 ignores "/callee": the dialplan enables it on the agent's leg only.
    assert value.split(",")[1] == "self"


def pjsip_objects() -> dict[tuple[str, str], dict[str, str]]:
    """pjsip.conf's objects by (name, type): one name carries an endpoint, an aor and an auth."""
    res = subprocess.run(
        [sys.executable, "-c", LINT, "pjsip.conf"],
        cwd=CONF,
        capture_output=True,
        text=True,
        check=True,
    )
    objects: list[tuple[str, dict[str, str]]] = []
    for line in res.stdout.splitlines():
        section, key, value = line.split("\t")
        if key == "type" or not objects or objects[-1][0] != section:
            objects.append((section, {}))
        objects[-1][1][key] = value
    return {(name, attrs["type"]): attrs for name, attrs in objects}


def test_pjsip_has_an_endpoint_for_every_default_route_and_a_trunk() -> None:
    from ivr.config import build_config

    objects = pjsip_objects()
    cfg = build_config({}, {})
    for route in cfg.routes.values():
        tech, _, name = route.dial.partition("/")
        assert tech == "PJSIP"
        endpoint = objects[(name, "endpoint")]
        assert objects[(endpoint["aors"], "aor")] and objects[(endpoint["auth"], "auth")]
        assert endpoint["dtmf_mode"] == "rfc4733"  # the *0 feature code must reach Asterisk
    trunk = objects[("trunk", "endpoint")]
    assert trunk["context"] == "from-trunk"
    assert "[from-trunk]" in (CONF / "extensions.conf").read_text()
    assert objects[("trunk", "identify")]["endpoint"] == "trunk"
