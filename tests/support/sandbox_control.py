"""A small client of the sandbox's control API (`/_sandbox/...`), for tests."""

from __future__ import annotations

from typing import Any

import requests


class SandboxControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = requests.Session()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, f"{self.url}/_sandbox{path}", json=body, timeout=5)
        assert response.status_code == 200, response.text  # every control call answers 200
        return response.json()

    def reset(self) -> None:
        self._json("POST", "/reset")

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused (401) from now on."""
        self._json("POST", "/tokens/revoke")

    def calls(self) -> dict[str, int]:
        return self._json("GET", "/calls")

    def offers(self) -> list[str]:
        return self._json("GET", "/offers")["offerIds"]

    def raw_states(self, collector: str) -> dict[str, Any]:
        """Everything stored for the collector, as the control API shows it."""
        return self._json("GET", f"/collectors/{collector}/states")

    def states(self, collector: str) -> dict[str, dict[str, str]]:
        """{offerId: {name: value}} of everything stored for the collector."""
        answer = self.raw_states(collector)
        return {
            o["offerId"]: {s["name"]: s["value"] for s in o["states"]} for o in answer["offers"]
        }

    def member_token(self, collector: str) -> str:
        return self._json("POST", "/member-token", {"collectorNumber": collector})["access_token"]

    def config(self, **settings: Any) -> dict[str, Any]:
        return self._json("POST", "/config", settings)

    def fault(self, endpoint: str, mode: str, **spec: Any) -> dict[str, Any]:
        """Registers a fault; the fault as the sandbox stored it."""
        return self._json("POST", "/faults", {"endpoint": endpoint, "mode": mode, **spec})["fault"]

    def faults(self) -> list[dict[str, Any]]:
        """The faults registered, as the sandbox lists them."""
        return self._json("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self._json("DELETE", "/faults")

    def requests(self) -> list[dict[str, Any]]:
        return self._json("GET", "/requests")["requests"]

    def untouched_offers(self, n: int) -> list[str]:
        """`n` catalogue offers that no seeded collector has a state for."""
        return self.offers()[:n]
