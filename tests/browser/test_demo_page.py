"""A partner's web page on the gateway, in a real browser: sign in, label a page of offers,
change states, "My saved offers", errors with their correlation id, and CORS."""

from __future__ import annotations

import itertools
import re
import uuid

from playwright.sync_api import Page, Route, expect

from local.demo_server import DemoServer
from local.sandbox.seed import CATALOGUE
from tests.browser.conftest import OUTPUT, wait_for_answers
from tests.support.stack import RunningStack, free_ports

MEMBER = "80000000110"
SEEDED_PAGE = 6  # offers 40 to 47: the seeded collector's states are there (8 per page)


def _demo_url(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.ports['DEMO_PORT']}/"


def _sign_in(page: Page, url: str, collector: str = MEMBER) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_test_id("collector-input").fill(collector)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("signed-in")).to_have_text(
        f"signed in as collector *******{collector[-4:]}"
    )
    expect(page.get_by_test_id("offer-row")).to_have_count(8)


def _row(page: Page, offer_id: str):
    return page.locator(f"[data-testid=offer-row][data-offer-id='{offer_id}']")


def _go_to_page(page: Page, number: int) -> None:
    for _ in range(number - 1):
        page.get_by_test_id("next-page").click()
    expect(page.get_by_test_id("page-number")).to_have_text(re.compile(f"^page {number} of"))


def test_sign_in_labels_each_page_with_one_call(page: Page, stack: RunningStack):
    _sign_in(page, _demo_url(stack))
    calls_before = stack.sandbox_control.calls()["get"]
    _go_to_page(page, SEEDED_PAGE)
    stored = stack.sandbox_control.states(MEMBER)
    for offer in CATALOGUE[40:48]:
        states = stored.get(offer.offer_id, {})
        row = _row(page, offer.offer_id)
        expect(row.get_by_test_id("label-saved")).to_have_count(
            1 if states.get("SAVE") == "SAVED" else 0
        )
        expect(row.get_by_test_id("label-opted-in")).to_have_count(
            1 if states.get("OPT_IN") == "OPTED_IN" else 0
        )

    # One call a page shown. Pages passed quickly may still have theirs on the way (only the
    # newest answer is drawn): counted once the page has every answer.
    wait_for_answers(page)
    assert stack.sandbox_control.calls()["get"] - calls_before == SEEDED_PAGE - 1
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "demo-page.png"))  # the README's picture (docs/)


def test_a_late_answer_for_an_earlier_page_does_not_replace_the_page_asked_last(
    page: Page, stack: RunningStack
):
    _sign_in(page, _demo_url(stack))
    # Page 2's call is held in the browser until page 3 is drawn: its answer comes last.
    second = f"offerId={CATALOGUE[8].offer_id},"
    held: list[Route] = []
    page.route(lambda url: second in url, lambda route: held.append(route))
    page.get_by_test_id("next-page").click()
    page.get_by_test_id("next-page").click()
    third = [offer.offer_id for offer in CATALOGUE[16:24]]
    rows = page.get_by_test_id("offer-row")
    expect(rows.first).to_have_attribute("data-offer-id", third[0])  # page 3 is drawn
    assert len(held) == 1  # and page 2's call is still unanswered
    held[0].continue_()
    answers = wait_for_answers(page)  # page 2's answer too, and the page has acted on it
    assert [a["status"] for a in answers if second in a["url"]] == [200]
    expect(page.get_by_test_id("page-number")).to_have_text(re.compile("^page 3 of"))
    assert [rows.nth(i).get_attribute("data-offer-id") for i in range(rows.count())] == third


def test_save_then_unsave_relabels_the_row_and_stores_each_state(page: Page, stack: RunningStack):
    _sign_in(page, _demo_url(stack))
    offer = CATALOGUE[1].offer_id
    _row(page, offer).get_by_test_id("save").click()
    expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(1)
    assert stack.sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    _row(page, offer).get_by_test_id("unsave").click()
    expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(0)
    assert stack.sandbox_control.states(MEMBER)[offer] == {"SAVE": "UNSAVED"}


def test_opting_in_labels_the_row_and_stores_opted_in(page: Page, stack: RunningStack):
    _sign_in(page, _demo_url(stack))
    offer = CATALOGUE[2].offer_id
    _row(page, offer).get_by_test_id("opt-in").click()
    expect(_row(page, offer).get_by_test_id("label-opted-in")).to_have_count(1)
    assert stack.sandbox_control.states(MEMBER)[offer] == {"OPT_IN": "OPTED_IN"}


def test_a_double_click_on_opt_in_changes_once(page: Page, stack: RunningStack):
    _sign_in(page, _demo_url(stack))
    offer = CATALOGUE[3].offer_id
    puts_before = stack.sandbox_control.calls()["put"]
    _row(page, offer).get_by_test_id("opt-in").dblclick()
    expect(_row(page, offer).get_by_test_id("label-opted-in")).to_have_count(1)
    # Both clicks' changes answered (the second may first meet the first in flight, then wait
    # and send again), and the pages drawn after them.
    wait_for_answers(
        page, "answers.filter((a) => a.method === 'PUT' && a.status < 300).length >= 2"
    )
    expect(page.get_by_test_id("error")).to_be_hidden()
    # The second click replayed the first.
    assert stack.sandbox_control.calls()["put"] - puts_before == 1


def _save_with_its_answer_lost(page: Page, stack: RunningStack, offer: str, applied: bool) -> None:
    """Signed in, a click on Save whose PUT AIR MILES stores (or not, as `applied` says)
    before the connection closes: OUTCOME_UNKNOWN."""
    _sign_in(page, _demo_url(stack))
    stack.sandbox_control.fault("put", "reset", applied=applied, count=1)
    _row(page, offer).get_by_test_id("save").click()


def test_a_change_whose_answer_is_lost_is_checked_and_shown_applied(
    page: Page, stack: RunningStack
):
    offer = CATALOGUE[6].offer_id
    _save_with_its_answer_lost(page, stack, offer, applied=True)
    expect(page.get_by_test_id("status")).to_contain_text("Checked: the change was applied")
    expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(1)
    expect(page.get_by_test_id("error")).to_be_hidden()
    assert stack.sandbox_control.calls()["put"] == 1


def test_a_change_whose_answer_is_lost_and_not_applied_is_sent_again_with_a_new_key(
    page: Page, stack: RunningStack
):
    offer = CATALOGUE[7].offer_id
    _save_with_its_answer_lost(page, stack, offer, applied=False)
    error = page.get_by_test_id("error")
    expect(error).to_contain_text("The change was not applied")
    expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(0)
    # Clicked again: a new key, so a new PUT (the old key would only replay the lost answer).
    _row(page, offer).get_by_test_id("save").click()
    expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(1)
    expect(error).to_be_hidden()
    assert stack.sandbox_control.calls()["put"] == 2
    assert stack.sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}


def test_the_saved_view_counts_and_pages_through_every_saved_or_opted_in_offer(
    page: Page, stack: RunningStack
):
    _sign_in(page, _demo_url(stack))
    for offer in (CATALOGUE[4].offer_id, CATALOGUE[5].offer_id):
        _row(page, offer).get_by_test_id("save").click()
        expect(_row(page, offer).get_by_test_id("label-saved")).to_have_count(1)
    saved = {
        o
        for o, s in stack.sandbox_control.states(MEMBER).items()
        if "SAVED" in s.values() or "OPTED_IN" in s.values()
    }
    expect(page.get_by_test_id("saved-count")).to_have_text(str(len(saved)))
    page.get_by_test_id("saved-view").click()
    shown: set[str | None] = set()  # a row without its id shows as None, and fails
    for number in itertools.count(1):
        # Drawn with its answer, as are its rows and whether "Next" is enabled.
        expect(page.locator("#saved-page-number")).to_have_text(re.compile(f"^page {number} of"))
        rows = page.get_by_test_id("saved-row")
        shown |= {rows.nth(i).get_attribute("data-offer-id") for i in range(rows.count())}
        if page.get_by_test_id("saved-next").is_disabled():
            break
        page.get_by_test_id("saved-next").click()
    assert shown == saved


def test_an_upstream_fault_is_shown_with_its_correlation_id(page: Page, stack: RunningStack):
    _sign_in(page, _demo_url(stack))
    stack.sandbox_control.fault("get", "status", status=500)
    page.get_by_test_id("next-page").click()
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("AIR MILES answered HTTP 500.")
    found = re.search(r"correlation id ([0-9a-f-]{36})", error.text_content() or "")
    assert found is not None
    correlation = str(uuid.UUID(found.group(1)))
    failed = [i for i in stack.audit_items() if i["correlationId"] == correlation]
    assert [(i["outcome"], i["upstreamStatus"]) for i in failed] == [("FAILED", 500)]


def test_a_page_from_an_origin_not_allowed_cannot_call_the_api(page: Page, stack: RunningStack):
    (port,) = free_ports(1)
    elsewhere = DemoServer(
        api_url=stack.url,
        issuer_url=f"http://127.0.0.1:{stack.ports['ISSUER_PORT']}",
        sandbox_url=stack.sandbox_control.url,
        port=port,
    ).start()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready=true]")
        page.get_by_test_id("sign-in").click()  # the token comes (the dev issuer serves anyone)
        error = page.get_by_test_id("error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("The API could not be reached")
        expect(page.get_by_test_id("offer-row")).to_have_count(0)
        assert [a["status"] for a in wait_for_answers(page)][-2:] == [0, 0]  # both calls failed
    finally:
        elsewhere.stop()
    assert stack.sandbox_control.calls()["get"] == 0  # the browser never sent the call


def _png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_the_readme_screenshot_is_one_the_tests_made():
    """docs/demo-page.png is a copy of test-output/demo-page.png (made by the first test)."""
    committed = OUTPUT.parent / "docs" / "demo-page.png"
    made = OUTPUT / "demo-page.png"
    assert committed.exists(), "copy test-output/demo-page.png to docs/demo-page.png"
    assert committed.stat().st_size < 200_000
    assert made.exists()
    assert _png_size(committed) == _png_size(made) == (1100, 760)
