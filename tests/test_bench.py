"""The benchmark's caller mix: the outcomes it expects are the ones the service must give."""

from __future__ import annotations

from collections import Counter

from bench.seed import caller_mix


def test_each_caller_who_is_routed_calls_once_so_no_repeat_limit_applies() -> None:
    # 1,000 past calls seed 100 regulars; 2,000 calls want 300 regular slots.
    mix = caller_mix(entries=1_000, past_calls=1_000)
    specs = [mix() for _ in range(2_000)]
    routed = [s.callerid for s in specs if s.expect_decision == "route"]
    assert len(routed) == len(set(routed)) == 1_800
    regulars = [c for c in routed if c.startswith("090100")]
    assert len(regulars) == 100  # all of them, once each; their later slots went to new callers
    kinds = Counter(s.expect_reason for s in specs)
    assert kinds == {"menu": 1_800, "blocked": 200}


def test_without_seeded_rows_every_call_is_a_first_time_caller() -> None:
    mix = caller_mix(entries=0, past_calls=0)
    specs = [mix() for _ in range(40)]
    assert all(s.callerid.startswith("0905") and s.expect_decision == "route" for s in specs)
    assert len({s.callerid for s in specs}) == 40
