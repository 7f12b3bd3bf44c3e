"""Configuration: defaults, validation errors that name the key, prompt references."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ivr.clock import SystemClock, clock_from_env, parse_clock
from ivr.config import FIXED_PROMPTS, ConfigError, build_config, load_config
from ivr.prompts import PromptCatalog


def test_defaults_need_no_file(catalog: PromptCatalog, tmp_path: Path) -> None:
    cfg = load_config(None, {"IVR_DATA_DIR": str(tmp_path)}, catalog)
    assert cfg.agi.listen == "127.0.0.1:4573"
    assert cfg.hours.timezone == "Asia/Tokyo"
    assert cfg.prompts.language == "ja"
    assert cfg.database_url() == f"sqlite+aiosqlite:///{tmp_path / 'ivr.sqlite3'}"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"agi": {"listen": "nohost"}}, "agi.listen"),
        ({"agi": {"allow": ["300.1.1.1"]}}, "agi.allow"),
        ({"menu": {"options": {"1": "nowhere"}}}, "menu.options.1"),
        ({"menu": {"options": {"x": "sales"}}}, "menu.options"),
        ({"menu": {"options": {"12": "sales"}}}, "menu"),
        ({"menu": {"timeout_s": 0}}, "menu.timeout_s"),
        ({"hours": {"mon": ["18:00-09:00"]}}, "hours.mon"),
        ({"hours": {"timezone": "Mars/Olympus"}}, "hours.timezone"),
        ({"hours": {"closed_dates": ["2026-13-01"]}}, "hours.closed_dates"),
        ({"routes": {"sales": {"dial": "PJSIP/a,b"}}}, "routes.sales.dial"),
        ({"screening": {"withheld": "maybe"}}, "screening.withheld"),
        ({"prompts": {"language": "fr"}}, "prompts.language"),
        ({"menu": {"prompt": "no-such-prompt"}}, "menu.prompt"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_errors_name_the_key(catalog: PromptCatalog, data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_config(data, {}, catalog)
    assert str(exc.value).startswith(key), str(exc.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[agi\nlisten=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, {})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", {})


def test_ivr_config_env_is_read(tmp_path: Path, catalog: PromptCatalog) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[agi]\nlisten = "0.0.0.0:14573"\n[prompts]\nlanguage = "en"\n')
    cfg = load_config(None, {"IVR_CONFIG": str(f)}, catalog)
    assert (cfg.agi.listen, cfg.prompts.language) == ("0.0.0.0:14573", "en")


def test_every_prompt_the_code_or_config_plays_is_in_the_catalog(catalog: PromptCatalog) -> None:
    cfg = build_config({}, {}, catalog)
    used = set(cfg.prompt_ids().values()) | set(FIXED_PROMPTS)
    assert used <= set(catalog.texts)
    for pid in catalog.texts:
        assert catalog.text(pid, "ja") and catalog.text(pid, "en")


def test_catalog_requires_both_languages(tmp_path: Path) -> None:
    f = tmp_path / "catalog.toml"
    f.write_text('[menu]\nja = "x"\n')
    with pytest.raises(ValueError, match="no en text"):
        PromptCatalog.load(f)


def test_the_documented_configuration_example_is_valid(catalog: PromptCatalog) -> None:
    import re
    import tomllib

    from ivr.core.review import Role
    from ivr.paths import project_root

    readme = (project_root() / "docs" / "operations.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None
    cfg = build_config(tomllib.loads(block.group(1)), {}, catalog)
    assert cfg.supervisors["root"] is Role.ADMIN and cfg.blocklist.default_expiry_days == 180


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"supervisors": {"bad name!": "supervisor"}}, "supervisors"),
        ({"supervisors": {"system": "admin"}}, "supervisors"),
        ({"supervisors": {"sato": "boss"}}, "supervisors.sato"),
        ({"blocklist": {"default_expiry_days": 400, "max_expiry_days": 365}}, "blocklist"),
    ],
)
def test_supervisor_and_blocklist_errors(
    catalog: PromptCatalog, data: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        build_config(data, {}, catalog)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"caps": {"repeat_route": "nowhere"}}, "caps.repeat_route: unknown route 'nowhere'"),
        ({"caps": {"exhausted_route": "nowhere"}}, "caps.exhausted_route: unknown route"),
        ({"caps": {"per_call_minutes": 1, "warning_lead_s": 60}}, "warning_lead_s must be shorter"),
        ({"caps": {"exempt_numbers": ["12ab"]}}, "caps.exempt_numbers: not a phone number"),
        ({"caps": {"exempt_prefixes": ["0312"]}}, "write it in E.164 form"),
        ({"ami": {"secret": "x"}}, "IVR_AMI_SECRET"),
        ({"mqtt": {"password": "x"}}, "IVR_MQTT_PASSWORD"),
        ({"mqtt": {"topic_prefix": "ivr/#"}}, "mqtt.topic_prefix"),
        ({"harassment": {"default_category": "rude"}}, "unknown category 'rude'"),
    ],
)
def test_caps_ami_mqtt_settings_are_checked(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config(data, {})


def test_ami_secret_file_must_be_private(tmp_path: Path) -> None:
    f = tmp_path / "ami.secret"
    f.write_text("s3cret\n")
    f.chmod(0o644)
    data = {"ami": {"host": "127.0.0.1", "secret_file": str(f)}}
    with pytest.raises(ConfigError, match="readable by others"):
        build_config(data, {})
    f.chmod(0o600)
    assert build_config(data, {}).ami.secret == "s3cret"
    assert build_config(data, {"IVR_AMI_SECRET": "env"}).ami.secret == "env"
    assert "s3cret" not in repr(build_config(data, {}))


def test_database_url_from_the_environment(catalog: PromptCatalog, tmp_path: Path) -> None:
    url = "postgresql+asyncpg://ivr:secret@db:5432/ivr"
    data = {"database": {"url": "sqlite+aiosqlite:////x.sqlite3"}}
    assert build_config(data, {"IVR_DATABASE_URL": url}, catalog).database_url() == url
    assert build_config(data, {}, catalog).database_url() == "sqlite+aiosqlite:////x.sqlite3"


@pytest.mark.parametrize(
    "spec",
    ["start:2026-11-24T10:00:00+09:00", "fixed:2026-11-24T10:00:00", "fixed:tuesday",
     "offset:soon", "offset:nan", "offset:1e12", "2026-11-24"],
)  # fmt: skip
def test_a_wrong_clock_is_refused_with_its_name(spec: str) -> None:
    with pytest.raises(ValueError, match="IVR_CLOCK"):
        parse_clock(spec)


def test_the_clock_comes_from_ivr_clock() -> None:
    assert isinstance(clock_from_env({}), SystemClock)
    fixed = clock_from_env({"IVR_CLOCK": "fixed:2026-11-24T10:00:00+09:00"})
    assert fixed.now() == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    # Two processes with one offset read the same day, one year ahead of the system's.
    a, b = (clock_from_env({"IVR_CLOCK": "offset:31536000"}) for _ in range(2))
    ahead = a.now() - datetime.now(UTC)
    assert timedelta(days=364.99) < ahead < timedelta(days=365.01)
    assert abs(a.now() - b.now()) < timedelta(seconds=1)
