"""Names shared with the dialplan (`dialplan/*.conf`); a test checks both agree."""

from __future__ import annotations

# AGI script names (the path of agi://host:port/NAME).
SCRIPT_INBOUND = "inbound"
SCRIPTS = (SCRIPT_INBOUND,)

# Dialplan contexts shipped in dialplan/ivr-guard.conf.
CONTEXT_INBOUND = "ivr-guard-inbound"
CONTEXT_FAILOPEN = "ivr-guard-failopen"
CONTEXTS = (CONTEXT_INBOUND, CONTEXT_FAILOPEN)

# Channel variables the inbound handler sets and the dialplan reads.
VAR_DECISION = "IVR_DECISION"  # "route" or "hangup"
VAR_REASON = "IVR_REASON"  # why (menu, withheld, blocked, after-hours, ...)
VAR_ROUTE = "IVR_ROUTE"  # route name from the configuration
VAR_DIAL = "IVR_DIAL"  # what Dial() dials for that route
VAR_DIAL_TIMEOUT = "IVR_DIAL_TIMEOUT"  # seconds Dial() rings
VAR_CALL_ID = "IVR_CALL_ID"  # our call id
VAR_RECORDING = "IVR_RECORDING"  # recording file path, empty when not recorded

DECISION_ROUTE = "route"
DECISION_HANGUP = "hangup"

DECISION_VARS = (
    VAR_CALL_ID,
    VAR_RECORDING,
    VAR_ROUTE,
    VAR_DIAL,
    VAR_DIAL_TIMEOUT,
    VAR_REASON,
    VAR_DECISION,
)
