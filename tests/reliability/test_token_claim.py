"""The token refresher's claim excludes the other runs: against dynalite, a DynamoDB stand-in
whose conditional writes are atomic (moto in-process applies a condition and its write in steps
that other threads interleave), runs that read the item and claim it at the same moment are
let through once, and a run that read a token since replaced claims nothing.

dynalite is an npm package pinned by requirements/dynalite, installed into .venv/tools by
local/build.py (`installed_dynalite`) the first time; it listens on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.build import installed_dynalite
from local.serving import free_ports
from local.template import Template
from offer_state.token_store import ITEM_KEY, TokenStore, token_id

RUNS = 8  # refresher runs that overlap
ROUNDS = 10
TABLE = "token"


@pytest.fixture(scope="module")
def dynalite() -> Iterator[str]:
    node, cli = installed_dynalite()
    [port] = free_ports(1)
    server = subprocess.Popen(
        [
            node,
            str(cli),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "dynalite exited"
                assert time.monotonic() < deadline, "dynalite did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


class _Kms:
    """KMS for `publish`: the claim is what is under test, not the encryption."""

    def encrypt(self, **_: Any) -> dict[str, bytes]:
        return {"CiphertextBlob": b"ciphertext"}


@pytest.fixture
def store(dynalite: str) -> Iterator[tuple[TokenStore, Any]]:
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=dynalite,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    definition = Template(parameters={"JwtIssuer": "x", "JwtAudience": "y"}).table_definition(
        "TokenTable"
    )
    dynamodb.create_table(TableName=TABLE, **definition)
    clients = {"dynamodb": dynamodb, "kms": _Kms()}
    yield TokenStore(clients.__getitem__, TABLE, "key"), dynamodb
    dynamodb.delete_table(TableName=TABLE)


def _race(store: TokenStore, label: str) -> list[int]:
    """RUNS runs read the item, then all claim at once; each winner fetches (here: makes up)
    a token and writes it. The runs that fetched."""
    fetched: list[int] = []
    everyone_read = threading.Barrier(RUNS)

    def run(n: int) -> None:
        seen = store.read(consistent=True)
        everyone_read.wait(10)
        now = time.time()
        if store.claim(f"run-{n}", now, now + 30, seen):
            fetched.append(n)
            assert store.publish(f"run-{n}", f"{label}-{n}", (now, now + 86400, now + 82800))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return fetched


def test_overlapping_refreshers_fetch_once_whatever_the_interleaving(store):
    token_store, dynamodb = store
    for round_number in range(ROUNDS):
        dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": ITEM_KEY}})  # no token yet
        [winner] = _race(token_store, f"round-{round_number}")
        item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": ITEM_KEY}})["Item"]
        assert item["tokenId"]["S"] == token_id(f"round-{round_number}-{winner}")
        assert "claimOwner" not in item  # the write that stored the token ended the claim


def test_a_refused_token_is_replaced_once_and_a_late_claim_finds_it_replaced(store):
    token_store, _ = store
    [first] = _race(token_store, "first")
    refused = token_store.read(consistent=True)
    assert refused.token_id == token_id(f"first-{first}")
    # Every run was asked about the refused token, which they all read: one replaces it.
    [second] = _race(token_store, "second")
    assert token_store.read(consistent=True).token_id == token_id(f"second-{second}")
    # A run that read the refused token before it was replaced claims nothing.
    now = time.time()
    assert not token_store.claim("late", now, now + 30, refused)
