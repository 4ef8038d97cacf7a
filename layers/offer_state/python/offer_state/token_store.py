"""The deployment's AIR MILES token: one DynamoDB item that the token refresher alone writes
(offer_state.refresher) and the functions read (offer_state.auth): the token encrypted with KMS
under the context {tokenTable, item}, `tokenId` (16 hex digits of its SHA-256, safe to log),
`issuedAt`, `expiresAt`, `refreshAt`, and a refresher's claim (`claimOwner`, `claimUntil`).
Failures are `TokenStoreError`s naming an operation and an AWS code, never the token.
The scheme: docs/architecture.md, "One AIR MILES token per deployment"."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ITEM_KEY = "airmiles-token"
_KEY = {"pk": {"S": ITEM_KEY}}
_TIMES = ("issuedAt", "expiresAt", "refreshAt")
_SERVICES = {"encrypt": "kms", "decrypt": "kms", "invoke": "lambda"}  # else DynamoDB's
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException"}


def token_id(token: str) -> str:
    """What names a token in the store, logs and metrics: 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class TokenStoreError(Exception):
    """The store, or the refresher's Invoke, failed (`AwsTimeLimitReached`: no time left)."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"token store {operation}: {reason}")
        self.operation, self.reason = operation, reason
        self.no_time = reason == "AwsTimeLimitReached"
        # Worth reading again: throttled, or an ask that timed out (it may have been taken).
        self.passing = reason in _THROTTLED or (operation == "Invoke" and "Timeout" in reason)


class CorruptTokenItem(TokenStoreError):
    """The ciphertext is not the token of its `tokenId` under this key and context."""


@dataclass(frozen=True)
class StoredToken:
    """The item as read: `token_id` its `tokenId` if a string; `whole` if it also has a
    ciphertext and `issuedAt` < `refreshAt` < `expiresAt` (a time missing reads as 0)."""

    token_id: str | None = None
    ciphertext: bytes = b""
    issued_at: float = 0.0
    expires_at: float = 0.0
    refresh_at: float = 0.0
    claim_until: float = 0.0  # a refresher at work until then (its claim)

    @property
    def whole(self) -> bool:
        in_order = self.issued_at < self.refresh_at < self.expires_at
        return bool(self.token_id and self.ciphertext) and in_order


class TokenStore:
    """The item in `table`, its token encrypted with KMS key `key_id`; `clients(service)`
    gives an AWS client (built at its first use); `refresher`: the function to Invoke."""

    def __init__(
        self, clients: Callable[[str], Any], table: str, key_id: str, refresher: str | None = None
    ) -> None:
        self._clients, self.table, self._key_id, self._refresher = clients, table, key_id, refresher
        self._context = {"tokenTable": table, "item": ITEM_KEY}

    def read(self, *, consistent: bool = False) -> StoredToken:
        answer = self._call("get_item", TableName=self.table, Key=_KEY, ConsistentRead=consistent)
        item = answer.get("Item", {})
        # (DynamoDB checks that an N is a number; one missing or of another type reads as 0)
        times = (float(item.get(name, {}).get("N", 0)) for name in (*_TIMES, "claimUntil"))
        ciphertext = item.get("ciphertext", {}).get("B", b"")  # (botocore reads a B as bytes)
        return StoredToken(item.get("tokenId", {}).get("S"), ciphertext, *times)

    def decrypt(self, stored: StoredToken) -> str:
        plaintext: bytes = self._call("decrypt", CiphertextBlob=stored.ciphertext)["Plaintext"]
        token = plaintext.decode(errors="replace")
        if token_id(token) != stored.token_id:
            raise CorruptTokenItem("Decrypt", "not the token of its tokenId")
        return token

    def ask_refresher(self, refused: str | None) -> None:
        """Asks the refresher for a new token (an asynchronous Invoke); `refused`: the id of
        the stored token that AIR MILES refused or that does not decrypt."""
        if self._refresher is None:
            raise TokenStoreError("Invoke", "no refresher")
        payload = json.dumps({"refusedTokenId": refused} if refused else {}).encode()
        self._call("invoke", FunctionName=self._refresher, InvocationType="Event", Payload=payload)

    # ------------------------------------------------------------ the refresher's writes

    def claim(self, owner: str, now: float, until: float, seen: StoredToken) -> bool:
        """Claims the refresh for `owner` until `until`, if no unexpired claim is held and the
        token is still the one `seen` showed. False: either no longer holds."""
        values = {":until": {"N": f"{until:.3f}"}, ":now": {"N": f"{now:.3f}"}}
        if seen.token_id is not None:  # (an empty one too: it is no token's, but still there)
            unchanged, values[":seen"] = "tokenId = :seen", {"S": seen.token_id}
        else:  # none, or one not a string (read as none)
            unchanged, values[":string"] = "NOT attribute_type(tokenId, :string)", {"S": "S"}
        condition = f"(attribute_not_exists(claimUntil) OR claimUntil < :now) AND {unchanged}"
        return self._update(owner, "SET claimOwner = :me, claimUntil = :until", condition, values)

    def publish(self, owner: str, token: str, times: tuple[float, float, float]) -> bool:
        """Writes `token` (issued, expires and refresh times) and ends `owner`'s claim, if
        `owner` still holds it."""
        encrypted = self._call("encrypt", Plaintext=token.encode())["CiphertextBlob"]
        values = {f":{name}": {"N": f"{t:.3f}"} for name, t in zip(_TIMES, times, strict=True)}
        values.update({":c": {"B": encrypted}, ":id": {"S": token_id(token)}})
        fields = "".join(f", {name} = :{name}" for name in _TIMES)
        update = f"SET ciphertext = :c, tokenId = :id{fields} REMOVE claimOwner, claimUntil"
        return self._update(owner, update, "claimOwner = :me", values)

    def release(self, owner: str) -> bool:
        """Ends `owner`'s claim without a token (its fetch failed)."""
        return self._update(owner, "REMOVE claimOwner, claimUntil", "claimOwner = :me", {})

    def _update(self, owner: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        """One conditional write by `owner` (`:me`); False: `condition` did not hold."""
        try:
            self._call(
                "update_item",
                TableName=self.table,
                Key=_KEY,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={":me": {"S": owner}, **values},
            )
        except TokenStoreError as exc:
            if exc.reason != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _call(self, method: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        operation = method.title().replace("_", "")  # the AWS name: get_item is GetItem
        service = _SERVICES.get(method, "dynamodb")
        if service == "kms":
            params.update(KeyId=self._key_id, EncryptionContext=self._context)
        try:
            return getattr(self._clients(service), method)(**params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            error = CorruptTokenItem if code == "InvalidCiphertextException" else TokenStoreError
            raise error(operation, code) from None
        except BotoCoreError as exc:
            # (deadlines.AwsTimeLimitReached when no time was left: `TokenStoreError.no_time`)
            raise TokenStoreError(operation, type(exc).__name__) from None
