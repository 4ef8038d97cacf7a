"""What every test folder shares: the fixtures of tests/support/fixtures.py (a pytest plugin),
and the leak check every test passes through."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator

import pytest

# Before anything imports them: the support modules' assertion helpers report as tests do.
pytest.register_assert_rewrite("tests.support")

from tests.support import leaks  # noqa: E402

pytest_plugins = ["tests.support.fixtures"]


def _record_gateway_logs() -> None:
    # The gateway's Logger binds the stdout it finds when first imported: import it now, at
    # session start, so it never holds a per-test capture that is closed afterwards; and
    # keep every line it writes for the leak check.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "offer-state-gateway")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OfferStateGateway")
    from offer_state.observability import logger

    recorder = leaks.LogRecorder()
    recorder.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(recorder)


_record_gateway_logs()


@pytest.fixture(autouse=True)
def no_leaks(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Every log line, metric, answer body and audit item a test produces is checked for
    secrets, AIR MILES tokens and clear collector numbers (tests/support/leaks.py)."""
    leaks.take()
    yield
    out, err = capsys.readouterr()
    sys.stdout.write(out)  # still shown with a failure report
    sys.stderr.write(err)
    found = [
        finding
        for source, text in [("stdout", out), ("stderr", err), *leaks.take()]
        for finding in leaks.findings(source, text)
    ]
    assert not found, "leaked: " + "; ".join(sorted(set(found)))


@pytest.fixture(autouse=True)
def no_snapstart_hooks_kept() -> Iterator[None]:
    """Every function module a test loads registers its SnapStart hooks with AWS's
    `snapshot_restore_py` (installed, as in Lambda's runtime), in lists that are the module's
    globals: emptied after each test, so they hold no test's service."""
    yield
    import snapshot_restore_py

    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()
