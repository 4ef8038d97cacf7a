"""The partner demo page in headless Chromium driven by Playwright for Python, against the local
stack on free ports (`stack`, tests/support/fixtures.py). The browser is the one `local.browser`
finds or provides (`make test` runs it first and says which)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local import browser as chromium
from local.template import ROOT
from tests.support.stack import longest_answer_seconds

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
# What every wait on the page (actions, `expect`, `wait_for_function`) may last before it
# fails: each waits for the answer to a call, so the stack's limit, not Playwright's defaults
# (5 s for `expect`): a first sign-in took 5.3 to 6.1 s with the tests capped at half a core.
PAGE_WAIT_MS = longest_answer_seconds() * 1000
# Run in every page before its own scripts: counts the calls the page makes with fetch() and
# the answers it has read, or failed to get. An answer is counted a task after its body was
# read (`text()` or `json()`), when the page's own code has acted on it (drawn it, or left it).
ANSWERS_SCRIPT = """
(() => {
  const calls = { made: 0, answers: [] };
  const fetch = window.fetch;
  window.fetch = function (resource, options) {
    calls.made += 1;
    const [method, url] = [options?.method ?? "GET", String(resource)];
    const answered = (status) => setTimeout(() => calls.answers.push({ method, url, status }));
    return fetch.call(this, resource, options).then(
      (response) => {
        for (const read of ["text", "json"]) {
          const original = response[read];
          response[read] = function () {
            const body = original.call(this);
            body.then(() => answered(response.status), () => answered(response.status));
            return body;
          };
        }
        return response;
      },
      (error) => {
        answered(0);
        throw error;
      },
    );
  };
  window.__calls = calls;
})();
"""


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=PAGE_WAIT_MS)
    # Found, or provided now (a bare `pytest` run gets what `make test` would have provided).
    executable = chromium.ensure().executable
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    context.add_init_script(ANSWERS_SCRIPT)
    opened = context.new_page()
    opened.set_default_timeout(PAGE_WAIT_MS)
    yield opened
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        OUTPUT.mkdir(exist_ok=True)
        opened.screenshot(path=str(OUTPUT / f"{request.node.name}.png"), full_page=True)
    context.close()


def wait_for_answers(page, until: str = "true") -> list[dict[str, Any]]:
    """Waits until the page has acted on the answer to every call it has made and `until` holds
    (JavaScript, on `answers`: {method, url, status} of each, oldest first; status 0: no answer);
    the answers. Calls not made yet are not waited for: wait first for what the page shows once
    it has made them (the page number a click sets, an answer drawn)."""
    page.wait_for_function(
        "() => { const { made, answers } = window.__calls;"
        f" return answers.length === made && ({until}); }}"
    )
    return page.evaluate("() => window.__calls.answers")
