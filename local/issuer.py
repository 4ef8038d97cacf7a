"""The dev identity issuer: stands in for the partner's identity provider on this machine.

It signs RS256 JWTs with a key kept in a file (so `make token` works whether or not the
stack runs, and tokens survive restarts) and serves what API Gateway's JWT authorizer reads:
OIDC discovery and the JWKS. `POST /token` mints tokens for the demo page. For local use
only: anyone who can reach it can become any collector.

    python -m local.issuer token --collector 80000000110
    python -m local.issuer token --m2m
    python -m local.issuer token --collector 80000000110 --scopes "offers/state.read"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.serving import HttpRequest, HttpResponse, HttpService, json_response
from local.template import ROOT

DEFAULT_PORT = 3004
DEFAULT_AUDIENCE = "offer-state-gateway"
DEFAULT_CLAIM = "collector_number"
MEMBER_SCOPES = ("offers/state.read", "offers/state.write")
M2M_SCOPES = ("offers/state.read", "offers/state.write", "offers/state.m2m")
MACHINE_CLIENT_ID = "dev-partner"  # the `client_id` of its machine tokens
DEFAULT_KEY_FILE = ROOT / ".local" / "dev-issuer-key.pem"
KEY_ID = "dev-issuer-1"
_COLLECTOR = re.compile(r"[0-9]{11}")


def issuer_url(port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or int(os.environ.get('ISSUER_PORT', DEFAULT_PORT))}"


def key_file() -> Path:
    return Path(os.environ.get("DEV_ISSUER_KEY_FILE", DEFAULT_KEY_FILE))


class DevIssuer:
    """Key, tokens and JWKS of the dev issuer."""

    def __init__(self, issuer: str, key_path: Path | None = None) -> None:
        self.issuer = issuer
        self._key = _load_or_create_key(key_path or key_file())

    def token(
        self,
        *,
        collector: str | None = None,
        scopes: tuple[str, ...] | None = None,
        audience: str = DEFAULT_AUDIENCE,
        claim: str = DEFAULT_CLAIM,
        ttl: int = 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A member token (`collector` given) or a machine token (no collector)."""
        now = int(time.time())
        if collector is not None and not _COLLECTOR.fullmatch(collector):
            raise ValueError("a collector number is 11 digits")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": str(uuid.uuid4()),
        }
        if collector is not None:
            # `sub` is a pseudonym: it lands in logs and the audit trail as the principal.
            digest = hashlib.sha256(collector.encode()).hexdigest()[:12]
            claims.update({"sub": f"dev-member-{digest}", claim: collector})
            claims["scope"] = " ".join(scopes or MEMBER_SCOPES)
        else:
            claims.update({"sub": "dev-partner-backend@clients", "client_id": MACHINE_CLIENT_ID})
            claims["scope"] = " ".join(scopes or M2M_SCOPES)
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "token_endpoint": f"{self.issuer}/token",
            "id_token_signing_alg_values_supported": ["RS256"],
        }


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written whole or not at all: two processes may create it at once.
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(pem)
    temporary.chmod(0o600)
    os.replace(temporary, path)
    return _load_or_create_key(path)


class IssuerServer(HttpService):
    """HTTP: discovery, JWKS, and `POST /token` for the demo page (CORS open: local only)."""

    def __init__(
        self, issuer: DevIssuer, host: str = "127.0.0.1", port: int = DEFAULT_PORT
    ) -> None:
        super().__init__(host, port)
        self.issuer = issuer

    def respond(self, request: HttpRequest) -> HttpResponse:
        documents = {
            "/.well-known/openid-configuration": self.issuer.discovery,
            "/.well-known/jwks.json": self.issuer.jwks,
        }
        if request.method == "OPTIONS":
            response = HttpResponse(204, b"", [("Content-Type", "application/json")])
        elif request.method == "GET" and request.target in documents:
            response = json_response(200, documents[request.target]())
        elif request.method == "POST" and request.target == "/token":
            response = self._token(request.body)
        else:
            response = json_response(404, {"error": "not found"})
        return self._with_cors(request, response)

    def refusal(self, status: int, message: str) -> HttpResponse:
        return json_response(status, {"error": message}, [("Cache-Control", "no-store")])

    def _token(self, body: bytes) -> HttpResponse:
        try:
            fields = json.loads(body or b"{}")
            scopes = fields.get("scopes")
            token = self.issuer.token(
                collector=fields.get("collectorNumber"),
                scopes=tuple(scopes.split()) if isinstance(scopes, str) else None,
            )
        except (ValueError, AttributeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        )

    @staticmethod
    def _with_cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers += [
            ("Cache-Control", "no-store"),
            ("Access-Control-Allow-Origin", request.headers.get("Origin") or "*"),
            ("Access-Control-Allow-Methods", "GET, POST"),
            ("Access-Control-Allow-Headers", "Content-Type"),
        ]
        return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.issuer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a dev token (alone on the last line)")
    token.add_argument("--collector", help="member token for this collector (11 digits)")
    token.add_argument("--m2m", action="store_true", help="machine token (no collector claim)")
    token.add_argument("--scopes", help="space-separated scopes replacing the defaults")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    if bool(args.collector) == bool(args.m2m):
        parser.error("give either --collector NUMBER or --m2m")
    issuer = DevIssuer(issuer_url())
    try:
        value = issuer.token(
            collector=args.collector,
            scopes=tuple(args.scopes.split()) if args.scopes else None,
            ttl=args.ttl,
        )
    except ValueError as exc:
        parser.error(str(exc))
    kind = (
        f"member token for collector *******{args.collector[-4:]}"
        if args.collector
        else "machine token"
    )
    print(f"{kind}, issuer {issuer.issuer}, valid {args.ttl} s:")
    print(value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
