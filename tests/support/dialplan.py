"""Walk the shipped dialplan's decision steps: which way does a call go after the AGI?

Just enough of Asterisk's dialplan to follow `[ivr-guard-inbound]`'s `guard` extension:
`NoOp`, `Set`, `AGI` (its result is given), `GotoIf` on `"${VAR}" = "text"` comparisons,
`Goto`, and the first `Dial`, `Hangup` or jump to another context, where the walk stops.
Anything else is an error, so a dialplan change the walker does not understand fails loudly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.paths import project_root

DIALPLAN = project_root() / "dialplan" / "ivr-guard.conf"
_LINE = re.compile(r"^(?:exten => ([^,]+),1|\s*same => n(?:\(([^)]+)\))?),(\w+)\((.*)\)\s*$")


@dataclass(frozen=True)
class Step:
    label: str | None
    app: str
    args: str


def _extensions() -> dict[tuple[str, str], list[Step]]:
    out: dict[tuple[str, str], list[Step]] = {}
    context = ""
    current: list[Step] = []
    for raw in DIALPLAN.read_text().splitlines():
        line = raw.split(";", 1)[0].rstrip() if not raw.lstrip().startswith("same") else raw
        line = re.sub(r"\s;.*$", "", line)
        if m := re.match(r"^\[([^\]]+)\]", line):
            context = m.group(1)
            continue
        m = _LINE.match(line)
        if not m:
            continue
        exten, label, app, args = m.groups()
        if exten is not None:
            current = out.setdefault((context, exten), [])
        current.append(Step(label, app, args))
    return out


def _subst(text: str, variables: Mapping[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: variables.get(m.group(1), ""), text)


def _condition(expr: str, variables: Mapping[str, str]) -> bool:
    m = re.fullmatch(r'\$\["(.*)" (!=|=) "(.*)"\]', _subst(expr, variables))
    if not m:
        raise AssertionError(f"the walker cannot evaluate {expr!r}")
    left, op, right = m.groups()
    return (left == right) if op == "=" else (left != right)


def walk(agi_result: Mapping[str, str], agistatus: str = "SUCCESS") -> tuple[str, str]:
    """Where `guard` leads once the AGI set `agi_result`: ("Dial", its arguments),
    ("Hangup", ""), or ("Goto", "<context>,<exten>,<priority>")."""
    steps = _extensions()[("ivr-guard-inbound", "guard")]
    labels = {s.label: i for i, s in enumerate(steps) if s.label}
    variables: dict[str, str] = {}
    i = 0
    for _ in range(100):
        step = steps[i]
        i += 1
        if step.app == "NoOp":
            continue
        if step.app == "Set":
            name, _, value = step.args.partition("=")
            variables[name.lstrip("_")] = _subst(value, variables)
        elif step.app == "AGI":
            variables.update(agi_result)
            variables["AGISTATUS"] = agistatus
        elif step.app == "GotoIf":
            expr, _, target = step.args.rpartition("?")
            yes, _, no = target.partition(":")
            chosen = yes if _condition(expr, variables) else no
            if chosen:
                i = labels[chosen]
        elif step.app == "Goto":
            if "," in step.args:
                return "Goto", step.args
            i = labels[step.args]
        elif step.app == "Dial":
            return "Dial", _subst(step.args, variables)
        elif step.app == "Hangup":
            return "Hangup", ""
        else:
            raise AssertionError(f"the walker does not know {step.app}")
    raise AssertionError("the dialplan walk did not end")
