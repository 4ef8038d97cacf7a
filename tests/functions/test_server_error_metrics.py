"""Every 5xx answer the functions give is counted, once, as `Handled5xx`: per function (what
the alarms that roll a deployment back divide by the function's invocations) and per route and
status (dashboards). Successes and 4xx answers are not."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.functions import SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed
from tests.support.metrics import emitted
from tests.support.sandbox_control import SandboxControl

SERVICE = "offer-state-gateway"


def _handled_5xx(capsys: pytest.CaptureFixture[str]) -> list[tuple[dict[str, str], float]]:
    out, err = capsys.readouterr()
    sys.stdout.write(out)  # written again: still shown, and still seen by the leak check
    sys.stderr.write(err)
    return emitted(out, "Handled5xx")


def _count_fails_unexpectedly(get_state: Function, **_: Any) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug")

    get_state.module.reads.count_states = broken


def _upstream_fails(sandbox_control: SandboxControl, **_: Any) -> None:
    sandbox_control.fault("count", "status", status=500)


def _upstream_times_out(sandbox_control: SandboxControl, **_: Any) -> None:
    sandbox_control.fault("count", "timeout")


def _secret_unreadable(deployed: Deployed, **_: Any) -> None:
    deployed.put_secret("not json")


@pytest.mark.parametrize(
    ("break_it", "status"),
    [
        (_count_fails_unexpectedly, 500),
        (_upstream_fails, 502),
        (_secret_unreadable, 503),
        (_upstream_times_out, 504),
    ],
)
def test_each_5xx_of_a_read_is_counted_per_function_and_per_route_and_status(
    get_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    capsys,
    break_it: Callable[..., None],
    status: int,
):
    break_it(get_state=get_state, deployed=deployed, sandbox_control=sandbox_control)

    got, _, _ = get_state.call(event("GET", "/v1/offers/states/count"))

    assert got == status
    assert _handled_5xx(capsys) == [
        ({"service": SERVICE, "function": "GetStateFunction"}, 1.0),
        ({"service": SERVICE, "route": "GET /v1/offers/states/count", "status": str(status)}, 1.0),
    ]


def test_a_5xx_of_a_write_is_counted_under_its_own_function_and_route(
    update_state: Function, sandbox_control: SandboxControl, capsys
):
    sandbox_control.fault("put", "status", status=500)
    offer = sandbox_control.untouched_offers(1)[0]

    got, _, _ = update_state.call(offer_event(offer, SAVE))

    assert got >= 500
    assert _handled_5xx(capsys) == [
        ({"service": SERVICE, "function": "UpdateStateFunction"}, 1.0),
        (
            {"service": SERVICE, "route": "PUT /v1/offers/{offerId}/states", "status": str(got)},
            1.0,
        ),
    ]


def test_successes_and_4xx_answers_are_not_counted(
    get_state: Function, sandbox_control: SandboxControl, capsys
):
    sandbox_control.fault("get", "status", status=404)
    offer = sandbox_control.untouched_offers(1)[0]
    answers = [
        get_state.call(event("GET", "/v1/offers/states/count")),  # 200
        get_state.call(event("GET", "/health", authorized=False)),  # 200
        get_state.call(event("GET", "/v1/offers/states", query=[("offerId", "bad")])),  # 400
        get_state.call(event("GET", "/v1/offers/states", query=[("offerId", offer)])),  # 404
        get_state.call(event("GET", "/v1/offers/states/count", collector=None)),  # 403
    ]

    assert [status for status, _, _ in answers] == [200, 200, 400, 404, 403]
    assert _handled_5xx(capsys) == []
