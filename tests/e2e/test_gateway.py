"""The local gateway's own behaviour, with a small function and template made for it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local import functions
from local.functions import FunctionPool, FunctionSpec, FunctionThrottled
from local.gateway import JwtAuthorizer, LocalGateway
from local.issuer import DevIssuer, IssuerServer
from local.template import ROOT, Template
from tests.support.raw_http import raw_exchange, request_bytes
from tests.support.stack import child_pids
from tests.support.waiting import wait_until

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration: {issuer: !Ref Issuer, audience: [offer-state-gateway]}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: CODE
      Handler: app.lambda_handler
      Runtime: python3.13
      Timeout: 3
      MemorySize: 192
      Environment:
        Variables:
          FROM_TEMPLATE: !Sub "${Issuer}/x"
      Events: EVENTS
"""


OPEN = {"Authorizer": "NONE"}
EVENTS = {
    "Plain": {"Path": "/plain", "Method": "GET", "Auth": OPEN},
    "Items": {"Path": "/items/{id}", "Method": "GET", "Auth": OPEN},
    "Literal": {"Path": "/items/special", "Method": "GET", "Auth": OPEN},
    "Raise": {"Path": "/raise", "Method": "GET", "Auth": OPEN},
    "Slow": {"Path": "/slow", "Method": "GET", "Auth": OPEN},
    "Block": {"Path": "/block", "Method": "GET", "Auth": OPEN},
    "Binary": {"Path": "/binary", "Method": "POST", "Auth": OPEN},
    "Secured": {
        "Path": "/secured",
        "Method": "GET",
        "Auth": {"AuthorizationScopes": ["offers/state.read"]},
    },
}


@pytest.fixture(scope="module")
def echo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Template, DevIssuer]]:
    """The template of the echo function, and the dev issuer its authorizer trusts (serving)."""
    folder = tmp_path_factory.mktemp("gateway")
    code = Path(__file__).parent / "echo_function"
    path = folder / "template.yaml"
    events = json.dumps({k: {"Type": "HttpApi", "Properties": v} for k, v in EVENTS.items()})
    text = textwrap.dedent(TEMPLATE).replace("CODE", str(code.relative_to(ROOT)))
    path.write_text(text.replace("EVENTS", events))  # JSON is YAML
    issuer = DevIssuer("http://127.0.0.1:0", folder / "key.pem")
    issuer_server = IssuerServer(issuer, port=0).start()
    issuer.issuer = f"http://127.0.0.1:{issuer_server.port}"  # known once it listens
    yield Template(path, parameters={"Issuer": issuer.issuer}), issuer
    issuer_server.stop()


def _echo_pool(template: Template, timeout: float | None = None, **kwargs: Any) -> FunctionPool:
    """A pool of the echo function; `timeout` replaces its Timeout (3 s in the template:
    room for a fresh environment's first invocation on a loaded machine; /slow sleeps 30 s)."""
    spec = FunctionSpec.from_template(template, "EchoFunction", "http://127.0.0.1:1")
    if timeout is not None:
        spec = dataclasses.replace(spec, timeout=timeout)
    return FunctionPool(spec, **kwargs)


@pytest.fixture(scope="module")
def gateway(echo_template: tuple[Template, DevIssuer]) -> Iterator[tuple[str, DevIssuer]]:
    template, issuer = echo_template
    pool = _echo_pool(template)
    server = LocalGateway(
        template,
        {"EchoFunction": pool},
        JwtAuthorizer(issuer.issuer, ["offer-state-gateway"]),
        port=0,
    ).start()
    yield f"http://127.0.0.1:{server.port}", issuer
    server.stop()
    pool.close()


def test_a_plain_object_becomes_a_200_json_answer_with_the_event_as_api_gateway_builds_it(gateway):
    url, _ = gateway
    answer = requests.get(
        f"{url}/plain?a=1&a=2&b=x%20y", headers={"X-Thing": "v", "Cookie": "c=1"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /plain"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["headers"]["x-thing"] == "v"
    assert event["cookies"] == ["c=1"]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"] == answer.headers["apigw-requestid"]
    assert event["requestContext"]["timeEpoch"] > 0
    assert 0 < body["remaining_ms"] <= 3000
    assert body["memory"] == "192"  # the runtime client's context reads it from the variable
    env = body["env"]
    assert env["_HANDLER"] == "app.lambda_handler"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"  # no SnapStart in its template
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["FROM_TEMPLATE"] == f"{gateway[1].issuer}/x"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert "VIRTUAL_ENV" not in env and "PYTEST_CURRENT_TEST" not in env  # nothing of ours leaks in


def test_literal_paths_win_over_variables(gateway):
    url, _ = gateway
    assert (
        requests.get(f"{url}/items/special", timeout=10).json()["event"]["routeKey"]
        == "GET /items/special"
    )
    event = requests.get(f"{url}/items/42", timeout=10).json()["event"]
    assert (event["routeKey"], event["pathParameters"]) == ("GET /items/{id}", {"id": "42"})


def test_status_headers_cookies_and_base64_bodies_are_translated(gateway):
    url, _ = gateway
    answer = requests.post(f"{url}/binary", timeout=10)
    assert answer.status_code == 201
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["X-Extra"] == "1"
    assert answer.content == b"\x89PNG\x00\xff"
    assert answer.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2"]


def test_a_handler_that_raises_is_an_internal_server_error(gateway):
    url, _ = gateway
    answer = requests.get(f"{url}/raise", timeout=10)
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert requests.get(f"{url}/plain", timeout=10).status_code == 200  # the environment lives on


def test_a_handler_past_its_timeout_is_an_internal_server_error(gateway):
    url, _ = gateway
    answer = requests.get(f"{url}/slow", timeout=10)
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert requests.get(f"{url}/plain", timeout=10).status_code == 200  # a new environment


def test_a_timed_out_environment_is_ended_and_replaced(echo_template):
    lines: list[str] = []
    pool = _echo_pool(echo_template[0], max_environments=1, stdout=lines.append)
    before = child_pids(os.getpid())
    try:
        pool.warm()
        [timed_out] = child_pids(os.getpid()) - before
        with pytest.raises(functions.FunctionTimeout) as timed_out_error:
            pool.invoke({"rawPath": "/slow"}, "req-1")
        assert timed_out_error.value.error == {  # Lambda's report of a timed-out invocation
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: req-1 Error: Task timed out after 3.00 seconds",
        }
        assert not Path(f"/proc/{timed_out}").exists()
        assert pool.invoke({"rawPath": "/other"}) == OK
        assert child_pids(os.getpid()) - before not in (set(), {timed_out})
        assert pool.started == 2
    finally:
        pool.close()


def test_an_environment_that_exits_is_reported_as_lambda_reports_it(echo_template):
    """The process ends mid-invocation: Runtime.ExitError, as the Invoke API (so make invoke
    and the schedule lines) report it; the next invocation gets a new environment."""
    pool = _echo_pool(echo_template[0], max_environments=1, stdout=[].append)
    try:
        with pytest.raises(functions.FunctionCrashed) as crashed:
            pool.invoke({"rawPath": "/exit"}, "req-2")
        exit_error = {
            "errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: req-2 Error: Runtime exited with error: exit status 3",
        }
        assert crashed.value.error == exit_error
        reply = functions.invoker(pool)({"rawPath": "/exit"})
        assert reply["errorType"] == "Runtime.ExitError"
        assert reply["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
        assert pool.invoke({"rawPath": "/other"}) == OK
    finally:
        pool.close()


def test_a_broken_handler_module_is_api_gateways_failed_integration_and_logs_the_report(
    echo_template, tmp_path: Path
):
    """The runtime client cannot import the handler: it reports the init error to the Runtime
    API and on its output, as in CloudWatch; the gateway answers as API Gateway does when the
    integration fails."""
    (tmp_path / "app.py").write_text("import no_such_module\n")
    template, issuer = echo_template
    spec = FunctionSpec.from_template(template, "EchoFunction", "http://127.0.0.1:1")
    lines: list[str] = []
    pool = FunctionPool(dataclasses.replace(spec, task_root=tmp_path), stdout=lines.append)
    logged: list[str] = []
    authorizer = JwtAuthorizer(issuer.issuer, ["offer-state-gateway"])
    server = LocalGateway(template, {"EchoFunction": pool}, authorizer, port=0, log=logged.append)
    with server:
        answer = requests.get(f"http://127.0.0.1:{server.port}/plain", timeout=30)
    pool.close()
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    report = "[ERROR] Runtime.ImportModuleError: Unable to import module 'app':"
    assert [line for line in lines if line.startswith(report)] == [
        f"{report} No module named 'no_such_module'"
    ]
    assert any("Runtime.ImportModuleError" in line for line in logged)


def test_the_authorizer_wants_a_token_401_and_the_route_scope_403(gateway):
    url, issuer = gateway
    assert requests.get(f"{url}/secured", timeout=10).status_code == 401
    no_scope = issuer.token(collector="80000000110", scopes=("other",))
    assert (
        requests.get(
            f"{url}/secured", headers={"Authorization": f"Bearer {no_scope}"}, timeout=10
        ).status_code
        == 403
    )
    good = issuer.token(collector="80000000110", scopes=("offers/state.read",))
    answer = requests.get(f"{url}/secured", headers={"Authorization": f"Bearer {good}"}, timeout=10)
    assert answer.status_code == 200


def test_an_unknown_path_or_an_undeclared_method_is_not_found(gateway):
    url, _ = gateway
    assert requests.get(f"{url}/nope", timeout=10).json() == {"message": "Not Found"}
    assert requests.delete(f"{url}/plain", timeout=10).status_code == 404


# Every method, declared path or not: only GET /plain is declared there.
@pytest.mark.parametrize("target", ["/plain", "/nope"])
@pytest.mark.parametrize("method", ["TRACE", "PATCH", "DELETE", "POST", "HEAD", "FOO", "CONNECT"])
def test_undeclared_methods_and_paths_get_api_gateways_404(gateway, method, target):
    answer = raw_exchange(_port(gateway), request_bytes(method, target), head=method == "HEAD")
    _assert_not_found(answer, method)


def test_a_connect_request_line_gets_api_gateways_404(gateway):
    answer = raw_exchange(_port(gateway), b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
    _assert_not_found(answer, "CONNECT")


@pytest.mark.parametrize(
    "request_data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /plain\r\n\r\n",
        request_bytes("POST", "/binary", "Content-Length: abc"),
        request_bytes("POST", "/binary", "Content-Length: -1"),
        request_bytes("POST", "/binary", "Content-Length: 1", "Content-Length: 2", body=b"ab"),
    ],
    ids=[
        "garbage",
        "HTTP/9.9",
        "HTTP/0.9",
        "Content-Length abc",
        "Content-Length -1",
        "two Content-Lengths",
    ],
)
def test_a_request_the_gateway_cannot_read_is_a_400_json_answer(gateway, request_data):
    answer = raw_exchange(_port(gateway), request_data)
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"message": "Bad Request"}


def test_a_body_over_10_mb_is_a_413_json_answer(gateway):
    request_data = request_bytes("POST", "/binary", f"Content-Length: {10 * 1024 * 1024 + 1}")
    answer = raw_exchange(_port(gateway), request_data)
    assert (answer.status, answer.json()) == (413, {"message": "Request Entity Too Large"})


def test_an_environment_ignores_sigint_and_ends_quietly_when_its_input_ends(
    echo_template, capsys: pytest.CaptureFixture[str]
):
    """A terminal's Ctrl-C reaches the function environments too: they live on (the stack
    ends them) and print no KeyboardInterrupt traceback."""
    before = child_pids(os.getpid())
    pool = _echo_pool(echo_template[0], max_environments=1)
    try:
        pool.warm()
        [pid] = child_pids(os.getpid()) - before
        os.kill(pid, signal.SIGINT)
        assert pool.invoke({"rawPath": "/other"}) == {"result": {"statusCode": 200, "body": "ok"}}
        assert child_pids(os.getpid()) - before == {pid}  # the same environment answered
    finally:
        pool.close()
    assert not Path(f"/proc/{pid}").exists()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "KeyboardInterrupt" not in out + err


class _Block:
    """Invocations of the echo function's `/block`, each holding its environment until
    released: the event to send, and whether it runs yet."""

    def __init__(self, folder: Path) -> None:
        self.release_file = folder / "release"

    @property
    def query(self) -> dict[str, str]:
        return {"release": str(self.release_file)}

    @property
    def event(self) -> dict[str, Any]:
        return {"rawPath": "/block", "queryStringParameters": self.query}

    def running(self) -> bool:
        return Path(f"{self.release_file}.started").exists()

    def release(self) -> None:
        self.release_file.touch()


class _HeldStarts:
    """Counts the environments the pools start, and holds each start (before its process
    exists) until `until(arrivals)` holds; arrivals are the starts plus each `arrive()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, until: Callable[[int], bool]) -> None:
        self.starts = 0
        self._arrivals = 0
        self._until = until
        self._changed = threading.Condition()
        held = self

        class HeldEnvironment(functions.Environment):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                held._start()
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(functions, "Environment", HeldEnvironment)

    def arrive(self) -> None:
        with self._changed:
            self._arrivals += 1
            self._changed.notify_all()

    def _start(self) -> None:
        with self._changed:
            self.starts += 1
            self._arrivals += 1
            self._changed.notify_all()
            # A guard against a hang, not a timing: the condition comes or the test fails.
            assert self._changed.wait_for(lambda: self._until(self._arrivals), timeout=60)


def _burst(count: int, invoke: Callable[[], object]) -> list[object]:
    """`count` calls of `invoke` at once, each in its thread: what each returned or raised."""
    outcomes: list[object] = []

    def call() -> None:
        try:
            outcomes.append(invoke())
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


OK = {"result": {"statusCode": 200, "body": "ok"}}


def test_a_burst_starts_exactly_the_cap_of_environments_and_refuses_the_rest(
    echo_template, monkeypatch
):
    """16 invocations at once, cap 4, no wait: 4 environments are started, 12 invocations are
    throttled. Each start is held until all 16 have either started an environment or been
    refused, so a pool that counted a slot only once its process was up (the race the cap
    had) would start all 16."""
    burst, cap = 16, 4
    held = _HeldStarts(monkeypatch, until=lambda arrivals: arrivals >= burst)
    pool = _echo_pool(echo_template[0], max_environments=cap, wait=0)

    def invoke() -> object:
        try:
            return pool.invoke({"rawPath": "/other"})
        except FunctionThrottled:
            held.arrive()
            raise

    try:
        outcomes = _burst(burst, invoke)
    finally:
        pool.close()
    assert held.starts == pool.started == cap
    assert [o for o in outcomes if not isinstance(o, FunctionThrottled)] == [OK] * cap
    assert sum(isinstance(o, FunctionThrottled) for o in outcomes) == burst - cap


def test_beyond_the_cap_a_burst_waits_for_the_environments_there_are(echo_template, monkeypatch):
    """16 invocations at once, cap 4, a long wait: all 16 are answered by 4 environments (the
    starts are held until 4 have begun, so none ends before the others queue)."""
    burst, cap = 16, 4
    held = _HeldStarts(monkeypatch, until=lambda arrivals: arrivals >= cap)
    pool = _echo_pool(echo_template[0], max_environments=cap, wait=60)
    try:
        outcomes = _burst(burst, lambda: pool.invoke({"rawPath": "/other"}))
    finally:
        pool.close()
    assert outcomes == [OK] * burst
    assert held.starts == pool.started == cap


def test_an_invocation_beyond_the_cap_waits_for_an_environment_to_come_free(
    echo_template, tmp_path
):
    block = _Block(tmp_path)
    pool = _echo_pool(echo_template[0], timeout=60, max_environments=1, wait=60)
    try:
        first = threading.Thread(target=pool.invoke, args=(block.event,))
        first.start()
        assert wait_until(block.running)
        answers: list[object] = []
        second = threading.Thread(target=lambda: answers.append(pool.invoke({"rawPath": "/x"})))
        second.start()
        assert wait_until(lambda: pool.waiting == 1)
        assert answers == []  # still waiting: the one environment is busy
        block.release()
        first.join()
        second.join()
    finally:
        block.release()
        pool.close()
    assert answers == [OK]
    assert pool.started == 1  # the same environment answered both


def test_no_environment_free_within_the_wait_is_api_gateways_answer_to_a_throttled_function(
    echo_template, tmp_path
):
    """API Gateway answers a function Lambda throttles with its plain 500 (see the gateway)."""
    template, issuer = echo_template
    block = _Block(tmp_path)
    pool = _echo_pool(template, timeout=60, max_environments=1, wait=0.1)
    lines: list[str] = []
    server = LocalGateway(
        template,
        {"EchoFunction": pool},
        JwtAuthorizer(issuer.issuer, ["offer-state-gateway"]),
        port=0,
        log=lines.append,
    ).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        first = threading.Thread(
            target=requests.get,
            args=(f"{url}/block",),
            kwargs={"params": block.query, "timeout": 60},
        )
        first.start()
        assert wait_until(block.running)
        answer = requests.get(f"{url}/plain", timeout=10)
        block.release()
        first.join()
    finally:
        block.release()
        server.stop()
        pool.close()
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert answer.headers["Content-Type"] == "application/json"
    [throttled] = [line for line in lines if "throttled" in line]
    assert answer.headers["apigw-requestid"] in throttled
    assert "all 1 environments stayed busy for 0.1 s" in throttled


def _port(gateway: tuple[str, DevIssuer]) -> int:
    port = urlsplit(gateway[0]).port
    assert port is not None
    return port


def _assert_not_found(answer, method: str) -> None:
    assert answer.status == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body == (b"" if method == "HEAD" else b'{"message":"Not Found"}')


SNAPSTART_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  RestoreFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/get_state
      Handler: app.lambda_handler
      Runtime: python3.13
      Timeout: 3
      MemorySize: 128
      SnapStart: {ApplyOn: PublishedVersions}
"""

SLOW_RESTORE = """
import time

from snapshot_restore_py import register_after_restore

register_after_restore(lambda: time.sleep(2))


def lambda_handler(event, context):
    remaining = context.get_remaining_time_in_millis()
    time.sleep(event["sleep"])
    return {"remaining_ms": remaining}
"""


def _snapstart_pool(
    tmp_path: Path, code: str, stdout: Callable[[str], None] | None = None
) -> FunctionPool:
    """A pool of SNAPSTART_TEMPLATE's RestoreFunction whose app.py is `code`."""
    (tmp_path / "template.yaml").write_text(SNAPSTART_TEMPLATE)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(code)
    spec = FunctionSpec.from_template(
        Template(tmp_path / "template.yaml"), "RestoreFunction", "http://127.0.0.1:1"
    )
    spec = dataclasses.replace(spec, task_root=tmp_path / "code")
    return FunctionPool(spec) if stdout is None else FunctionPool(spec, stdout=stdout)


def test_the_timeout_runs_from_the_deadline_the_handler_sees_after_a_slow_restore(
    tmp_path: Path,
):
    """A 2 s after-restore hook, a 3 s Timeout: the handler's context gives it about 3 s,
    and the environment lets it use them (the restore has a limit of its own)."""
    pool = _snapstart_pool(tmp_path, SLOW_RESTORE)
    assert pool.spec.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    try:
        reply = pool.invoke({"sleep": 2.5})
    finally:
        pool.close()
    assert 2500 < reply["result"]["remaining_ms"] <= 3000


PRINTING_HOOKS = """
from snapshot_restore_py import register_after_restore, register_before_snapshot

register_before_snapshot(lambda: print("before-snapshot", flush=True))
register_after_restore(lambda: print("after-restore", flush=True))


def lambda_handler(event, context):
    return {}
"""


def test_an_idle_snapstart_environment_is_not_restored_when_it_ends(tmp_path: Path):
    lines: list[str] = []
    pool = _snapstart_pool(tmp_path, PRINTING_HOOKS, lines.append)
    pool.warm()  # init and the before-snapshot hook; then it waits on restore/next
    pool.close()
    assert "before-snapshot" in lines
    assert "after-restore" not in lines


def test_an_init_past_its_limit_is_sandbox_timedout_and_a_failed_integration(
    echo_template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Lambda's 10 s for init (shortened here to 1 s): a hanging init fails the request as
    Lambda reports it, and the gateway answers as for a failed integration."""
    assert functions.INIT_TIMEOUT == 10
    monkeypatch.setattr(functions, "INIT_TIMEOUT", 1.0)
    (tmp_path / "app.py").write_text("import time\n\ntime.sleep(60)\n")
    template, issuer = echo_template
    spec = FunctionSpec.from_template(template, "EchoFunction", "http://127.0.0.1:1")
    printed: list[str] = []
    pool = FunctionPool(dataclasses.replace(spec, task_root=tmp_path), stdout=printed.append)
    try:
        with pytest.raises(functions.FunctionTimeout) as timed_out:
            pool.invoke({"rawPath": "/plain"}, "req-3")
        assert timed_out.value.error == {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "RequestId: req-3 Error: Init timed out after 1.00 seconds",
        }
        logged: list[str] = []
        authorizer = JwtAuthorizer(issuer.issuer, ["offer-state-gateway"])
        server = LocalGateway(
            template, {"EchoFunction": pool}, authorizer, port=0, log=logged.append
        )
        with server:
            answer = requests.get(f"http://127.0.0.1:{server.port}/plain", timeout=30)
    finally:
        pool.close()
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert any("Sandbox.Timedout" in line and "Init timed out" in line for line in logged)


ORPHANING_STACK = """
import sys, threading, time
from pathlib import Path
from local.functions import FunctionPool, FunctionSpec
from local.template import Template

template = Template(Path(sys.argv[1]), parameters={"Issuer": sys.argv[2]})
spec = FunctionSpec.from_template(template, "EchoFunction", "http://127.0.0.1:1")
pool = FunctionPool(spec, max_environments=1)
warming = threading.Thread(target=pool.warm)  # as the gateway's request threads start them
warming.start()
warming.join()
time.sleep(0.5)  # its starting thread has ended: it must live on
release = sys.argv[3]
event = {"rawPath": "/block", "queryStringParameters": {"release": release}}
threading.Thread(target=pool.invoke, args=(event,), daemon=True).start()
while not Path(release + ".started").exists():
    time.sleep(0.01)
print(pool.started, flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_sigkilled_stack_leaves_no_busy_environment_behind(echo_template, tmp_path: Path):
    """A busy environment gets SIGKILL when the stack dies, however it dies (an idle one ends
    anyway: its Runtime API is gone); not when the thread that started it ends (Linux's
    death signal follows the forking thread)."""
    template, issuer = echo_template
    release = tmp_path / "release"
    stack = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_STACK, str(template.path), issuer.issuer, str(release)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert stack.stdout is not None
        assert stack.stdout.readline() == "1\n"  # the warmed environment took the invocation
        [environment] = child_pids(stack.pid)
        stack.kill()
        stack.wait()
        assert wait_until(lambda: not _running(environment), 10)
    finally:
        stack.kill()
        stack.wait()
        release.touch()  # whatever happened, nothing is left blocking


def test_a_restore_past_its_limit_is_sandbox_timedout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Lambda's 10 s for a restore and its after-restore hooks (shortened here to 1 s against a
    2 s hook): the invocation fails as Sandbox.Timedout, the environment ends."""
    assert functions.RESTORE_TIMEOUT == 10
    monkeypatch.setattr(functions, "RESTORE_TIMEOUT", 1.0)
    printed: list[str] = []
    pool = _snapstart_pool(tmp_path, SLOW_RESTORE, printed.append)
    try:
        with pytest.raises(functions.FunctionTimeout) as timed_out:
            pool.invoke({"sleep": 0}, "req-4")
    finally:
        pool.close()
    assert timed_out.value.error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: req-4 Error: Restore timed out after 1.00 seconds",
    }
