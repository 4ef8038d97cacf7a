"""An invocation's two deadlines, and when an AWS attempt may start (offer_state.deadlines)."""

from __future__ import annotations

import pytest

from offer_state.config import GatewaySettings
from offer_state.deadlines import ANSWER_SECONDS, InvocationDeadline
from tests.support.clock import FakeClock

ATTEMPT = 1.5


def _started(remaining_ms: int | None, clock: FakeClock) -> InvocationDeadline:
    return InvocationDeadline.start(remaining_ms, budget=8.0, reserve=2.0, clock=clock)


def test_the_time_lambda_leaves_sets_both_deadlines_under_the_budget():
    clock = FakeClock()
    deadline = _started(6_000, clock)
    assert deadline.upstream.remaining() == pytest.approx(4.0)  # 6 s left, 2 s kept in reserve
    assert deadline.final.remaining() == pytest.approx(6.0 - ANSWER_SECONDS)


def test_the_budget_caps_the_upstream_deadline():
    clock = FakeClock()
    deadline = _started(15_000, clock)
    assert deadline.upstream.remaining() == pytest.approx(8.0)
    assert deadline.final.remaining() == pytest.approx(15.0 - ANSWER_SECONDS)


def test_without_a_lambda_context_the_budget_and_the_reserve_apply():
    clock = FakeClock()
    deadline = _started(None, clock)
    assert deadline.upstream.remaining() == pytest.approx(8.0)
    assert deadline.final.remaining() == pytest.approx(10.0 - ANSWER_SECONDS)


def test_the_budget_counts_from_the_first_exchange_with_air_miles_not_from_the_start():
    clock = FakeClock()
    deadline = _started(15_000, clock)  # the hard end keeps 13 s for AIR MILES
    clock.advance(4.0)  # a cold environment's CPU work: building its AWS clients, say
    assert deadline.upstream.remaining() == pytest.approx(8.0)  # the budget is still whole
    deadline.upstream.begin()
    clock.advance(3.0)
    deadline.upstream.begin()  # a second exchange: the budget is not started again
    assert deadline.upstream.remaining() == pytest.approx(5.0)


def test_the_hard_end_caps_the_upstream_deadline_whether_or_not_the_budget_started():
    clock = FakeClock()
    deadline = _started(10_000, clock)  # AIR MILES must be done 8 s from now
    clock.advance(6.5)
    assert deadline.upstream.remaining() == pytest.approx(1.5)
    deadline.upstream.begin()
    assert deadline.upstream.remaining() == pytest.approx(1.5)


def test_timings_say_how_far_the_invocation_is():
    clock = FakeClock()
    deadline = _started(10_000, clock)
    clock.advance(1.25)
    assert deadline.timings() == {
        "elapsedMs": 1250,
        "upstreamLeftMs": 6750,
        "finalLeftMs": round((10.0 - ANSWER_SECONDS - 1.25) * 1000),
    }


def test_before_air_miles_an_aws_attempt_starts_before_its_deadline_leaving_one_for_the_outcome():
    clock = FakeClock()
    deadline = _started(10_000, clock)  # upstream in 8 s, final in 9.9 s
    assert deadline.fits_aws_attempt(ATTEMPT)
    clock.advance(9.9 - 2 * ATTEMPT + 0.01)  # two attempts no longer end by final
    assert not deadline.fits_aws_attempt(ATTEMPT)
    deadline.finishing()  # AIR MILES done with: the reserve may be used, one attempt fits
    assert deadline.fits_aws_attempt(ATTEMPT)
    clock.advance(ATTEMPT)
    assert not deadline.fits_aws_attempt(ATTEMPT)


def test_no_aws_attempt_starts_after_the_upstream_deadline_before_air_miles_is_done_with():
    clock = FakeClock()
    deadline = _started(30_000, clock)  # upstream in 8 s, final far later
    assert deadline.fits_aws_attempt(ATTEMPT, after=7.9)
    assert not deadline.fits_aws_attempt(ATTEMPT, after=8.0)


def test_the_reserve_holds_at_least_one_aws_attempt_and_the_answer():
    with pytest.raises(ValueError, match="deadline_reserve"):
        GatewaySettings.from_env(
            {
                "SECRET_ID": "s",
                "AUDIT_TABLE_NAME": "t",
                "DEADLINE_RESERVE_SECONDS": str(ATTEMPT),
            }
        )
