"""The partner demo page in headless Chromium driven by Playwright for Python, against the local
stack on free ports (`stack`, tests/support/fixtures.py). The browser is the one `local.browser`
finds or provides (`make test` runs it first and says which)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import browser as chromium
from local.template import ROOT

# As the machine's probe runs it: no sandbox as root, and nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = ROOT / "test-output"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Found, or provided now (a bare `pytest` run gets what `make test` would have provided).
    executable = chromium.ensure().executable
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        OUTPUT.mkdir(exist_ok=True)
        opened.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()
