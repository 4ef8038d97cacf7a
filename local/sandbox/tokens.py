"""The sandbox's Auth0 stand-in: one RSA key, RS256 tokens signed with it, and their checks.

The client credentials, audiences and the member claim below mirror what AIR MILES issues;
their values are the sandbox's own (docs/local-stack.md, "Sandbox seed").
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "sandbox-client"
# A published test secret: the sandbox holds nothing worth protecting.
CLIENT_SECRET = "sandbox-secret"  # noqa: S105
AUDIENCE = "https://offer-state.sandbox"
MEMBER_AUDIENCE = "https://members.loyalty.com"
COLLECTOR_CLAIM = "https://members.loyalty.com/collectorNumber"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a password)

ALGORITHM = "RS256"
ACCEPTED_AUDIENCES = (AUDIENCE, MEMBER_AUDIENCE)


class TokenAuthority:
    """Issues and verifies this sandbox's tokens; the key lives as long as the instance."""

    def __init__(self) -> None:
        self.rotate_key()
        # Known once the server has its port; tokens carry it as `iss`.
        self.issuer = ""

    def rotate_key(self) -> None:
        """A new signing key: every token signed before no longer verifies (a revocation)."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        kid = _thumbprint(public_jwk)
        jwk = {**public_jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}
        # One assignment: a token is signed and verified with one key pair, never half of two.
        self._keys = (private_key, private_key.public_key(), kid, jwk)

    @property
    def private_key(self) -> Any:
        return self._keys[0]

    @property
    def public_key(self) -> Any:
        return self._keys[1]

    @property
    def kid(self) -> str:
        return self._keys[2]

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document."""
        return {"keys": [dict(self._keys[3])]}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        """Signs any claims with the sandbox key (tests use it to craft odd tokens)."""
        private_key, _, kid, _ = self._keys
        return jwt.encode(
            claims, private_key, algorithm=ALGORITHM, headers={"kid": kid, **(headers or {})}
        )

    def issue_m2m(self, client_id: str, ttl: int) -> str:
        """A machine-to-machine token as Auth0 issues for client credentials, with a `jti` of
        its own: two tokens issued within one second differ, as two issuances do (what a
        client does with a refused token must not depend on the second it was issued in)."""
        now = int(time.time())
        return self.sign(
            {
                "iss": self.issuer,
                "sub": f"{client_id}@clients",
                "aud": AUDIENCE,
                "iat": now,
                "exp": now + ttl,
                "azp": client_id,
                "gty": "client-credentials",
                "jti": uuid.uuid4().hex,
            }
        )

    def issue_member(self, collector_number: str, ttl: int) -> str:
        """A member token: the collector number rides in COLLECTOR_CLAIM."""
        now = int(time.time())
        return self.sign(
            {
                "iss": self.issuer,
                "sub": f"auth0|member-{collector_number[-4:]}",
                "aud": MEMBER_AUDIENCE,
                "iat": now,
                "exp": now + ttl,
                COLLECTOR_CLAIM: collector_number,
            }
        )

    def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims if this sandbox signed it and it is still valid, else None."""
        try:
            return jwt.decode(
                token,
                self.public_key,
                algorithms=[ALGORITHM],
                audience=list(ACCEPTED_AUDIENCES),
                issuer=self.issuer,
                # `aud` and `iss` are required by the checks above; a token must also expire.
                options={"require": ["exp"]},
            )
        except jwt.PyJWTError:
            return None


def token_kind(claims: dict[str, Any] | None) -> str:
    """`member`, `m2m` or `none` (no valid token)."""
    if claims is None:
        return "none"
    return "member" if COLLECTOR_CLAIM in claims else "m2m"


def _thumbprint(jwk: dict[str, Any]) -> str:
    # RFC 7638: SHA-256 of the required members in lexical order, base64url without padding.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
