"""The local function pools' limits as `make run` and `make load` read them from the
environment (docs/local-stack.md, "The local gateway")."""

from __future__ import annotations

import pytest

from local.functions import DEFAULT_MAX_ENVIRONMENTS, PoolLimits


def test_unset_the_cap_is_the_default_and_the_wait_is_the_functions_timeout():
    assert PoolLimits.from_env({}) == PoolLimits(DEFAULT_MAX_ENVIRONMENTS, None)
    assert PoolLimits.from_env({"LOCAL_MAX_ENVIRONMENTS": " ", "LOCAL_ENVIRONMENT_WAIT": ""}) == (
        PoolLimits(DEFAULT_MAX_ENVIRONMENTS, None)
    )


@pytest.mark.parametrize(
    ("env", "limits"),
    [
        ({"LOCAL_MAX_ENVIRONMENTS": "1"}, PoolLimits(1, None)),
        ({"LOCAL_MAX_ENVIRONMENTS": "16", "LOCAL_ENVIRONMENT_WAIT": "0"}, PoolLimits(16, 0.0)),
        ({"LOCAL_ENVIRONMENT_WAIT": "2.5"}, PoolLimits(DEFAULT_MAX_ENVIRONMENTS, 2.5)),
    ],
)
def test_set_they_are_read(env, limits):
    assert PoolLimits.from_env(env) == limits


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOCAL_MAX_ENVIRONMENTS", "0"),
        ("LOCAL_MAX_ENVIRONMENTS", "-2"),
        ("LOCAL_MAX_ENVIRONMENTS", "2.5"),
        ("LOCAL_MAX_ENVIRONMENTS", "four"),
        ("LOCAL_MAX_ENVIRONMENTS", "²"),
        ("LOCAL_ENVIRONMENT_WAIT", "-1"),
        ("LOCAL_ENVIRONMENT_WAIT", "nan"),
        ("LOCAL_ENVIRONMENT_WAIT", "inf"),
        ("LOCAL_ENVIRONMENT_WAIT", "1s"),
    ],
)
def test_a_bad_value_stops_with_a_line_naming_the_variable(variable, value):
    with pytest.raises(SystemExit, match=variable):
        PoolLimits.from_env({variable: value})
