"""The deployment's shared AIR MILES token: one DynamoDB item that every execution environment
of both functions reads, so that the deployment asks AIR MILES for one token per token
lifetime instead of one per environment (offer_state.auth uses it; docs/architecture.md,
"One token per deployment").

The item (key `pk` = `airmiles-token`) holds:

- the token, encrypted by its writer with a KMS key of its own (`ciphertext`, under an
  encryption context naming the table and the item, so that it cannot be decrypted as
  anything else): reading the item alone reveals nothing;
- `tokenId`, the first 16 hex digits of the token's SHA-256 (safe to log, and what a 401
  invalidates by compare-and-swap), `issuedAt` and `expiresAt` (epoch seconds, absolute, from
  the writer's clock);
- the refresh lease, `leaseOwner` and `leaseUntil` (epoch seconds): the one environment that
  fetches the next token holds it, taken and released by conditional writes.

Only GetItem and UpdateItem are used (UpdateItem creates the item the first time). Every
failure to use the store is a `TokenStoreError` (its `operation` and `reason` say what failed,
never with the token); an item that cannot be used as it is (a field missing or of the wrong
type, a ciphertext that does not decrypt to a token of its `tokenId`) is a
`CorruptTokenItem`, which a new token written under the lease repairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from offer_state.deadlines import is_time_limit

ITEM_KEY = "airmiles-token"
_KEY = {"pk": {"S": ITEM_KEY}}
_TOKEN_FIELDS = ("ciphertext", "tokenId", "issuedAt", "expiresAt")
# Writes the token's fields (their values from `_token_values`).
_SET_FIELDS = (
    "SET ciphertext = :ciphertext, tokenId = :tokenId, issuedAt = :issuedAt, expiresAt = :expiresAt"
)
# KMS's answers that say the ciphertext is not one this key made under this context.
_NOT_OURS = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


def token_id(token: str) -> str:
    """What names a token in the store, logs and metrics: 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenStoreError(Exception):
    """The store could not be used. `operation` (GetItem, UpdateItem, Encrypt, Decrypt) and
    `reason` (an AWS error code or botocore's error class) never name the token."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"token store {operation}: {reason}")
        self.operation = operation
        self.reason = reason


class CorruptTokenItem(TokenStoreError):
    """The item is there but cannot be used as it is."""


class TokenStoreNoTime(TokenStoreError):
    """The invocation had no time left for the store's call (offer_state.deadlines): nothing
    was wrong with the store, which is not reported or left alone for it."""


@dataclass(frozen=True)
class SharedItem:
    """The item as read (the token still encrypted). `corrupt` names what is wrong with its
    token fields, if anything (then only a readable `token_id` is kept); a lease field of the
    wrong type reads as no lease, which the lease condition also treats as free."""

    lease_owner: str | None = None
    lease_until: float | None = None
    # `leaseUntil` as DynamoDB gave it: the replacing condition names the very same number.
    lease_until_number: str | None = None
    token_id: str | None = None
    ciphertext: bytes | None = None
    issued_at: float | None = None
    expires_at: float | None = None
    corrupt: str | None = None

    def lease_free(self, now: float) -> bool:
        """Whether no lease is held at `now` (the reader's clock)."""
        return self.lease_until is None or self.lease_until < now

    @classmethod
    def parse(cls, item: dict[str, Any] | None) -> SharedItem:
        if not item:
            return cls()
        lease_owner = _text(item.get("leaseOwner"))
        lease_until = _number(item.get("leaseUntil"))
        # Both or neither: a lease half there is none (the lease condition agrees).
        held = lease_owner is not None and lease_until is not None
        lease = cls(lease_owner, lease_until, item["leaseUntil"]["N"]) if held else cls()
        if not any(name in item for name in _TOKEN_FIELDS):
            return lease
        ciphertext = item.get("ciphertext", {}).get("B")
        token = _text(item.get("tokenId"))
        issued_at, expires_at = _number(item.get("issuedAt")), _number(item.get("expiresAt"))
        # A corrupt item keeps its readable tokenId: the conditions that replace it name it.
        corrupt = None
        if not all(name in item for name in _TOKEN_FIELDS):
            corrupt = "a token field is missing"
        elif token is None or issued_at is None or expires_at is None:
            corrupt = "a token field has the wrong type"
        elif not isinstance(ciphertext, bytes):
            corrupt = "the ciphertext is not binary"
        elif expires_at <= issued_at:
            corrupt = "it expires before it was issued"
        if corrupt is not None:
            return replace(lease, token_id=token, corrupt=corrupt)
        return replace(
            lease, token_id=token, ciphertext=ciphertext, issued_at=issued_at, expires_at=expires_at
        )


class TokenStore:
    """The shared token's item in `table`, its token encrypted with KMS key `key_id`.

    `clients` gives (DynamoDB client, KMS client); it is called at the first operation, so
    that an environment that never needs a token never builds them."""

    def __init__(self, clients: Callable[[], tuple[Any, Any]], table: str, key_id: str) -> None:
        self._clients = clients
        self.table = table
        self._key_id = key_id
        self._context = {"tokenTable": table, "item": ITEM_KEY}

    def read(self) -> SharedItem:
        """The item now (a strongly consistent read); empty when there is none."""
        answer = self._call(
            "GetItem",
            lambda dynamodb, _kms: dynamodb.get_item(
                TableName=self.table, Key=_KEY, ConsistentRead=True
            ),
        )
        return SharedItem.parse(answer.get("Item"))

    def decrypt(self, item: SharedItem) -> str:
        """The token of `item` (which has one); CorruptTokenItem when its ciphertext is not
        a token of its `tokenId` under this key and context."""
        assert item.ciphertext is not None
        assert item.token_id is not None
        ciphertext = item.ciphertext
        answer = self._call(
            "Decrypt",
            lambda _dynamodb, kms: kms.decrypt(
                KeyId=self._key_id, CiphertextBlob=ciphertext, EncryptionContext=self._context
            ),
        )
        try:
            token = answer["Plaintext"].decode()
        except UnicodeDecodeError:
            raise CorruptTokenItem("Decrypt", "not a token") from None
        if token_id(token) != item.token_id:
            raise CorruptTokenItem("Decrypt", "not the token of its tokenId")
        return token

    def take_lease(
        self, owner: str, now: float, until: float, *, seen: SharedItem, replacing: bool = False
    ) -> bool:
        """Take the refresh lease for `owner` until `until`, if the item's token is still the
        one `seen` showed (a reader that saw a token replaced meanwhile must not replace it
        again), and the lease is free at `now` (none, one past its time, or an unreadable
        one), or, `replacing`, still exactly the one `seen` showed (a holder waited on in
        vain). False: either no longer holds."""
        # As `SharedItem.parse` reads it: no lease without both a number `leaseUntil` and a
        # non-empty string `leaseOwner`.
        free = (
            "attribute_not_exists(leaseUntil) OR NOT attribute_type(leaseUntil, :number)"
            " OR leaseUntil < :now OR attribute_not_exists(leaseOwner)"
            " OR NOT attribute_type(leaseOwner, :string) OR size(leaseOwner) = :empty"
        )
        values: dict[str, Any] = {
            ":me": {"S": owner},
            ":until": {"N": _decimal(until)},
            ":now": {"N": _decimal(now)},
            ":number": {"S": "N"},
            ":string": {"S": "S"},
            ":empty": {"N": "0"},
        }
        if replacing and seen.lease_owner is not None and seen.lease_until_number is not None:
            free += " OR (leaseOwner = :seenOwner AND leaseUntil = :seenUntil)"
            values[":seenOwner"] = {"S": seen.lease_owner}
            values[":seenUntil"] = {"N": seen.lease_until_number}
        unchanged, seen_values = _token_unchanged(seen)
        return self._update(
            UpdateExpression="SET leaseOwner = :me, leaseUntil = :until",
            ConditionExpression=f"({free}) AND {unchanged}",
            ExpressionAttributeValues={**values, **seen_values},
        )

    def publish(self, owner: str, token: str, issued_at: float, expires_at: float) -> bool:
        """Write `token` and release the lease, if `owner` still holds it (a holder whose lease
        was taken over must not overwrite its successor's token). False: it no longer does."""
        return self._update(
            UpdateExpression=f"{_SET_FIELDS} REMOVE leaseOwner, leaseUntil",
            ConditionExpression="leaseOwner = :me",
            ExpressionAttributeValues={
                ":me": {"S": owner},
                **self._token_values(token, issued_at, expires_at),
            },
        )

    def offer(self, token: str, issued_at: float, expires_at: float, *, seen: SharedItem) -> bool:
        """Write `token`, fetched without the lease (a waiter that gave up waiting), if the
        item's token is still the one `seen` showed (none, or one unusable to the reader); the
        lease is left to its holder. False: someone wrote another token meanwhile."""
        unchanged, seen_values = _token_unchanged(seen)
        return self._update(
            UpdateExpression=_SET_FIELDS,
            ConditionExpression=unchanged,
            ExpressionAttributeValues={
                **seen_values,
                **self._token_values(token, issued_at, expires_at),
            },
        )

    def release(self, owner: str) -> bool:
        """Give the lease up, if `owner` still holds it (a holder that could not write its
        token: the others need not wait for its lease to run out). False: it no longer does."""
        return self._update(
            UpdateExpression="REMOVE leaseOwner, leaseUntil",
            ConditionExpression="leaseOwner = :me",
            ExpressionAttributeValues={":me": {"S": owner}},
        )

    def invalidate(self, refused_id: str) -> bool:
        """Remove the token named `refused_id` (AIR MILES refused it), only if it is still
        the item's token (compare-and-swap). False: it had been replaced already."""
        return self._update(
            UpdateExpression="REMOVE ciphertext, tokenId, issuedAt, expiresAt",
            ConditionExpression="tokenId = :refused",
            ExpressionAttributeValues={":refused": {"S": refused_id}},
        )

    # ------------------------------------------------------------ plumbing

    def _token_values(self, token: str, issued_at: float, expires_at: float) -> dict[str, Any]:
        answer = self._call(
            "Encrypt",
            lambda _dynamodb, kms: kms.encrypt(
                KeyId=self._key_id, Plaintext=token.encode(), EncryptionContext=self._context
            ),
        )
        return {
            ":ciphertext": {"B": answer["CiphertextBlob"]},
            ":tokenId": {"S": token_id(token)},
            ":issuedAt": {"N": _decimal(issued_at)},
            ":expiresAt": {"N": _decimal(expires_at)},
        }

    def _update(self, **request: Any) -> bool:
        """One conditional UpdateItem of the item: True when written, False when its condition
        did not hold."""
        from botocore.exceptions import ClientError  # loaded with the clients

        try:
            self._call(
                "UpdateItem",
                lambda dynamodb, _kms: dynamodb.update_item(
                    TableName=self.table, Key=_KEY, **request
                ),
                conditional=True,
            )
        except ClientError:  # only the failed condition comes out of _call as a ClientError
            return False
        return True

    def _call(
        self, operation: str, call: Callable[[Any, Any], Any], *, conditional: bool = False
    ) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            dynamodb, kms = self._clients()
            return call(dynamodb, kms)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            if conditional and code == "ConditionalCheckFailedException":
                raise
            error = CorruptTokenItem if code in _NOT_OURS else TokenStoreError
            raise error(operation, code) from None
        except BotoCoreError as exc:
            error = TokenStoreNoTime if is_time_limit(exc) else TokenStoreError
            raise error(operation, type(exc).__name__) from None


def _token_unchanged(seen: SharedItem) -> tuple[str, dict[str, Any]]:
    """A condition that the item's `tokenId` is still what `seen` showed, and its values."""
    if seen.token_id is None:
        # None, or one that is not a string or is empty (a corrupt item, replaced as if there
        # were none: `SharedItem.parse` reads it so).
        return (
            "(attribute_not_exists(tokenId) OR NOT attribute_type(tokenId, :string)"
            " OR size(tokenId) = :empty)",
            {":string": {"S": "S"}, ":empty": {"N": "0"}},
        )
    return "tokenId = :seenToken", {":seenToken": {"S": seen.token_id}}


def _text(value: Any) -> str | None:
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text else None


def _number(value: Any) -> float | None:
    number = value.get("N") if isinstance(value, dict) else None
    if not isinstance(number, str):
        return None
    try:
        return float(Decimal(number))
    except (InvalidOperation, ValueError):
        return None


def _decimal(seconds: float) -> str:
    """Epoch seconds as DynamoDB numbers: milliseconds are plenty."""
    return f"{seconds:.3f}"
