"""The contract as a partner's SDK generator reads it: openapi-python-client builds a Python
client from the committed openapi.json, and a partner's journey runs through that client
against the local stack: health, GET, FIND, COUNT, a PUT of one offer and of many, a replay
with an Idempotency-Key, an unknown outcome replayed, and the error answers parsed into the
generated error models."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

from local.openapi import OPENAPI_PATH
from local.sandbox.seed import CATALOGUE
from tests.support.stack import RunningStack

MEMBER = "80000000110"
PACKAGE = "offer_state_gateway_client"  # what the generator names it, from info.title
SAVED = CATALOGUE[40].offer_id  # saved and opted in by the seed
FRESH = [o.offer_id for o in CATALOGUE[10:14]]  # never touched by the seed


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated client's modules, as a namespace: `sdk.api.get_states`, `sdk.models`…"""
    folder = tmp_path_factory.mktemp("generated")
    config = folder / "config.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run on the generated code
    subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(OPENAPI_PATH), "--config", str(config)),
            *("--meta", "none", "--output-path", str(folder / PACKAGE)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(folder))
    try:
        yield _Sdk(importlib.import_module(PACKAGE))
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class _Sdk:
    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.api = _Operations()
        assert package.__file__ is not None
        for tag in ("health", "offer_states"):
            for path in (Path(package.__file__).parent / "api" / tag).glob("*.py"):
                if path.stem != "__init__":
                    module = importlib.import_module(f"{PACKAGE}.api.{tag}.{path.stem}")
                    setattr(self.api, path.stem, module)

    def client(self, stack: RunningStack, token: str | None) -> Any:
        """A client of the stack's gateway (httpx: no proxy from the environment)."""
        options = {"base_url": stack.url, "httpx_args": {"trust_env": False}, "timeout": 30.0}
        if token is None:
            return self.package.Client(**options)
        return self.package.AuthenticatedClient(token=token, **options)


class _Operations:
    """The generated operations' modules, by operationId (snake_case)."""

    get_health: Any
    get_states: Any
    find_states: Any
    count_states: Any
    update_offer_states: Any
    update_states: Any


def test_the_generator_names_each_operation_by_its_operation_id(sdk):
    assert {name for name in vars(sdk.api)} == {
        "get_health",
        "get_states",
        "find_states",
        "count_states",
        "update_offer_states",
        "update_states",
    }


def test_a_partners_journey_through_the_generated_client(sdk, stack: RunningStack):
    models = sdk.models
    anonymous = sdk.client(stack, None)
    member = sdk.client(stack, stack.token(MEMBER))

    health = sdk.api.get_health.sync_detailed(client=anonymous)
    assert health.status_code == 200
    assert isinstance(health.parsed, models.HealthAnswer)
    assert health.parsed.status == models.HealthAnswerStatus.OK

    # GET: a page of offers labelled, in the order asked.
    page = [UUID(FRESH[0]), UUID(SAVED)]
    labelled = sdk.api.get_states.sync_detailed(client=member, offer_id=page)
    assert isinstance(labelled.parsed, models.OfferStatesAnswer)
    assert [o.offer_id for o in labelled.parsed.offers] == page
    assert [o.saved for o in labelled.parsed.offers] == [False, True]

    # PUT one, with an Idempotency-Key; the same request again is the first answer, replayed.
    key = str(uuid.uuid4())
    opt_in = models.StatesBody(
        states=[
            models.StateChangeItem(
                name=models.StateChangeItemName.OPT_IN, value=models.StateChangeItemValue.OPTED_IN
            )
        ]
    )
    puts_before = stack.sandbox_control.calls()["put"]
    first = sdk.api.update_offer_states.sync_detailed(
        UUID(FRESH[0]), client=member, body=opt_in, idempotency_key=key
    )
    assert first.status_code == 200
    assert isinstance(first.parsed, models.AppliedChanges)
    [change] = first.parsed.state_changes
    assert (change.offer_id, change.states[0].value) == (UUID(FRESH[0]), "OPTED_IN")
    assert "Idempotent-Replayed" not in first.headers
    again = sdk.api.update_offer_states.sync_detailed(
        UUID(FRESH[0]), client=member, body=opt_in, idempotency_key=key
    )
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.to_dict() == first.parsed.to_dict()
    assert stack.sandbox_control.calls()["put"] - puts_before == 1

    # PUT many.
    save = models.StateChangeItem(
        name=models.StateChangeItemName.SAVE, value=models.StateChangeItemValue.SAVED
    )
    batch = models.StateChanges(
        state_changes=[models.StateChange(offer_id=UUID(o), states=[save]) for o in FRESH[1:3]]
    )
    changed = sdk.api.update_states.sync_detailed(client=member, body=batch)
    assert changed.status_code == 200
    assert [c.offer_id for c in changed.parsed.state_changes] == [UUID(o) for o in FRESH[1:3]]

    # FIND and COUNT see them.
    found = sdk.api.find_states.sync_detailed(
        client=member, state=[models.FindStatesStateItem("SAVE:SAVED")], page_size=100
    )
    assert isinstance(found.parsed, models.FindAnswer)
    assert {UUID(o) for o in FRESH[1:3]} <= {o.offer_id for o in found.parsed.offers}
    counted = sdk.api.count_states.sync_detailed(
        client=member, state=[models.CountStatesStateItem("OPT_IN:OPTED_IN")]
    )
    assert isinstance(counted.parsed, models.CountAnswer)
    opted_in = [
        o for o, s in stack.sandbox_control.states(MEMBER).items() if "OPTED_IN" in s.values()
    ]
    assert counted.parsed.count == len(opted_in)


def test_the_error_answers_parse_into_the_generated_error_models(sdk, stack: RunningStack):
    models = sdk.models
    member = sdk.client(stack, stack.token(MEMBER))

    invalid = sdk.api.find_states.sync_detailed(client=member, page_size=101)
    assert invalid.status_code == 400
    assert isinstance(invalid.parsed, models.ErrorAnswer)
    assert invalid.parsed.error.code == "VALIDATION_ERROR"
    assert [d.field for d in invalid.parsed.error.details] == ["pageSize"]
    assert invalid.parsed.correlation_id == invalid.headers["X-Correlation-Id"]

    refused = sdk.api.count_states.sync_detailed(client=sdk.client(stack, "not-a-token"))
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.GatewayMessage)
    assert refused.parsed.message == "Unauthorized"

    unknown_offer = sdk.api.update_offer_states.sync_detailed(
        uuid.uuid4(), client=member, body=_save(models)
    )
    assert unknown_offer.status_code == 404
    assert isinstance(unknown_offer.parsed, models.ErrorAnswer)
    assert unknown_offer.parsed.error.code == "OFFER_NOT_FOUND"

    # A 403 is the gateway's (FORBIDDEN) or API Gateway's own (a scope missing): each parses.
    reader = sdk.client(stack, stack.token(MEMBER, scopes=("offers/state.read",)))
    no_scope = sdk.api.update_states.sync_detailed(
        client=reader,
        body=models.StateChanges.from_dict(
            {
                "stateChanges": [
                    {"offerId": FRESH[0], "states": [{"name": "SAVE", "value": "SAVED"}]}
                ]
            }
        ),
    )
    assert no_scope.status_code == 403
    assert isinstance(no_scope.parsed, models.GatewayMessage)
    assert no_scope.parsed.message == "Forbidden"
    no_m2m = sdk.client(stack, stack.token(None, scopes=("offers/state.read",)))
    forbidden = sdk.api.count_states.sync_detailed(client=no_m2m, collector_number=MEMBER)
    assert forbidden.status_code == 403
    assert isinstance(forbidden.parsed, models.ErrorAnswer)
    assert forbidden.parsed.error.code == "FORBIDDEN"
    ambiguous = sdk.api.count_states.sync_detailed(client=member, collector_number="80000000001")
    assert (ambiguous.status_code, ambiguous.parsed.error.code) == (400, "COLLECTOR_AMBIGUOUS")


def _save(models: Any) -> Any:
    """The body of a PUT of one offer that saves it."""
    return models.StatesBody(
        states=[
            models.StateChangeItem(
                name=models.StateChangeItemName.SAVE, value=models.StateChangeItemValue.SAVED
            )
        ]
    )


def test_an_unknown_outcome_keeps_its_key_through_the_generated_client(sdk, stack: RunningStack):
    models = sdk.models
    member = sdk.client(stack, stack.token(MEMBER))
    offer = UUID(FRESH[3])
    body = _save(models)
    key = str(uuid.uuid4())
    stack.sandbox_control.fault("put", "reset", applied=True, count=1)
    lost = sdk.api.update_offer_states.sync_detailed(
        offer, client=member, body=body, idempotency_key=key
    )
    assert lost.status_code == 502
    assert lost.parsed.error.code == "OUTCOME_UNKNOWN"
    repeat = sdk.api.update_offer_states.sync_detailed(
        offer, client=member, body=body, idempotency_key=key
    )
    assert (repeat.status_code, repeat.parsed.error.code) == (502, "OUTCOME_UNKNOWN")
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert stack.sandbox_control.calls()["put"] == 1
    # What the partner does next: read the states again. The change is there: done.
    labelled = sdk.api.get_states.sync_detailed(client=member, offer_id=[offer])
    assert labelled.parsed.offers[0].saved is True
