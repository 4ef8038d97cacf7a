"""The whole product on 127.0.0.1 (`make run`): the AIR MILES sandbox, moto (Secrets Manager,
DynamoDB and KMS) with the template's resources, the dev identity issuer, the token refresher
(on its schedule, and behind a local Lambda Invoke API for the functions' asks), the reconciler
of stale PENDING audit items (on its schedule), and the local gateway in front of the two
functions. One process tree; SIGINT or SIGTERM stops all of it.

Ports (docs/local-stack.md, "Ports"): GATEWAY_PORT 3000, SANDBOX_PORT 3001, MOTO_PORT 3002,
ISSUER_PORT 3004 (the issuer is ours; 3003 is the demo page's).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local.console import LineWriter, stderr_line, stdout_line
from local.cpu_share import function_limits
from local.demo_server import DemoServer
from local.functions import (
    FunctionCrashed,
    FunctionPool,
    FunctionSpec,
    FunctionTimeout,
    PoolLimits,
    close_pools,
    invoker,
)
from local.gateway import JwtAuthorizer, LocalGateway
from local.issuer import (
    DEFAULT_AUDIENCE,
    MACHINE_CLIENT_ID,
    DevIssuer,
    IssuerServer,
    issuer_url,
)
from local.lambda_api import LambdaApi, run_on_schedule, schedule_seconds
from local.resources import key_alias, provision, resource_name
from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, Sandbox
from local.sandbox.seed import CATALOGUE
from local.serving import stop_on_signals
from local.template import ROOT, Template, resource_ids

RESOURCE_PREFIX = "offer-state-local"  # fixed, so `make invoke` finds a running stack's tables
REGION = "us-east-1"
REFRESHER = "TokenRefresherFunction"
RECONCILER = "ReconcilePendingFunction"
# The scheduled functions, each with its scheduled event and the variable that shortens its
# period locally (a short token lifetime wants a short refresh period; the reconciler's
# period, to watch it work).
SCHEDULED = {
    REFRESHER: ("scheduled_token_refresh.json", "LOCAL_TOKEN_REFRESH_SECONDS"),
    RECONCILER: ("scheduled_reconcile.json", "LOCAL_RECONCILE_SECONDS"),
}
SCHEDULED_REFRESH = json.loads((ROOT / "events" / "scheduled_token_refresh.json").read_text())


def schedule_period(template: Template, logical_id: str) -> float:
    """Seconds between a scheduled function's runs: its schedule's, or its local override."""
    variable = SCHEDULED[logical_id][1]
    override = os.environ.get(variable, "").strip()
    if override:
        try:
            seconds = float(override)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise SystemExit(f"{variable} is seconds, more than 0; not {override!r}")
        return seconds
    events = template.function_properties(logical_id)["Events"].values()
    [schedule] = [e["Properties"]["Schedule"] for e in events if e["Type"] == "Schedule"]
    return schedule_seconds(schedule)


def scheduled_run(
    logical_id: str, invoke: Callable[[dict[str, Any]], dict[str, Any]], log: LineWriter
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`invoke`, with one console line per run: what the function returned, or its error."""

    def run(event: dict[str, Any]) -> dict[str, Any]:
        reply = invoke(event)
        if "errorType" in reply:
            outcome = f"{reply['errorType']}: {reply.get('errorMessage', '')}"
        else:
            outcome = json.dumps(reply["result"], separators=(",", ":"), default=str)
        log(f"schedule {logical_id}: {outcome}")
        return reply

    return run


@dataclass(frozen=True)
class Ports:
    gateway: int = 3000
    sandbox: int = 3001
    moto: int = 3002
    issuer: int = 3004
    demo: int = 3003

    @classmethod
    def from_env(cls) -> Ports:
        env = os.environ
        return cls(
            gateway=int(env.get("GATEWAY_PORT", cls.gateway)),
            sandbox=int(env.get("SANDBOX_PORT", cls.sandbox)),
            moto=int(env.get("MOTO_PORT", cls.moto)),
            issuer=int(env.get("ISSUER_PORT", cls.issuer)),
            demo=int(env.get("DEMO_PORT", cls.demo)),
        )


def template_parameters(sandbox_url: str, issuer: str, demo_port: int = 3003) -> dict[str, str]:
    """The parameter values the local stack deploys the template with."""
    cors = os.environ.get("CORS_ALLOW_ORIGINS", f"http://127.0.0.1:{demo_port}")
    return {
        "AirMilesBaseUrl": sandbox_url,
        "AirMilesTokenUrl": sandbox_url + TOKEN_PATH,
        "JwtIssuer": issuer,
        "JwtAudience": DEFAULT_AUDIENCE,
        "OriginClient": "external:partner:local",
        "CorsAllowOrigins": cors,
        "MachineClientIds": MACHINE_CLIENT_ID,  # the dev issuer's machine tokens
    }


def _session() -> boto3.session.Session:
    # moto takes any credentials; these keep boto3 from looking for real ones.
    return boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - not a secret: the emulator's dummy
        region_name=REGION,
    )


def aws_clients(endpoint: str, config: Config | None = None) -> dict[str, Any]:
    session = _session()
    return {
        name: session.client(name, endpoint_url=endpoint, config=config)
        for name in ("dynamodb", "kms", "secretsmanager")
    }


def existing_resources(endpoint: str) -> dict[str, str] | None:
    """What `deploy_local` made in an AWS emulation that is already running, or None."""
    quick = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})
    clients = aws_clients(endpoint, quick)
    dynamodb, secrets, kms = clients["dynamodb"], clients["secretsmanager"], clients["kms"]
    refs: dict[str, str] = {}
    try:
        for logical_id in resource_ids("AWS::KMS::Key"):
            alias = key_alias(RESOURCE_PREFIX, logical_id)
            refs[logical_id] = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
        for logical_id in resource_ids("AWS::DynamoDB::Table"):
            name = resource_name(RESOURCE_PREFIX, logical_id)
            dynamodb.describe_table(TableName=name)
            refs[logical_id] = name
        for logical_id in resource_ids("AWS::SecretsManager::Secret"):
            secret_id = resource_name(RESOURCE_PREFIX, logical_id)
            refs[logical_id] = secrets.describe_secret(SecretId=secret_id)["ARN"]
    except (BotoCoreError, ClientError):
        return None
    return refs


def start_moto(port: int = 0) -> tuple[Any, str]:
    """moto in server mode on 127.0.0.1 (port 0: any free one): (the server, its URL)."""
    from moto.server import ThreadedMotoServer

    quiet_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{server.get_host_and_port()[1]}"


def deploy_local(parameters: dict[str, str], endpoint: str) -> Template:
    """The template's tables, secret and key created in the AWS emulation at `endpoint`, and the
    template resolved against them (what a deployed stack's functions would see)."""
    clients = aws_clients(endpoint)
    refs = provision(
        Template(parameters=parameters, region=REGION),
        dynamodb=clients["dynamodb"],
        secretsmanager=clients["secretsmanager"],
        kms=clients["kms"],
        prefix=RESOURCE_PREFIX,
        credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "audience": AUDIENCE},
    )
    return Template(parameters=parameters, resource_refs=refs, region=REGION)


class LocalStack:
    def __init__(
        self,
        ports: Ports,
        *,
        log: LineWriter = stderr_line,
        function_output: LineWriter = stdout_line,
    ) -> None:
        """`log`: the gateway's lines (one per request, and failures); `function_output`:
        what the functions print (their logs and metrics)."""
        self.ports = ports
        self.log = log
        self.function_output = function_output
        self.pools: dict[str, FunctionPool] = {}
        self._stoppers: list[Callable[[], None]] = []

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.moto}"

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        sandbox = Sandbox(port=self.ports.sandbox).start()
        self._stoppers.append(sandbox.stop)
        self.sandbox_url = sandbox.url

        _require_free(self.ports.moto, "MOTO_PORT")
        moto, _url = start_moto(self.ports.moto)
        self._stoppers.append(moto.stop)

        self.issuer = DevIssuer(issuer_url(self.ports.issuer))
        issuer_server = IssuerServer(self.issuer, port=self.ports.issuer).start()
        self._stoppers.append(issuer_server.stop)

        parameters = template_parameters(sandbox.url, self.issuer.issuer, self.ports.demo)
        self.template = deploy_local(parameters, self.moto_url)

        limits = PoolLimits.from_env()
        # The token refresher, behind a local Lambda Invoke API that the functions' Lambda
        # clients call (AWS_ENDPOINT_URL_LAMBDA); it and the reconciler on their schedules.
        scheduled = {
            name: FunctionPool(
                FunctionSpec.from_template(self.template, name, self.moto_url),
                max_environments=limits.max_environments,
                wait=limits.wait,
                stdout=self.function_output,
            )
            for name in SCHEDULED
        }
        self._stoppers.append(lambda: close_pools(scheduled.values()))
        refresher = scheduled[REFRESHER]
        name = self.template.resolve(self.template.function_properties(REFRESHER)["FunctionName"])
        self.lambda_api = LambdaApi({name: invoker(refresher)}).start()
        self._stoppers.append(self.lambda_api.stop)
        # Its first run before the gateway opens, as the functions' first environments start:
        # the first requests find a token, as they would on a stack deployed a while ago.
        scheduled_run(REFRESHER, invoker(refresher), self.log)(SCHEDULED_REFRESH)
        stop_schedule = threading.Event()
        self._stoppers.append(stop_schedule.set)
        for logical_id, (event_file, _) in SCHEDULED.items():
            run_on_schedule(
                scheduled_run(logical_id, invoker(scheduled[logical_id]), self.log),
                json.loads((ROOT / "events" / event_file).read_text()),
                schedule_period(self.template, logical_id),
                stop_schedule,
            )

        # The functions the gateway invokes: those that serve a route.
        served = sorted({route.function for route in self.template.routes()})
        specs = {
            name: FunctionSpec.from_template(
                self.template, name, self.moto_url, self.lambda_api.url
            )
            for name in served
        }
        cpu = function_limits({name: spec.memory for name, spec in specs.items()}, self.log)
        self.pools = pools = {
            name: FunctionPool(
                spec,
                max_environments=limits.max_environments,
                wait=limits.wait,
                stdout=self.function_output,
                cpu=cpu.get(name),
            )
            for name, spec in specs.items()
        }
        self._stoppers.append(lambda: close_pools(pools.values()))
        warming = [threading.Thread(target=_warm, args=(p, self.log)) for p in pools.values()]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join()

        authorizer = JwtAuthorizer(
            self.issuer.issuer, list(self.template.parameters["JwtAudience"])
        )
        gateway = LocalGateway(
            self.template,
            pools,
            authorizer,
            port=self.ports.gateway,
            log=self.log,
            extra_routes={("GET", "/openapi.json"): _openapi_document},
        ).start()
        self._stoppers.append(gateway.stop)

        demo = DemoServer(
            api_url=self.gateway_url,
            issuer_url=self.issuer.issuer,
            sandbox_url=sandbox.url,
            port=self.ports.demo,
        ).start()
        self._stoppers.append(demo.stop)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                self.log(f"while stopping: {exc!r}")

    def banner(self) -> str:
        token = self.issuer.token(collector="80000000110")
        fresh, seeded = CATALOGUE[0].offer_id, CATALOGUE[40].offer_id
        url = self.gateway_url
        return "\n".join(
            [
                f"  AIR MILES sandbox  {self.sandbox_url}",
                f"  AWS (moto)         {self.moto_url}",
                f"  dev issuer         {self.issuer.issuer}",
                f"  Lambda Invoke API  {self.lambda_api.url} (the token refresher)",
                f"  partner demo page  http://127.0.0.1:{self.ports.demo}",
                f"Offer State Gateway ready on {url} (Ctrl-C stops everything)",
                "",
                "Try (a member token for collector *******0110, valid 1 h; `make token` for more):",
                f'  curl -s "{url}/v1/offers/states?offerId={seeded},{fresh}" \\',
                f'    -H "Authorization: Bearer {token}"',
                f'  curl -s -X PUT "{url}/v1/offers/{fresh}/states" \\',
                f'    -H "Authorization: Bearer {token}" \\',
                '    -H "Content-Type: application/json" \\',
                '    -d \'{"states":[{"name":"SAVE","value":"SAVED"}]}\'',
            ]
        )


def _warm(pool: FunctionPool, log: LineWriter) -> None:
    """One environment of `pool` started; one that fails to start (its runtime client's error
    report is on the console) leaves the stack up: its requests fail as deployed."""
    try:
        pool.warm()
    except (FunctionCrashed, FunctionTimeout) as failure:
        log(f"{pool.spec.logical_id}: its first environment did not start: {failure}")


def _openapi_document() -> tuple[int, Any]:
    """The committed OpenAPI document (`make openapi`), served as the API's own description."""
    return 200, json.loads((ROOT / "openapi.json").read_text())


def quiet_moto() -> None:
    """moto's server logs every request through werkzeug: keep the console for our lines."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _require_free(port: int, variable: str) -> None:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is in use; set {variable} to another port") from None


def main() -> int:
    ports = Ports.from_env()
    for port, variable in (
        (ports.gateway, "GATEWAY_PORT"),
        (ports.sandbox, "SANDBOX_PORT"),
        (ports.issuer, "ISSUER_PORT"),
        (ports.demo, "DEMO_PORT"),
    ):
        _require_free(port, variable)
    stop = stop_on_signals()
    started = time.monotonic()
    stdout_line("starting the local stack ...")
    stack = LocalStack(ports).start()
    try:
        stdout_line(stack.banner())
        stdout_line(f"(started in {time.monotonic() - started:.1f} s)")
        stop.wait()
    finally:
        stdout_line("stopping ...")
        stack.stop()
        stdout_line("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
