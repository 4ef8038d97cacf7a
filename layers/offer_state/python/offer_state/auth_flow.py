"""Between the client and the transport: the bearer token a call carries, and its renewal
after a 401.

**The rule.** A call made with a member's own token carries it as given, and its 401 is the
answer (the member's token is the member's to renew). Any other call carries the machine
token of the token provider (offer_state.auth). When AIR MILES answers 401 to that token
(revoked or rotated), the token is dropped and the request is sent again with the provider's
next one: a 401 says the request was not processed, so even a change may be sent again. Up to
twice: a revocation can catch both the token held here and the newer one already stored beside
it (the provider never hands out a token it was told was refused). When the renewed tokens are
refused as well, renewing is held off for the provider's `token_refused_cooldown`, and in that
time a 401 is the answer at once.

This layer asks the provider for a token and tells it which was refused; it never reads the
provider's state, and the transport below it (deadline, retries, the PUT rule) knows nothing
of tokens.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from offer_state.auth import TokenProvider
from offer_state.deadlines import Deadline
from offer_state.transport import RequestData, Transport

_RENEWALS = 2  # after a 401 (the module docstring)


class AuthFlow:
    """Sends a request with its bearer token, renewing a refused machine token (up to twice)."""

    def __init__(self, transport: Transport, tokens: TokenProvider | None) -> None:
        self.transport = transport
        self.tokens = tokens  # None: only calls with a member's token are possible

    def send(
        self,
        member_token: str | None,
        endpoint: str,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        correlation_id: str,
        headers: Mapping[str, str],
        params: RequestData = None,
        data: RequestData = None,
        repeatable: bool = True,
    ) -> requests.Response:
        """The transport's answer to the request with `member_token`, or else the machine
        token (renewed up to twice after a 401, the module docstring)."""

        def send_with(token: str) -> requests.Response:
            return self.transport.send(
                endpoint,
                method,
                url,
                deadline=deadline,
                correlation_id=correlation_id,
                headers={**headers, "Authorization": f"Bearer {token}"},
                params=params,
                data=data,
                repeatable=repeatable,
            )

        if member_token is not None:
            return send_with(member_token)
        tokens = self._provider()
        token = tokens.token(deadline, correlation_id)
        response = send_with(token)
        for _renewal in range(_RENEWALS):
            if response.status_code != 401 or not tokens.may_renew():
                return response
            tokens.invalidate(token)
            token = tokens.token(deadline, correlation_id)
            response = send_with(token)
        if response.status_code == 401:
            tokens.renewal_refused()  # the renewed tokens refused as well
        return response

    def _provider(self) -> TokenProvider:
        if self.tokens is None:
            raise ValueError("this client has no credentials: pass a MemberToken")
        return self.tokens
