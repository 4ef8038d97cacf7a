"""Pseudonyms of collector numbers: the audit trail's partition keys, and the collector part of
an idempotency key (docs/audit.md, "Pseudonyms").

A pseudonym is `COLLECTOR#` + HMAC-SHA256 of the collector number, computed inside AWS KMS
(`GenerateMac`) with an HMAC key that never leaves it. Whoever may call `kms:GenerateMac` on
the key can find a collector's records by number; nobody can turn a pseudonym back into a
number, and no process, ours or support's, ever holds the key. Each pseudonym names the key
that made it, so that a new key can take over without losing what the old one keyed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from offer_state.errors import PSEUDONYM_KEY, dependency_unavailable

if TYPE_CHECKING:
    from types_boto3_kms import KMSClient

PREFIX = "COLLECTOR#"
MAC_ALGORITHM: Final = "HMAC_SHA_256"
# What the audit trail's items made with the secret's `audit_pepper` (before KMS) are keyed
# by; they carry no `pseudonymKey`.
LEGACY_PEPPER = "legacy-pepper"
# How many collectors' pseudonyms one `KmsPseudonyms` keeps in memory.
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Pseudonym:
    """A collector's pseudonym under one key."""

    value: str  # `COLLECTOR#` + 64 hex digits
    key_id: str  # the key that made it: a KMS key ARN (as KMS names it), or LEGACY_PEPPER


class KmsPseudonyms:
    """Pseudonyms under one KMS HMAC key (KeySpec HMAC_256), computed by KMS and kept in memory
    for the life of the execution environment: one `GenerateMac` per collector, not per call.

    The cache is bounded (least recently used first out), so a busy environment's memory does
    not grow with the number of collectors it has served."""

    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self._kms = kms
        self.key_id = key_id
        # Per instance (not on the method, which would keep every instance alive); a failure
        # raises, so it is never cached.
        self._cached = functools.lru_cache(maxsize=_CACHE_SIZE)(self._generate)

    def __call__(self, collector_number: str) -> Pseudonym:
        """The collector's pseudonym; DependencyUnavailableError (503) if KMS cannot make it."""
        return self._cached(collector_number)

    def _generate(self, collector_number: str) -> Pseudonym:
        try:
            answer = self._kms.generate_mac(
                KeyId=self.key_id, Message=collector_number.encode(), MacAlgorithm=MAC_ALGORITHM
            )
        except (BotoCoreError, ClientError) as exc:
            raise dependency_unavailable(PSEUDONYM_KEY, exc) from exc
        return Pseudonym(PREFIX + answer["Mac"].hex(), answer["KeyId"])


def pepper_pseudonym(collector_number: str, pepper: bytes) -> Pseudonym:
    """The pseudonym the audit trail used before KMS: HMAC-SHA256 keyed with the `audit_pepper`
    of the gateway's secret. Only `make audit` computes it, to find records written then."""
    digest = hmac.new(pepper, collector_number.encode(), hashlib.sha256).hexdigest()
    return Pseudonym(PREFIX + digest, LEGACY_PEPPER)
