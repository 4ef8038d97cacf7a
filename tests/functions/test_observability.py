"""What the functions' Logger, Tracer and Event Handler may record: never an answer body as
trace metadata, never the raw event (its bearer token), whatever Powertools' switches in the
environment say."""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.functions import Function, event
from tests.support.inprocess import Deployed

# Any JWT-shaped text: the function never checks it (API Gateway did).
BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZW1iZXItMSJ9.c2lnbmF0dXJlLW9mLXRoZS10ZXN0"


class _Subsegment:
    def __init__(self, recorded: list[tuple[str, Any]]) -> None:
        self._recorded = recorded

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self._recorded.append((key, value))

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def add_exception(self, *_args: Any, **_kwargs: Any) -> None:
        pass


class _RecordingProvider:
    """Stands in for the X-Ray SDK under Powertools' Tracer: keeps each metadata put."""

    def __init__(self) -> None:
        self.metadata: list[tuple[str, Any]] = []

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **_kwargs: Any) -> Iterator[_Subsegment]:
        yield _Subsegment(self.metadata)

    def patch(self, modules: Any) -> None:
        pass


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> _RecordingProvider:
    """A Tracer whose provider records instead of sending to X-Ray, for the functions loaded
    by the test (which turns tracing on)."""
    from aws_lambda_powertools import Tracer

    from offer_state import observability

    provider = _RecordingProvider()
    # Tracer keeps its settings on the class: this test's settings go when it ends.
    monkeypatch.setattr(Tracer, "_config", copy.copy(Tracer._default_config))
    tracer = Tracer(
        service="offer-state-gateway",
        disabled=False,
        auto_patch=False,
        # Duck-typed: Powertools names its abstract BaseProvider, more than this test needs.
        provider=provider,  # type: ignore[arg-type]
    )
    monkeypatch.setattr(observability, "_tracer", lambda: tracer)
    return provider


@pytest.mark.parametrize("logical_id", ["GetStateFunction", "UpdateStateFunction"])
def test_no_answer_body_goes_into_a_trace(
    traced: _RecordingProvider,
    deployed: Deployed,
    get_state: Function,
    monkeypatch: pytest.MonkeyPatch,
    logical_id: str,
):
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")  # tracing on, as in Lambda
    # Powertools' own default (capture on), not the template's pin (tests/template checks it).
    for name in (
        "AWS_SAM_LOCAL",
        "POWERTOOLS_TRACE_DISABLED",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    ):
        monkeypatch.delenv(name, raising=False)
    function = deployed.load(logical_id)  # its handler wrapped by the tracer above
    if logical_id == "GetStateFunction":
        answer = function.call(event("GET", "/v1/offers/states/count"))
    else:
        answer = function.call(event("PUT", "/v1/offers/states", body={"stateChanges": []}))
    assert answer[0] in (200, 400)
    assert traced.metadata == []


@pytest.mark.parametrize(
    "switch", ["POWERTOOLS_DEV", "POWERTOOLS_LOGGER_LOG_EVENT"], ids=lambda s: s.lower()
)
def test_debug_switches_never_print_the_bearer_token(
    deployed: Deployed,
    get_state: Function,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    switch: str,
):
    from tests.support import leaks

    monkeypatch.setenv(switch, "true")  # as if someone turned it on in the console
    function = deployed.load("GetStateFunction")  # reads its switches at import
    request = event(
        "GET",
        "/v1/offers/states",
        query=[("offerId", "not-an-offer")],  # a 400: one log line at least
        headers={"authorization": f"Bearer {BEARER}"},
    )
    assert function.call(request)[0] == 400

    out, err = capsys.readouterr()
    sys.stdout.write(out)  # still seen by the leak check
    sys.stderr.write(err)
    recorded = leaks.take()
    for source, text in recorded:
        leaks.record(source, text)  # put back for the leak check
    logged = [text for source, text in recorded if source == "log line"]
    assert any("request failed" in line for line in logged)  # the log is where we look
    assert BEARER not in out + err + "".join(logged)
