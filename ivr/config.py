"""The one TOML configuration file: loaded, validated at start, every setting defaulted."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ivr.config_sections import (
    _ROUTE_NAME,
    _USER_NAME,
    AgiConfig,
    AmiConfig,
    ApiConfig,
    AuditConfig,
    BlocklistConfig,
    CapsConfig,
    ConfigError,
    DatabaseConfig,
    HarassmentConfig,
    HoursConfig,
    MenuConfig,
    MetricsConfig,
    MqttConfig,
    PromptsConfig,
    RecordingConfig,
    RouteConfig,
    ScreeningConfig,
    ScreeningRule,
    StorageConfig,
    _Model,
    parse_hostport,
)
from ivr.core.caller import normalise
from ivr.core.decision import Rules
from ivr.core.menu import MenuSpec
from ivr.core.review import SYSTEM_ACTOR, Role
from ivr.core.screening import CapRouting, ClosedPolicy, ScreeningPolicy
from ivr.prompts import PromptCatalog

__all__ = [
    "AgiConfig",
    "AmiConfig",
    "BlocklistConfig",
    "CapsConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "HarassmentConfig",
    "HoursConfig",
    "MenuConfig",
    "MetricsConfig",
    "MqttConfig",
    "PromptsConfig",
    "RecordingConfig",
    "RouteConfig",
    "ScreeningConfig",
    "ScreeningRule",
    "StorageConfig",
    "build_config",
    "load_config",
    "parse_hostport",
]


def _default_routes() -> dict[str, RouteConfig]:
    return {
        "sales": RouteConfig(dial="PJSIP/sales"),
        "support": RouteConfig(dial="PJSIP/support"),
        "operator": RouteConfig(dial="PJSIP/operator"),
    }


class Config(_Model):
    data_dir: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    agi: AgiConfig = AgiConfig()
    database: DatabaseConfig = DatabaseConfig()
    routes: dict[str, RouteConfig] = Field(default_factory=_default_routes)
    default_route: str = "operator"
    menu: MenuConfig = MenuConfig()
    hours: HoursConfig = HoursConfig()
    screening: ScreeningConfig = ScreeningConfig()
    recording: RecordingConfig = RecordingConfig()
    storage: StorageConfig = StorageConfig()
    prompts: PromptsConfig = PromptsConfig()
    blocklist: BlocklistConfig = BlocklistConfig()
    caps: CapsConfig = CapsConfig()
    ami: AmiConfig = AmiConfig()
    mqtt: MqttConfig = MqttConfig()
    harassment: HarassmentConfig = HarassmentConfig()
    metrics: MetricsConfig = MetricsConfig()
    api: ApiConfig = ApiConfig()
    audit: AuditConfig = AuditConfig()
    supervisors: dict[str, Role] = Field(default_factory=dict)

    @field_validator("supervisors")
    @classmethod
    def _user_names(cls, v: dict[str, Role]) -> dict[str, Role]:
        for name in v:
            if not _USER_NAME.match(name) or name == SYSTEM_ACTOR:
                raise ValueError(f"supervisor {name!r}: not an OS user name")
        return v

    @field_validator("routes")
    @classmethod
    def _route_names(cls, v: dict[str, RouteConfig]) -> dict[str, RouteConfig]:
        for name in v:
            if not _ROUTE_NAME.match(name):
                raise ValueError(f"route name {name!r}: use a-z, 0-9, '-' and '_'")
        return v

    @model_validator(mode="after")
    def _references(self) -> Config:
        refs = {"default_route": self.default_route}
        refs |= {f"menu.options.{k}": r for k, r in self.menu.options.items()}
        if self.menu.fallback_route:
            refs["menu.fallback_route"] = self.menu.fallback_route
        if self.hours.closed_route:
            refs["hours.closed_route"] = self.hours.closed_route
        if self.caps.exhausted_route:
            refs["caps.exhausted_route"] = self.caps.exhausted_route
        if self.caps.repeat_route:
            refs["caps.repeat_route"] = self.caps.repeat_route
        for key, route in refs.items():
            if route not in self.routes:
                raise ValueError(f"{key}: unknown route {route!r} (not in [routes])")
        return self

    # Derived views for the core -----------------------------------------------------------
    def menu_spec(self) -> MenuSpec:
        m = self.menu
        return MenuSpec(
            prompt=m.prompt,
            options=dict(m.options),
            retries=m.retries,
            timeout_ms=int(m.timeout_s * 1000),
            max_digits=m.max_digits,
            invalid_prompt=m.invalid_prompt,
            timeout_prompt=m.timeout_prompt,
            fallback_route=m.fallback_route,
            giveup_prompt=m.giveup_prompt,
        )

    def screening_default(self) -> ScreeningPolicy:
        return ScreeningPolicy(self.screening.withheld, self.screening.unavailable)

    def screening_by_dialled(self) -> dict[str, ScreeningPolicy]:
        out: dict[str, ScreeningPolicy] = {}
        for number, rule in self.screening.by_dialled.items():
            key = normalise(number, self.screening.region) or number
            out[key] = ScreeningPolicy(rule.withheld, rule.unavailable)
        return out

    def decision_rules(self) -> Rules:
        """What `core.decision` needs of the configuration."""
        c = self.caps
        routing = CapRouting(
            c.exhausted_route, c.repeat_action, c.repeat_route or self.default_route
        )
        return Rules(
            self.screening_default(),
            self.screening_by_dialled(),
            self.closed_policy(),
            c.policy(self.screening.region),
            routing,
        )

    def closed_policy(self) -> ClosedPolicy:
        h = self.hours
        return ClosedPolicy(h.after_hours_prompt, h.holiday_prompt, h.closed_route)

    def prompt_ids(self) -> dict[str, str]:
        """Every prompt the configuration refers to, keyed by the setting naming it."""
        m, h = self.menu, self.hours
        return {
            "menu.prompt": m.prompt,
            "menu.invalid_prompt": m.invalid_prompt,
            "menu.timeout_prompt": m.timeout_prompt,
            "menu.giveup_prompt": m.giveup_prompt,
            "hours.after_hours_prompt": h.after_hours_prompt,
            "hours.holiday_prompt": h.holiday_prompt,
        }

    def data_path(self) -> Path:
        return Path(self.data_dir)

    def storage_dir(self) -> Path:
        return (
            Path(self.storage.local_dir)
            if self.storage.local_dir
            else self.data_path() / "recordings"
        )

    def api_socket(self) -> Path:
        """Where the supervisors' API listens (`IVR_API_SOCKET` overrides it)."""
        if self.api.socket:
            return Path(self.api.socket)
        if Path(self.data_dir) == SYSTEM_DATA_DIR:
            return SYSTEM_API_SOCKET
        return self.data_path() / "api.sock"

    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path() / 'ivr.sqlite3'}"


# Prompts the handlers play themselves, whatever the configuration says.
FIXED_PROMPTS = (
    "time-warning",
    "time-limit-reached",
    "daily-limit-reached",
    "repeat-limit",
    "repeat-refused",
    "harassment-end",
    "recording-notice",
    "harassment-policy",
    "anonymous-rejected",
    "unavailable-rejected",
    "blocked",
    "transferring",
)


SYSTEM_DATA_DIR = Path("/var/lib/ivr-guard")
SYSTEM_API_SOCKET = Path("/run/ivr-guard/api.sock")


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return SYSTEM_DATA_DIR
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(base) / "ivr-guard"


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        # Whole-model checks name their key in the message already.
        lines.append(f"{key}: {msg}" if key else msg)
    return "\n".join(lines)


def build_config(
    data: Mapping[str, Any], env: Mapping[str, str], catalog: PromptCatalog | None = None
) -> Config:
    """Validate a parsed TOML mapping; `IVR_DATA_DIR` overrides `data_dir` and
    `IVR_DATABASE_URL` (which may carry a password) overrides `[database] url`."""
    try:
        cfg = Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc)) from None
    data_dir = env.get("IVR_DATA_DIR") or cfg.data_dir or str(default_data_dir())
    cfg = cfg.model_copy(
        update={
            "data_dir": data_dir,
            "ami": cfg.ami.model_copy(update={"secret": _ami_secret(cfg.ami, env)}),
            "mqtt": cfg.mqtt.model_copy(update={"password": env.get("IVR_MQTT_PASSWORD", "")}),
            "database": cfg.database.model_copy(
                update={"url": env.get("IVR_DATABASE_URL") or cfg.database.url}
            ),
            "api": cfg.api.model_copy(
                update={"socket": env.get("IVR_API_SOCKET") or cfg.api.socket}
            ),
        }
    )
    if catalog is not None:
        for key, pid in cfg.prompt_ids().items():
            if pid not in catalog:
                raise ConfigError(f"{key}: prompt {pid!r} is not in the prompt catalog")
    return cfg


def _ami_secret(ami: AmiConfig, env: Mapping[str, str]) -> str:
    """The AMI secret: IVR_AMI_SECRET, or a file only its owner can read."""
    if env.get("IVR_AMI_SECRET"):
        return env["IVR_AMI_SECRET"]
    if not ami.secret_file:
        return ""
    path = Path(ami.secret_file)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"ami.secret_file: cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"ami.secret_file: {path} is readable by others; chmod 600 it")
    return text


def load_config(
    path: Path | None, env: Mapping[str, str], catalog: PromptCatalog | None = None
) -> Config:
    """Read `path` (or `IVR_CONFIG`, or nothing: all defaults) and validate it."""
    if path is None and env.get("IVR_CONFIG"):
        path = Path(env["IVR_CONFIG"])
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return build_config(data, env, catalog)
