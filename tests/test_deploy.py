"""The deployment kit: the Compose file's structure, the Dockerfile, the systemd unit.

No Docker engine runs here, so these tests check what can be checked without one: the files
parse, every file they refer to exists, and ports, paths, names and secrets agree with the
service's configuration and with the shipped Asterisk files.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from ivr.config import Config, build_config, parse_hostport
from ivr.paths import project_root
from tests.support.asterisk_conf import parse

ROOT = project_root()
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def env_defaults(environment: dict[str, str]) -> dict[str, str]:
    """What Compose substitutes with no .env file: `${VAR:-default}` → default."""
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in environment.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → source, for every volume of a service."""
    out = {}
    for spec in service.get("volumes", []):
        src, dst = spec.split(":")[:2]
        out[dst] = src
    return out


@pytest.fixture(scope="module")
def service_cfg(compose: dict[str, Any]) -> Config:
    """The configuration the ivr-guard container runs with: docker/ivr.toml plus its environment."""
    import tomllib

    env = env_defaults(compose["services"]["ivr-guard"]["environment"])
    data = tomllib.loads((DOCKER / "ivr.toml").read_text())
    return build_config(data, env)


def test_compose_has_every_service_with_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"asterisk", "ivr-guard", "postgres", "mosquitto", "minio"} <= set(services)
    for name, svc in services.items():
        if "build" in svc:
            assert (DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: pin the image ({image})"
    assert services["asterisk"]["image"].startswith("andrius/asterisk:22.")


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    named = set(compose["volumes"])
    for name, svc in compose["services"].items():
        for dst, src in mounts(svc).items():
            if src.startswith("."):
                assert (DOCKER / src).exists(), f"{name}: {src} -> {dst} does not exist"
            else:
                assert src in named, f"{name}: volume {src} is not declared"


def test_asterisk_gets_the_shipped_configuration_and_prompts(
    compose: dict[str, Any], service_cfg: Config
) -> None:
    m = mounts(compose["services"]["asterisk"])
    for conf in ("extensions", "pjsip", "manager", "features"):
        assert Path(m[f"/etc/asterisk/{conf}.conf"]).name == f"{conf}.conf"
    assert Path(m["/etc/asterisk/ivr-guard.conf"]) == Path("../dialplan/ivr-guard.conf")
    sounds = f"{service_cfg.prompts.sounds_dir}/{service_cfg.prompts.sound_prefix}"
    for lang in ("ja", "en"):
        assert m[f"{sounds}/{lang}"] == f"../prompts/{lang}"


def test_the_spool_is_shared_at_the_configured_path(
    compose: dict[str, Any], service_cfg: Config
) -> None:
    spool = service_cfg.recording.spool_dir
    ext = parse(ROOT / "asterisk-conf" / "extensions.conf")[0]["globals"]
    assert ext["IVR_GUARD_SPOOL"] == spool
    for name in ("asterisk", "ivr-guard"):
        assert mounts(compose["services"][name])[spool] == "spool", name


def test_agi_ami_and_metrics_ports_agree(compose: dict[str, Any], service_cfg: Config) -> None:
    guard = compose["services"]["ivr-guard"]
    # One network namespace: the loopback addresses of asterisk-conf/ hold unchanged.
    assert guard["network_mode"] == "service:asterisk"
    ext = parse(ROOT / "asterisk-conf" / "extensions.conf")[0]["globals"]
    assert ext["IVR_GUARD_AGI"] == f"agi://{service_cfg.agi.listen}"
    manager = parse(ROOT / "asterisk-conf" / "manager.conf")[0]
    assert service_cfg.ami.host == manager["general"]["bindaddr"] == "127.0.0.1"
    assert service_cfg.ami.port == int(manager["general"]["port"])
    assert service_cfg.ami.username in manager
    # The AMI secret the service gets by default is the sample manager.conf's.
    assert service_cfg.ami.secret == manager[service_cfg.ami.username]["secret"]
    _, metrics_port = parse_hostport(service_cfg.metrics.listen)
    assert f"{metrics_port}:{metrics_port}" in compose["services"]["asterisk"]["ports"]
    assert "5060:5060/udp" in compose["services"]["asterisk"]["ports"]


def test_database_broker_and_storage_point_at_their_services(
    compose: dict[str, Any], service_cfg: Config
) -> None:
    from sqlalchemy.engine import make_url

    services = compose["services"]
    url = make_url(service_cfg.database_url())
    pg = env_defaults(services["postgres"]["environment"])
    assert url.get_backend_name() == "postgresql" and url.host == "postgres"
    assert (url.username, url.password, url.database) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    assert url.port == 5432

    assert service_cfg.mqtt.host == "mosquitto"
    listener = re.search(r"^listener (\d+)", (DOCKER / "mosquitto.conf").read_text(), re.M)
    assert listener and int(listener.group(1)) == service_cfg.mqtt.port

    s = service_cfg.storage
    assert s.backend == "s3" and s.s3_endpoint_url == "http://minio:9000"
    guard_env = env_defaults(services["ivr-guard"]["environment"])
    minio = env_defaults(services["minio"]["environment"])
    assert guard_env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert guard_env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert f"local/{s.s3_bucket}" in " ".join(services["minio-init"]["entrypoint"])
    deps = services["ivr-guard"]["depends_on"]
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["minio-init"]["condition"] == "service_completed_successfully"


def test_no_secret_is_written_in_the_service_configuration() -> None:
    text = (DOCKER / "ivr.toml").read_text()
    assert not re.search(r"(?im)^\s*(secret|password|url)\s*=", text)


def dockerfile() -> list[tuple[str, str]]:
    lines = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [
        (ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln.strip() else "")
        for ln in lines
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def test_dockerfile_copies_what_exists_and_runs_the_service() -> None:
    instructions = dockerfile()
    base = next(arg for op, arg in instructions if op == "FROM")
    assert re.fullmatch(r"python:3\.11[-.\w]*", base), base
    for op, arg in instructions:
        if op == "COPY":
            *sources, _dest = arg.split()
            for src in sources:
                assert (ROOT / src).exists(), src
    env = " ".join(arg for op, arg in instructions if op == "ENV")
    assert "IVR_HOME=/opt/ivr-guard" in env
    cmd = next(arg for op, arg in instructions if op == "CMD")
    assert "ivr db upgrade && exec ivr serve" in cmd
    exposed = next(arg for op, arg in instructions if op == "EXPOSE").split()
    assert "4573" in exposed and "9464" in exposed


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DOCKER / "ivr-guard.service")
    svc = unit["Service"]
    start = shlex.split(svc["ExecStart"])
    assert start[0].endswith("/bin/ivr") and start[1:] == ["serve"]
    assert shlex.split(svc["ExecStartPre"])[1:] == ["db", "upgrade"]
    assert svc["User"] != "root" and svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict"
    writable = svc["ReadWritePaths"].split()
    assert build_config({}, {}).recording.spool_dir in writable
    assert unit["Install"]["WantedBy"] == "multi-user.target"
