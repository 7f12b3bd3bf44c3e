"""The configuration file's sections, each a validated, frozen model with its defaults."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ivr.core.caller import normalise
from ivr.core.caps import CapPolicy, RepeatAction
from ivr.core.categories import BY_CODE
from ivr.core.hours import WEEKDAYS, Interval, Schedule, parse_interval
from ivr.core.screening import Policy

_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_DIGITS = re.compile(r"^[0-9*#]+$")
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_VAR_SAFE = re.compile(r"^[^,\r\n\0|]+$")  # Dial() separates its arguments with commas


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgiConfig(_Model):
    listen: str = "127.0.0.1:4573"
    allow: list[str] = ["127.0.0.1/32", "::1/128"]
    environment_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    command_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    media_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    # The whole inbound script, notices and menu included; past it the call fails open.
    handler_deadline_s: Annotated[float, Field(gt=0)] = 180.0
    max_environment_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 32 * 1024
    # Open FastAGI connections, in all and from one address: one more is refused at once.
    # `ivr serve` keeps max_sessions below its descriptor limit, which it raises at start.
    max_sessions: Annotated[int, Field(ge=1, le=1_000_000)] = 4000
    max_sessions_per_peer: Annotated[int, Field(ge=1, le=1_000_000)] = 4000

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_hostport(v)
        return v

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: list[str]) -> list[str]:
        import ipaddress

        if not v:
            # FastAGI has no authentication: the allowlist is the only gate.
            raise ValueError(
                "must not be empty: list the Asterisk servers' addresses "
                '("0.0.0.0/0" allows anyone)'
            )
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network: {net!r}") from exc
        return v


class DatabaseConfig(_Model):
    url: str = ""  # empty: SQLite file ivr.sqlite3 under the data directory
    timeout_s: Annotated[float, Field(gt=0)] = 2.0

    @field_validator("url")
    @classmethod
    def _no_password_in_file(cls, v: str) -> str:
        if not v:
            return v
        try:
            password = make_url(v).password
        except ArgumentError:
            raise ValueError(
                "not a database URL (e.g. postgresql+asyncpg://user@host/db)"
            ) from None
        if password:
            raise ValueError(
                "a password in the file: put the whole URL in IVR_DATABASE_URL instead"
            )
        return v


class RouteConfig(_Model):
    dial: str
    timeout_s: Annotated[int, Field(ge=1, le=600)] = 30

    @field_validator("dial")
    @classmethod
    def _dial(cls, v: str) -> str:
        if not _VAR_SAFE.match(v):
            raise ValueError("dial string must not contain commas, '|' or line breaks")
        return v


class MenuConfig(_Model):
    prompt: str = "menu"
    options: dict[str, str] = {"1": "sales", "2": "support"}
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    max_digits: Annotated[int, Field(ge=1, le=10)] = 1
    invalid_prompt: str = "invalid-input"
    timeout_prompt: str = "no-input"
    giveup_prompt: str = "goodbye"
    fallback_route: str | None = None

    @field_validator("options")
    @classmethod
    def _options(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("the menu needs at least one option")
        for digits in v:
            if not _DIGITS.match(digits):
                raise ValueError(f"menu key {digits!r} is not made of 0-9, * and #")
        return v

    @model_validator(mode="after")
    def _lengths(self) -> MenuConfig:
        for digits in self.options:
            if len(digits) > self.max_digits:
                raise ValueError(f"option {digits!r} is longer than max_digits={self.max_digits}")
        return self


class HoursConfig(_Model):
    timezone: str = "Asia/Tokyo"
    mon: list[str] = ["09:00-18:00"]
    tue: list[str] = ["09:00-18:00"]
    wed: list[str] = ["09:00-18:00"]
    thu: list[str] = ["09:00-18:00"]
    fri: list[str] = ["09:00-18:00"]
    sat: list[str] = []
    sun: list[str] = []
    public_holidays: bool = True
    closed_dates: list[str] = ["12-29", "12-30", "12-31", "01-02", "01-03"]
    after_hours_prompt: str = "after-hours"
    holiday_prompt: str = "holiday"
    closed_route: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _ranges(cls, v: list[str]) -> list[str]:
        for r in v:
            parse_interval(r)
        return v

    @field_validator("closed_dates")
    @classmethod
    def _dates(cls, v: list[str]) -> list[str]:
        for d in v:
            _parse_closed(d)
        return v

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def schedule(self) -> Schedule:
        weekly: dict[str, tuple[Interval, ...]] = {
            day: tuple(parse_interval(r) for r in getattr(self, day)) for day in WEEKDAYS
        }
        full: set[date] = set()
        yearly: set[tuple[int, int]] = set()
        for d in self.closed_dates:
            parsed = _parse_closed(d)
            if isinstance(parsed, date):
                full.add(parsed)
            else:
                yearly.add(parsed)
        return Schedule(
            self.timezone, weekly, self.public_holidays, frozenset(full), frozenset(yearly)
        )


def _parse_closed(text: str) -> date | tuple[int, int]:
    """`YYYY-MM-DD` (that day) or `MM-DD` (that day every year)."""
    try:
        if len(text) == 5:
            d = date.fromisoformat(f"2000-{text}")  # a leap year, so 02-29 is accepted
            return (d.month, d.day)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a date YYYY-MM-DD or MM-DD: {text!r}") from exc


class ScreeningRule(_Model):
    withheld: Policy = Policy.REJECT
    unavailable: Policy = Policy.ALLOW


class ScreeningConfig(_Model):
    withheld: Policy = Policy.REJECT
    unavailable: Policy = Policy.ALLOW
    by_dialled: dict[str, ScreeningRule] = {}
    region: str = "JP"
    blocklist_min_prefix_len: Annotated[int, Field(ge=3, le=15)] = 6


class RecordingConfig(_Model):
    spool_dir: str = "/var/spool/asterisk/monitor/ivr-guard"
    # No "b": the recording starts before the notices, as evidence the caller heard them.
    mixmonitor_options: Annotated[str, Field(pattern=r"^[a-zA-Z]*$")] = ""
    enabled: bool = True

    @field_validator("spool_dir")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/") or not _VAR_SAFE.match(v):
            raise ValueError("spool_dir must be an absolute path without commas")
        return v


class StorageConfig(_Model):
    """Where recordings go after the call, and how long they stay."""

    backend: Literal["local", "s3"] = "local"
    local_dir: str = ""  # empty: <data_dir>/recordings
    s3_endpoint_url: str = ""  # empty: AWS; else MinIO or another S3-compatible server
    s3_bucket: str = ""
    s3_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]*$")] = "recordings"
    s3_region: str = "us-east-1"
    retention_days: Annotated[int, Field(ge=1, le=36500)] = 365
    scan_interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    settle_s: Annotated[float, Field(ge=0, le=3600)] = 2.0  # ended call: unchanged this long
    idle_s: Annotated[float, Field(gt=0, le=86400)] = 600.0  # no ended call: unchanged this long
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 10
    retry_initial_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    spool_alert_percent: Annotated[float, Field(gt=0, le=100)] = 90.0
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0  # per storage request
    purge_interval_hours: Annotated[float, Field(gt=0, le=24 * 7)] = 24.0

    @model_validator(mode="after")
    def _s3(self) -> StorageConfig:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("s3_bucket: needed when backend is 's3'")
        if self.local_dir and not self.local_dir.startswith("/"):
            raise ValueError("local_dir must be an absolute path")
        return self


class BlocklistConfig(_Model):
    default_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 180
    max_expiry_days: Annotated[int, Field(ge=1, le=3650)] = 730
    sweep_interval_s: Annotated[float, Field(gt=0)] = 60.0

    @model_validator(mode="after")
    def _order(self) -> BlocklistConfig:
        if self.default_expiry_days > self.max_expiry_days:
            raise ValueError("default_expiry_days is beyond max_expiry_days")
        return self


class CapsConfig(_Model):
    per_call_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 60.0
    warning_lead_s: Annotated[int, Field(ge=0, le=3600)] = 60
    daily_budget_minutes: Annotated[float, Field(ge=0, le=24 * 60)] = 60.0  # 0: no budget
    min_call_s: Annotated[int, Field(ge=1, le=3600)] = 60
    exhausted_route: str | None = None  # None: refuse with `daily-limit-reached`
    repeat_threshold: Annotated[int, Field(ge=0, le=1000)] = 3  # 0: no repeat limit
    repeat_window_hours: Annotated[float, Field(gt=0, le=24 * 31)] = 24.0
    repeat_action: RepeatAction = RepeatAction.ROUTE
    repeat_route: str | None = None  # None: default_route
    exempt_numbers: list[str] = []
    exempt_prefixes: list[str] = []

    @field_validator("exempt_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        for n in v:
            if normalise(n) is None:
                raise ValueError(f"not a phone number: {n!r}")
        return v

    @field_validator("exempt_prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        for n in v:
            if not re.fullmatch(r"\+[0-9]{2,15}", n):
                raise ValueError(f"prefix {n!r}: write it in E.164 form, for example +8150")
        return v

    @model_validator(mode="after")
    def _lead(self) -> CapsConfig:
        if self.warning_lead_s >= self.per_call_minutes * 60:
            raise ValueError("warning_lead_s must be shorter than per_call_minutes")
        return self

    def policy(self, region: str = "JP") -> CapPolicy:
        return CapPolicy(
            per_call_s=int(self.per_call_minutes * 60),
            warning_lead_s=self.warning_lead_s,
            daily_budget_s=int(self.daily_budget_minutes * 60),
            min_call_s=self.min_call_s,
            repeat_threshold=self.repeat_threshold,
            repeat_window_s=int(self.repeat_window_hours * 3600),
            repeat_action=self.repeat_action,
            exempt_numbers=frozenset(n for x in self.exempt_numbers if (n := normalise(x, region))),
            exempt_prefixes=tuple(self.exempt_prefixes),
        )


class AmiConfig(_Model):
    host: str = ""  # empty: no AMI (accounting from the hang-up handler only)
    port: Annotated[int, Field(ge=1, le=65535)] = 5038
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "ivr-guard"
    secret_file: str = ""  # else the IVR_AMI_SECRET environment variable
    secret: str = Field(default="", repr=False, exclude=True)  # filled in at load, never in TOML
    action_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    ping_interval_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    cdr_grace_s: Annotated[float, Field(ge=0, le=60)] = 2.0  # let the hang-up handler land first

    @field_validator("secret")
    @classmethod
    def _no_secret_in_file(cls, v: str) -> str:
        if v:
            raise ValueError("put the AMI secret in IVR_AMI_SECRET or secret_file, not here")
        return v


class MqttConfig(_Model):
    host: str = ""  # empty: alerts are only logged
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str = ""
    password: str = Field(default="", repr=False, exclude=True)  # IVR_MQTT_PASSWORD
    topic_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = (
        "ivr/alerts"
    )
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{0,23}$")] = ""
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0

    @field_validator("password")
    @classmethod
    def _no_password_in_file(cls, v: str) -> str:
        if v:
            raise ValueError("put the MQTT password in IVR_MQTT_PASSWORD, not here")
        return v


class HarassmentConfig(_Model):
    default_category: str = "abusive-language"
    propose_block: bool = True

    @field_validator("default_category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in BY_CODE:
            raise ValueError(f"unknown category {v!r} (see `ivr blocklist categories`)")
        return v


class ApiConfig(_Model):
    """The supervisors' API: a Unix socket that names its caller by the peer's OS user."""

    # "" = /run/ivr-guard/api.sock for the system install (data folder /var/lib/ivr-guard),
    # else api.sock in the data folder (one user running everything).
    socket: str = ""
    # The group that may connect (mode 0660); "" = the service's own group only.
    group: str = ""
    # HOST:PORT for the web console: HTTPS only, people log in (password and one-time code).
    listen: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    session_hours: Annotated[float, Field(gt=0, le=24)] = 8.0

    @field_validator("group")
    @classmethod
    def _group(cls, v: str) -> str:
        if v and not _USER_NAME.match(v):
            raise ValueError(f"{v!r}: not a group name")
        return v

    @model_validator(mode="after")
    def _tls(self) -> ApiConfig:
        if self.listen:
            parse_hostport(self.listen)
            if not (self.tls_cert and self.tls_key):
                raise ValueError(
                    "api.listen needs api.tls_cert and api.tls_key: logins go over TLS only"
                )
        return self


class AuditConfig(_Model):
    # How often the audit chain's head is published (log and MQTT `<prefix>/audit-anchor`)
    # when it has moved: `ivr audit verify --anchor SEQ:HASH` then proves the chain was not
    # rebuilt since.
    anchor_interval_s: Annotated[float, Field(gt=0, le=86400)] = 300.0


class MetricsConfig(_Model):
    listen: str = ""  # host:port for Prometheus' /metrics; empty: no endpoint

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        if v:
            parse_hostport(v)
        return v


class PromptsConfig(_Model):
    language: Literal["ja", "en"] = "ja"
    sound_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_/-]+$")] = "ivr-guard"
    # Asterisk's sounds folder, where `ivr doctor` looks for the installed prompt files.
    sounds_dir: str = "/var/lib/asterisk/sounds"


def parse_hostport(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
