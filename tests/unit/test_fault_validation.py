"""The sandbox's fault validation, answer by answer: its sentences are the control API's 400s,
a contract checked from outside (tests/sandbox/test_control_api.py checks them over HTTP)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.sandbox.faults import validate

FIND = {"endpoint": "find"}
PUT = {"endpoint": "put"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "The body must be a JSON object."),
        ("find", "The body must be a JSON object."),
        (None, "The body must be a JSON object."),
        (
            {**FIND, "mode": "timeout", "colour": "red", "when": 1},
            "Unknown fault fields: colour, when.",
        ),
        ({"mode": "timeout"}, "endpoint must be one of token, health, find, get, count, put, *."),
        (
            {"endpoint": "search", "mode": "timeout"},
            "endpoint must be one of token, health, find, get, count, put, *.",
        ),
        (
            {**FIND},
            "mode must be one of status, delay, timeout, malformed, reset, truncate, drip, "
            "badGzip.",
        ),
        (
            {**FIND, "mode": "badgzip"},
            "mode must be one of status, delay, timeout, malformed, reset, truncate, drip, "
            "badGzip.",
        ),
        # status: required by mode status, checked whenever given
        ({**FIND, "mode": "status"}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": None}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": "503"}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": True}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": 503.0}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": 99}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "status", "status": 600}, "status must be an integer from 100 to 599."),
        ({**FIND, "mode": "timeout", "status": 600}, "status must be an integer from 100 to 599."),
        # delayMs: required by mode delay, checked whenever given
        ({**FIND, "mode": "delay"}, "delayMs must be a number of milliseconds, 0 or more."),
        (
            {**FIND, "mode": "delay", "delayMs": -1},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "delay", "delayMs": -0.5},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "delay", "delayMs": "10"},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "delay", "delayMs": False},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "reset", "delayMs": -1},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        # intervalMs: mode drip only, 1 or more
        ({**FIND, "mode": "truncate", "intervalMs": 200}, "intervalMs goes with mode drip only."),
        ({**FIND, "mode": "malformed", "intervalMs": 200}, "intervalMs goes with mode drip only."),
        (
            {**FIND, "mode": "drip", "intervalMs": 0},
            "intervalMs must be a number of milliseconds, 1 or more.",
        ),
        (
            {**FIND, "mode": "drip", "intervalMs": 0.5},
            "intervalMs must be a number of milliseconds, 1 or more.",
        ),
        (
            {**FIND, "mode": "drip", "intervalMs": -5},
            "intervalMs must be a number of milliseconds, 1 or more.",
        ),
        (
            {**FIND, "mode": "drip", "intervalMs": True},
            "intervalMs must be a number of milliseconds, 1 or more.",
        ),
        (
            {**FIND, "mode": "drip", "intervalMs": "200"},
            "intervalMs must be a number of milliseconds, 1 or more.",
        ),
        # applied: a boolean, endpoint put, modes delay, timeout, reset, truncate or drip
        ({**PUT, "mode": "reset", "applied": "yes"}, "applied must be true or false."),
        ({**PUT, "mode": "reset", "applied": 1}, "applied must be true or false."),
        ({**FIND, "mode": "status", "status": 503, "applied": 1}, "applied must be true or false."),
        (
            {"endpoint": "get", "mode": "truncate", "applied": True},
            "applied goes with endpoint put only (it is about a PUT's change).",
        ),
        (
            {"endpoint": "*", "mode": "truncate", "applied": False},
            "applied goes with endpoint put only (it is about a PUT's change).",
        ),
        (
            {**PUT, "mode": "status", "status": 503, "applied": True},
            "applied goes with mode delay, timeout, reset, truncate or drip only.",
        ),
        (
            {**PUT, "mode": "malformed", "applied": False},
            "applied goes with mode delay, timeout, reset, truncate or drip only.",
        ),
        (
            {**PUT, "mode": "badGzip", "applied": True},
            "applied goes with mode delay, timeout, reset, truncate or drip only.",
        ),
        # count: a positive integer
        ({**FIND, "mode": "timeout", "count": 0}, "count must be a positive integer."),
        ({**FIND, "mode": "timeout", "count": 1.5}, "count must be a positive integer."),
        ({**FIND, "mode": "timeout", "count": "2"}, "count must be a positive integer."),
        ({**FIND, "mode": "timeout", "count": True}, "count must be a positive integer."),
        # retryAfter: whole seconds, 0 or more; an explicit null is not its absence
        (
            {**FIND, "mode": "timeout", "retryAfter": -1},
            "retryAfter must be a whole number of seconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "timeout", "retryAfter": 1.5},
            "retryAfter must be a whole number of seconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "timeout", "retryAfter": None},
            "retryAfter must be a whole number of seconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "timeout", "retryAfter": False},
            "retryAfter must be a whole number of seconds, 0 or more.",
        ),
        # several faults in one spec: the first field in this order is the one named
        (
            {**FIND, "mode": "status", "status": 1, "delayMs": -1, "count": 0},
            "status must be an integer from 100 to 599.",
        ),
        (
            {**FIND, "mode": "delay", "intervalMs": 5, "applied": "x", "count": 0},
            "delayMs must be a number of milliseconds, 0 or more.",
        ),
        (
            {**FIND, "mode": "reset", "intervalMs": 5, "applied": "x", "count": 0},
            "intervalMs goes with mode drip only.",
        ),
        (
            {**FIND, "mode": "reset", "applied": True, "count": 0, "retryAfter": -1},
            "applied goes with endpoint put only (it is about a PUT's change).",
        ),
        (
            {**FIND, "mode": "reset", "count": 0, "retryAfter": -1},
            "count must be a positive integer.",
        ),
    ],
)
def test_validate_refuses_with_the_sentence_of_the_first_bad_field(spec: Any, message: str):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate(spec)


@pytest.mark.parametrize(
    ("spec", "stored"),
    [
        (
            {**FIND, "mode": "status", "status": 503},
            {**FIND, "mode": "status", "status": 503, "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "status", "status": 100, "count": 2, "retryAfter": 0},
            {**FIND, "mode": "status", "status": 100, "count": 2, "remaining": 2, "retryAfter": 0},
        ),
        (
            {"endpoint": "*", "mode": "delay", "delayMs": 0},
            {"endpoint": "*", "mode": "delay", "delayMs": 0, "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "delay", "delayMs": 2.5, "status": 599},
            {**FIND, "mode": "delay", "status": 599, "delayMs": 2.5, "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "timeout", "status": None, "delayMs": None, "intervalMs": None},
            {**FIND, "mode": "timeout", "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "timeout", "delayMs": 5},
            {**FIND, "mode": "timeout", "delayMs": 5, "retryAfter": 1},
        ),
        ({**FIND, "mode": "drip"}, {**FIND, "mode": "drip", "intervalMs": 200, "retryAfter": 1}),
        (
            {**FIND, "mode": "drip", "intervalMs": 1},
            {**FIND, "mode": "drip", "intervalMs": 1, "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "drip", "intervalMs": None},
            {**FIND, "mode": "drip", "intervalMs": 200, "retryAfter": 1},
        ),
        (
            {**FIND, "mode": "malformed", "applied": None},
            {**FIND, "mode": "malformed", "retryAfter": 1},
        ),
        (
            {**PUT, "mode": "truncate"},
            {**PUT, "mode": "truncate", "applied": False, "retryAfter": 1},
        ),
        (
            {**PUT, "mode": "timeout", "applied": True},
            {**PUT, "mode": "timeout", "applied": True, "retryAfter": 1},
        ),
        (
            {**PUT, "mode": "drip", "applied": True, "intervalMs": 2.5},
            {**PUT, "mode": "drip", "intervalMs": 2.5, "applied": True, "retryAfter": 1},
        ),
        (
            {**PUT, "mode": "delay", "delayMs": 10},
            {**PUT, "mode": "delay", "delayMs": 10, "applied": False, "retryAfter": 1},
        ),
        ({**PUT, "mode": "reset"}, {**PUT, "mode": "reset", "applied": False, "retryAfter": 1}),
        ({**PUT, "mode": "badGzip"}, {**PUT, "mode": "badGzip", "retryAfter": 1}),
        (
            {**PUT, "mode": "status", "status": 503, "applied": None},
            {**PUT, "mode": "status", "status": 503, "retryAfter": 1},
        ),
        (
            {"endpoint": "token", "mode": "reset", "count": None, "retryAfter": 7},
            {"endpoint": "token", "mode": "reset", "retryAfter": 7},
        ),
    ],
)
def test_validate_stores_the_fault_with_its_defaults(spec: dict[str, Any], stored: dict[str, Any]):
    fault = validate(spec)

    assert fault == stored
    assert list(fault) == list(stored)  # the order GET /_sandbox/faults lists the fields in
