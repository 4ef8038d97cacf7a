"""The partner demo page's own origin (`make run` serves it on 127.0.0.1:3003, DEMO_PORT).

Static files from local/demo/, plus what a partner's own web server would provide:
`/config.json` (where the API and the sign-in are) and `/catalogue.json` (the offers to show:
here the sandbox's catalogue; on a real site, the partner's own offer feed).
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from local.serving import HttpRequest, HttpResponse, HttpService, loopback_session

PAGE_DIR = Path(__file__).with_name("demo")


class DemoServer(HttpService):
    def __init__(
        self, *, api_url: str, issuer_url: str, sandbox_url: str, port: int, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host, port)
        self.settings = {"api": api_url, "issuer": issuer_url, "sandbox": sandbox_url}
        self._http = loopback_session()

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def respond(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return self._page(405, "text/plain", b"method not allowed", [("Allow", "GET, HEAD")])
        path = request.path
        if path == "/config.json":
            config = {k: self.settings[k] for k in ("api", "issuer")}
            return self._page(200, "application/json", json.dumps(config).encode())
        if path == "/catalogue.json":
            offers = self._catalogue()
            return self._page(200, "application/json", json.dumps({"offerIds": offers}).encode())
        name = "index.html" if path in ("/", "") else path.lstrip("/")
        file = (PAGE_DIR / name).resolve()
        if PAGE_DIR.resolve() not in file.parents or not file.is_file():
            return self._page(404, "text/plain", b"not found")
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return self._page(200, kind, file.read_bytes())

    def _catalogue(self) -> list[str]:
        answer = self._http.get(f"{self.settings['sandbox']}/_sandbox/offers", timeout=5)
        return answer.json()["offerIds"]

    def _page(
        self, status: int, kind: str, body: bytes, headers: list[tuple[str, str]] | None = None
    ) -> HttpResponse:
        # The page may talk to its own origin, the API and the sign-in, nothing else.
        connect = " ".join(["'self'", self.settings["api"], self.settings["issuer"]])
        policy = (
            f"default-src 'self'; connect-src {connect}; img-src 'self' data:;"
            " base-uri 'none'; form-action 'none'"
        )
        return HttpResponse(
            status,
            body,
            [
                ("Content-Type", kind),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", policy),
                *(headers or []),
            ],
        )
