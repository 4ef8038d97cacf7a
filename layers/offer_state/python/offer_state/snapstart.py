"""Lambda SnapStart: what a function does before Lambda snapshots its initialised execution
environment, and after Lambda restores one from that snapshot.

A function module calls `register(api)` once, after building its `PartnerApi`. The hooks go
through `snapshot_restore_py`, which Lambda's Python runtime (3.12 and later) provides, and
the local stack too (it runs Lambda's runtime interface client, SnapStart included): where it
is missing nothing registers, at the cost of one failed import, and without SnapStart the
hooks register but never run. Each hook logs one line when it has run (`make bench` checks
them). `before_snapshot` and `after_restore` are public so that the tests can name the hooks
registered.

Before the snapshot: warm what the first request needs and what is safe to freeze, and only
that. Not the secret, not a token, not a pseudonym, not the health cache, nothing
time-bound, and no connection or name lookup. Hence none of the service's clients either:
building a boto3 client resolves its AWS credentials (with SnapStart, Lambda serves them
over HTTP), and the AIR MILES client's token provider names its environment on the shared
token's lease (a random owner, which every environment restored from one snapshot would
share). So the AWS service models are loaded by a throwaway client that signs nothing, the
modules the clients need are imported, and the clients themselves, built at the first
request (the Secrets Manager client only when a token is fetched), find everything loaded
(building them then takes a few milliseconds).

After a restore: a new seed for `random` (retry jitter: urllib3's backoff and botocore's), and
no connection pooled before the snapshot. Nothing else is re-read.
"""

from __future__ import annotations

import importlib
import random
from typing import TYPE_CHECKING

from offer_state.models.airmiles_answers import build_validators
from offer_state.observability import logger, tracer
from offer_state.routes import SECURITY_SCHEME

try:  # Lambda's Python runtime (3.12 and later) and the local stack's runtime client have it
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # not Lambda's Python runtime: no snapshot will be taken
    register_after_restore = register_before_snapshot = None

if TYPE_CHECKING:
    from offer_state.api import PartnerApi

# What the service, the reads, the writes and the audit writer import on first use, and the
# secret's reader, imported when the environment first fetches a token (one that takes the
# deployment's token from its store may never do).
_FIRST_REQUEST_MODULES = (
    "boto3.dynamodb.types",  # the audit writer's serializer
    "offer_state.client",  # with requests, urllib3, and the token's provider and store
    "offer_state.secrets",  # the secret's reader, with Powertools Parameters
)
_IDEMPOTENCY_MODULES = (  # update-state's
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.idempotency.exceptions",
)
# The AWS services the functions call.
_AWS_SERVICES = ("dynamodb", "kms", "secretsmanager")


def register(api: PartnerApi) -> None:
    """Register `before_snapshot` and `after_restore` for `api`'s environment with Lambda's
    runtime hooks, where they exist."""
    if register_before_snapshot is None:  # not Lambda's Python runtime
        return
    register_before_snapshot(before_snapshot, api)
    register_after_restore(after_restore, api)


def before_snapshot(api: PartnerApi) -> None:
    """Build what `api`'s first request would build, short of anything secret, time-bound or
    networked: its modules, the AWS service models, the validators of AIR MILES's answers and
    of the routes, the X-Ray tracer."""
    service = api.service
    idempotent = bool(service.settings.idempotency_table)
    for module in _FIRST_REQUEST_MODULES + (_IDEMPOTENCY_MODULES if idempotent else ()):
        importlib.import_module(module)
    _load_aws_models()
    build_validators()
    _build_route_validators(api)
    tracer.prepare()
    logger.info("SnapStart: before-snapshot hook ran")


def after_restore(api: PartnerApi) -> None:
    """Make a restored environment its own: a new seed for `random`, so that environments
    restored from one snapshot do not draw the same retry jitter, and no connection pooled
    before the snapshot (every restored copy would share it)."""
    random.seed()  # from os.urandom: the OS generator, unique to each restored environment
    api.service.drop_connections()
    logger.info("SnapStart: after-restore hook ran")


def _load_aws_models() -> None:
    """Load the service models and endpoint rules of the AWS services the functions call into
    boto3's default session, where the service's own clients will find them."""
    # Here, not at init: boto3 costs 143 ms of CPU at 0.15 of a core (the service loads it at
    # its first request; see its "dependencies (lazy)").
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # A client that signs nothing resolves no credentials: it reads no token, calls nothing.
    unsigned = Config(signature_version=UNSIGNED)
    for service_name in _AWS_SERVICES:
        boto3.client(service_name, config=unsigned).close()


def _build_route_validators(api: PartnerApi) -> None:
    """Powertools builds a route's request and response validators at its first request, and
    every route's when it writes the OpenAPI document: its public `get_openapi_schema()` does
    it here (the document is dropped; the routes name their security scheme, so it must be
    declared). It costs the hook about 100 ms of CPU more than reading Powertools' private
    route lists would (the whole hook: 431 against 333 ms, get-state at 0.15 of a core, 7 runs,
    medians, 2026-12-07): once per snapshot (locally, per environment started in SnapStart
    mode), never at a request."""
    # Here, not at init: 82 ms of CPU at 0.15 of a core (and get_openapi_schema loads it).
    from aws_lambda_powertools.event_handler.openapi.models import OAuth2, OAuthFlows

    api.app.get_openapi_schema(security_schemes={SECURITY_SCHEME: OAuth2(flows=OAuthFlows())})
