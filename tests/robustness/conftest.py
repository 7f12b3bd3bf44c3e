"""Hypothesis profiles: a quick run in the test command, a long one on demand.

`IVR_FUZZ=long make test` (or `IVR_FUZZ=long .venv/bin/pytest tests/robustness -k fuzz`) runs
each property with 20,000 examples instead of 300.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quick",
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("IVR_FUZZ", "quick"))
