"""An upstream that answers about the wrong collector or unasked offers is refused.

The sandbox never lies, so a tiny loopback server plays a broken AIR MILES here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from offer_state.client import Collector, MemberToken, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import UpstreamError
from tests.support.liar import LyingUpstream, entry, lying_upstream

ASKED = str(uuid.uuid4())
COLLECTOR = "80000000110"


@pytest.fixture
def liar() -> Iterator[tuple[OfferStateClient, LyingUpstream]]:
    with lying_upstream() as (url, handler):
        settings = ClientSettings.for_environment(url, token_url=url + "/oauth/token")
        credentials = ClientCredentials(client_id="c", client_secret=SecretStr("s"), audience="a")
        with OfferStateClient(settings, credentials) as client:
            yield client, handler


MEMBER = MemberToken("member-token-from-elsewhere")


def test_unknown_fields_are_ignored_and_a_truthful_answer_passes(liar):
    client, handler = liar
    handler.answer = {"offers": [entry(ASKED, COLLECTOR)], "next": "ignored"}
    offers = client.get(Collector(COLLECTOR), [ASKED])
    assert [str(o.offer_id) for o in offers] == [ASKED]


@pytest.mark.parametrize(
    "answer",
    [
        {"offers": [entry(ASKED, "80000000001")]},  # another collector
        {"offers": [entry(str(uuid.uuid4()), COLLECTOR)]},  # an offer not asked for
    ],
)
def test_get_answer_about_something_else_is_rejected(liar, answer):
    client, handler = liar
    handler.answer = answer
    with pytest.raises(UpstreamError) as caught:
        client.get(Collector(COLLECTOR), [ASKED])
    assert caught.value.status == 502


def test_find_answer_about_another_collector_is_rejected(liar):
    client, handler = liar
    handler.answer = {"offers": [entry(ASKED, "80000000001")]}
    with pytest.raises(UpstreamError):
        client.find(Collector(COLLECTOR))


def test_get_with_a_member_token_still_refuses_unasked_offers(liar):
    client, handler = liar
    handler.answer = {"offers": [entry(str(uuid.uuid4()), COLLECTOR)]}
    with pytest.raises(UpstreamError):
        client.get(MEMBER, [ASKED])


@pytest.mark.parametrize(
    "answer",
    [
        {"offers": "nope"},
        {"offers": [{"states": []}]},  # no offerId
        {
            "offers": [
                {
                    "offerId": ASKED,
                    "states": [{"name": "SAVE", "value": "SAVED", "updatedAt": "yesterday"}],
                }
            ]
        },
        [1, 2, 3],
    ],
)
def test_wrongly_shaped_answers_are_upstream_errors(liar, answer):
    client, handler = liar
    handler.answer = answer
    with pytest.raises(UpstreamError) as caught:
        client.get(MEMBER, [ASKED])
    assert "unexpected shape" in caught.value.message


def test_a_wrongly_shaped_count_is_an_upstream_error(liar):
    client, handler = liar
    handler.answer = {"total": 3}
    with pytest.raises(UpstreamError):
        client.count(MEMBER)
