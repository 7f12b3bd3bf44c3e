"""Names shared with the dialplan (`dialplan/*.conf`); a test checks both agree."""

from __future__ import annotations

import re

# AGI script names (the path of agi://host:port/NAME).
SCRIPT_INBOUND = "inbound"
SCRIPT_HANGUP = "hangup"  # hang-up handler of a routed call: its talk time
SCRIPT_HARASSMENT = "harassment"  # the agent's feature code
SCRIPTS = (SCRIPT_INBOUND, SCRIPT_HANGUP, SCRIPT_HARASSMENT)

# Dialplan contexts shipped in dialplan/ivr-guard.conf.
CONTEXT_INBOUND = "ivr-guard-inbound"
CONTEXT_FAILOPEN = "ivr-guard-failopen"
CONTEXT_HANGUP = "ivr-guard-hangup"
CONTEXT_FEATURE = "ivr-guard-feature-harassment"
CONTEXT_HARASSMENT_END = "ivr-guard-harassment-end"  # AMI Redirect target: prompt, hang up
CONTEXT_END = "ivr-guard-end"  # AMI Redirect target for a plain end: goodbye, hang up
CONTEXT_ANSWERED = "ivr-guard-answered"  # Dial U(): the agent's leg answered
CONTEXTS = (
    CONTEXT_ANSWERED,
    CONTEXT_INBOUND,
    CONTEXT_FAILOPEN,
    CONTEXT_HANGUP,
    CONTEXT_FEATURE,
    CONTEXT_HARASSMENT_END,
    CONTEXT_END,
)
# The features.conf applicationmap entry the dialplan enables on routed calls.
FEATURE_HARASSMENT = "ivrguard-harassment"

# Set by the dialplan before the inbound script: the number the caller dialled. Also passed as
# the script's first argument; read back when a caller's name broke the argument lines.
VAR_DIALLED = "IVR_DIALLED"

# Channel variables the inbound handler sets and the dialplan reads.
VAR_DECISION = "IVR_DECISION"  # "route", "hangup" or "failopen"
VAR_REASON = "IVR_REASON"  # why (menu, withheld, blocked, after-hours, ...)
VAR_ROUTE = "IVR_ROUTE"  # route name from the configuration
VAR_DIAL = "IVR_DIAL"  # what Dial() dials for that route
VAR_DIAL_TIMEOUT = "IVR_DIAL_TIMEOUT"  # seconds Dial() rings
VAR_CALL_ID = "IVR_CALL_ID"  # our call id
VAR_RECORDING = "IVR_RECORDING"  # recording file path, empty when not recorded
VAR_LIMIT_MS = "IVR_LIMIT_MS"  # Dial L() limit in ms; empty: no limit (exempt caller)
VAR_WARNING_MS = "IVR_WARNING_MS"  # warn this many ms before the end; empty: no warning
VAR_SOUNDS = "IVR_SOUNDS"  # <sound_prefix>/<language>: where the dialplan's prompts are
VAR_TOKEN = "IVR_TOKEN"  # noqa: S105 - a variable name: the hangup and harassment scripts pass it

DECISION_ROUTE = "route"
DECISION_HANGUP = "hangup"
DECISION_FAILOPEN = "failopen"  # the service gave up in time: the dialplan's default applies

DECISION_VARS = (
    VAR_CALL_ID,
    VAR_TOKEN,
    VAR_RECORDING,
    VAR_LIMIT_MS,
    VAR_WARNING_MS,
    VAR_SOUNDS,
    VAR_ROUTE,
    VAR_DIAL,
    VAR_DIAL_TIMEOUT,
    VAR_REASON,
    VAR_DECISION,
)

# Asterisk channel names (PJSIP/trunk-0000001a, Local/s@ctx-00000002;2): kept for AMI Redirect.
SAFE_CHANNEL = re.compile(r"^[A-Za-z0-9/@;:._+-]{1,80}$")
