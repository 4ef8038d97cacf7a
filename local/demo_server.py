"""The partner demo page's own origin (`make run` serves it on 127.0.0.1:3003, DEMO_PORT).

Static files from local/demo/, plus what a partner's own web server would provide:
`/config.json` (where the API and the sign-in are) and `/catalogue.json` (the offers to show:
here the sandbox's catalogue; on a real site, the partner's own offer feed).
"""

from __future__ import annotations

import json
import mimetypes
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import requests

from local.serving import BackgroundServer, loopback_session

PAGE_DIR = Path(__file__).with_name("demo")


class DemoServer(BackgroundServer):
    def __init__(
        self, *, api_url: str, issuer_url: str, sandbox_url: str, port: int, host: str = "127.0.0.1"
    ) -> None:
        settings = {"api": api_url, "issuer": issuer_url, "sandbox": sandbox_url}
        self._http = loopback_session()
        handler = type("Handler", (_Handler,), {"settings": settings, "http": self._http})
        super().__init__(handler, host, port)

    def stop(self) -> None:
        super().stop()
        self._http.close()


class _Handler(BaseHTTPRequestHandler):
    settings: ClassVar[dict[str, str]]
    http: ClassVar[requests.Session]
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/config.json":
            self._send(
                200,
                "application/json",
                json.dumps({k: self.settings[k] for k in ("api", "issuer")}).encode(),
            )
        elif path == "/catalogue.json":
            offers = self._catalogue()
            self._send(200, "application/json", json.dumps({"offerIds": offers}).encode())
        else:
            name = "index.html" if path in ("/", "") else path.lstrip("/")
            file = (PAGE_DIR / name).resolve()
            if PAGE_DIR.resolve() not in file.parents or not file.is_file():
                self._send(404, "text/plain", b"not found")
                return
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send(200, kind, file.read_bytes())

    def _catalogue(self) -> list[str]:
        answer = self.http.get(f"{self.settings['sandbox']}/_sandbox/offers", timeout=5)
        return answer.json()["offerIds"]

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # The page may talk to its own origin, the API and the sign-in, nothing else.
        connect = " ".join(["'self'", self.settings["api"], self.settings["issuer"]])
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'self'; connect-src {connect}; img-src 'self' data:;"
            " base-uri 'none'; form-action 'none'",
        )
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return None
