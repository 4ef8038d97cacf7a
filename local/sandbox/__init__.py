"""The AIR MILES sandbox: a faithful local stand-in for the AIR MILES test environment.

It serves the Auth0 token endpoint (`POST /oauth/token`, client credentials), the JWKS of its
signing key (`GET /.well-known/jwks.json`), the Offer State API (health, FIND, GET, COUNT,
PUT) and a control API under `/_sandbox/` (docs/local-stack.md, "The AIR MILES sandbox").

Calls and fields added for the tests (docs/local-stack.md, "Control API", lists every call):
- `POST /_sandbox/config` also takes `putStatus` (204, the default, or 200: PUT then answers
  `200 {}`) and `findTotals` (true, the default; false: FIND leaves out `pageNumber`,
  `pageSize` and `totalCount`). `tokenTtl` may be 0 (tokens already expired).
  `GET /_sandbox/config` answers the current config.
- Faults take `retryAfter` (seconds, default 1): the `Retry-After` value on 429 and 503.
  `GET /_sandbox/faults` lists them (`remaining` counts down when `count` was given).
- Fault modes on the wire, each done to the endpoint's own answer: `truncate` (the whole
  body's `Content-Length`, half the body, then a clean close), `drip` (the whole answer,
  status line first, one byte every `intervalMs`, default 200, 1 or more; it ends when faults
  are cleared, the sandbox stops or the client goes away) and `badGzip` (`Content-Encoding:
  gzip` on the plain body). A PUT that succeeds answers them `200` with the changes echoed,
  `{"stateChanges": [...]}` (a 204 has no body to misbehave with).
- `applied` (boolean, `put` faults of mode delay, timeout, reset, truncate or drip only):
  true stores the change before the answer misbehaves; false, the default, does not (`delay`
  then stores it after the wait, as a slow server would; the others never store it). A PUT
  under `badGzip` is stored; under `status` or `malformed` it is not.
- `GET /_sandbox/requests`: the last 500 calls of the counted endpoints, oldest first, with
  headers (the Authorization value redacted), query and status; PUT bodies are kept, token
  request bodies never (they hold the client secret).

Use: `with Sandbox(port=0) as sb: requests.get(sb.url + ...)`, or `python -m local.sandbox`.

Layout: `state.SandboxState` is everything the sandbox knows; the endpoints
(`token_endpoint`, `offer_api`, `control_api`) read and change it; `dispatch` routes a request
to them through the counted-call pipeline and the faults; `server.Sandbox` is the HTTP side
(`local.serving`'s base), which puts each reply on the wire.

The sandbox is independent of what it stands in front of: no module here imports
`offer_state` (the layer that calls AIR MILES), so a bug there cannot hide itself by being
mirrored here. tests/sandbox/test_independence.py enforces it.
"""

from local.sandbox.server import Sandbox
from local.sandbox.tokens import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    COLLECTOR_CLAIM,
    MEMBER_AUDIENCE,
    TOKEN_PATH,
)

__all__ = [
    "AUDIENCE",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "COLLECTOR_CLAIM",
    "MEMBER_AUDIENCE",
    "TOKEN_PATH",
    "Sandbox",
]
