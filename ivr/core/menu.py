"""The DTMF menu as a state machine: digits or a timeout in, the next step out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MenuSpec:
    prompt: str
    options: Mapping[str, str]  # digits -> route name
    retries: int = 2
    timeout_ms: int = 5000
    max_digits: int = 1
    invalid_prompt: str = "invalid-input"
    timeout_prompt: str = "no-input"
    fallback_route: str | None = None
    giveup_prompt: str = "goodbye"


@dataclass(frozen=True)
class Ask:
    """Play `before` (if any), then ask again with the menu prompt."""

    attempt: int
    before: str | None = None


@dataclass(frozen=True)
class Routed:
    route: str
    digits: str | None


@dataclass(frozen=True)
class GaveUp:
    """Attempts ran out: play `prompt`, then the fallback route or a hang-up."""

    prompt: str
    route: str | None
    last: str  # "invalid" or "timeout"


Step = Ask | Routed | GaveUp


def start() -> Ask:
    return Ask(attempt=1)


def step(spec: MenuSpec, ask: Ask, digits: str | None) -> Step:
    """What follows the caller's answer to `ask` (`None` is a timeout)."""
    if digits is not None and digits in spec.options:
        return Routed(spec.options[digits], digits)
    kind = "timeout" if digits is None else "invalid"
    before = spec.timeout_prompt if digits is None else spec.invalid_prompt
    if ask.attempt > spec.retries:
        return GaveUp(spec.giveup_prompt, spec.fallback_route, kind)
    return Ask(attempt=ask.attempt + 1, before=before)
