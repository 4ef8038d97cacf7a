"""The in-process functions of tests/functions, for the fuzz and abuse tests."""

from tests.functions.conftest import aws, deployed, get_state, update_state

__all__ = ["aws", "deployed", "get_state", "update_state"]
