"""The local stack as a subprocess on free ports (`python -m local.stack`), for tests that
drive the whole product over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
import requests

from local.issuer import DevIssuer
from local.serving import free_ports
from local.stack import RESOURCE_PREFIX, Ports, template_parameters
from local.template import ROOT, Template
from tests.support import leaks
from tests.support.sandbox_control import SandboxControl
from tests.support.tables import LEAK_CHECKED_TABLES, StackTables

READY = "Offer State Gateway ready on "  # local/stack.py's line once the gateway listens


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment minus what a parent `make` passes down (so a `make` run from a test
    behaves as one typed in a terminal: no "Entering directory" lines, no jobserver)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return {**env, **extra}


def longest_answer_seconds() -> float:
    """The longest the local stack may take to answer a call to the API, with its answer or
    an error: a wait for a free environment (up to the function's Timeout, local/functions.py),
    the environment's cold start (up to 60 s there), the invocation (up to the Timeout). A bound
    for a wait on an answer, not how long one takes."""
    template = Template(parameters=template_parameters("http://127.0.0.1", "http://127.0.0.1"))
    functions = {route.function for route in template.routes()}
    timeouts = [template.resolve(template.function_properties(f)["Timeout"]) for f in functions]
    return 60 + 2 * max(timeouts)


# Every port the local stack binds, by the variable `Ports.from_env` reads it from.
STACK_PORT_VARIABLES = tuple(f"{port.name.upper()}_PORT" for port in fields(Ports))


def stack_env(tmp_path: Path, **extra: str) -> tuple[dict[str, int], dict[str, str]]:
    """A free port for every port the local stack binds, and the environment (`clean_env`)
    that hands them to it, with a dev issuer key file of its own under `tmp_path`:
    (ports by variable, environment)."""
    ports = dict(zip(STACK_PORT_VARIABLES, free_ports(len(STACK_PORT_VARIABLES)), strict=True))
    env = clean_env(
        **{
            **{k: str(v) for k, v in ports.items()},
            "DEV_ISSUER_KEY_FILE": str(tmp_path / "dev-issuer-key.pem"),
            "PYTHONUNBUFFERED": "1",
            **extra,  # may override any of them
        }
    )
    return ports, env


def child_pids(pid: int) -> set[int]:
    """The processes `pid` started, and theirs, as Linux's /proc lists them now."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            for child in map(int, (task / "children").read_text().split()):
                found |= {child, *child_pids(child)}
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RunningStack(StackTables):
    process: subprocess.Popen[str]
    ports: dict[str, int]
    env: dict[str, str]
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['GATEWAY_PORT']}"

    @cached_property
    def sandbox_control(self) -> SandboxControl:
        """The control client of the stack's sandbox."""
        return SandboxControl(f"http://127.0.0.1:{self.ports['SANDBOX_PORT']}")

    @property
    def issuer(self) -> DevIssuer:
        return DevIssuer(
            f"http://127.0.0.1:{self.ports['ISSUER_PORT']}", Path(self.env["DEV_ISSUER_KEY_FILE"])
        )

    def token(self, collector: str | None = "80000000110", **kwargs: Any) -> str:
        return self.issuer.token(collector=collector, **kwargs)

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        answer = requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        leaks.record(f"gateway answer {method} {path}", answer.text)
        return answer

    def leak_findings(self) -> list[str]:
        """Everything the stack printed (its logs, the functions' logs and metrics) and
        every item it stored, checked for leaks (call after `stop`)."""
        found = leaks.findings("stack output", "".join(self.output))
        for table in LEAK_CHECKED_TABLES:
            found += leaks.findings(table, self.table_text(table))
        return found

    def table(self, logical_id: str) -> Any:
        dynamodb = boto3.resource(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{self.ports['MOTO_PORT']}",
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return dynamodb.Table(f"{RESOURCE_PREFIX}-{logical_id}")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start_stack(tmp_path: Path, extra_env: dict[str, str] | None = None) -> RunningStack:
    ports, env = stack_env(tmp_path, **(extra_env or {}))
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = RunningStack(process, ports, env)
    ready = threading.Event()

    def drain() -> None:  # keep reading, or the stack blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line)
            if READY in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while not ready.wait(0.1) and time.monotonic() < deadline:
        pass
    if process.poll() is not None or not any(READY in line for line in stack.output):
        stack.stop()
        raise RuntimeError("the local stack did not start:\n" + "".join(stack.output[-40:]))
    return stack
