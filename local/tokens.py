"""`make tokens` (also run by `make bench`): how many AIR MILES tokens a whole deployment asks
for per token lifetime, with many execution environments of both functions coming and going.

It starts the pieces of the local stack it needs, on free ports: the AIR MILES sandbox, with
its token lifetime made short (`POST /_sandbox/config {"tokenTtl": …}`), and moto with the
template's resources (the token table and key among them). Then it runs `TOKENS_ENVIRONMENTS`
execution environments at a time (default 32, half get-state, half update-state), each a worker
process with exactly the environment the template gives its function (local/functions.py),
plus `AIRMILES_TOKEN_MARGIN` (`TOKENS_MARGIN`, default 3 s: a 60 s margin would leave a short
token no life), each invoking its function every 2 s or so (their first requests spread over
the first 8 s), for `TOKENS_LIFETIMES` token lifetimes (default 4) of `TOKENS_TTL` seconds
(default 20). Environments churn as Lambda's do: every `TOKENS_CHURN_SECONDS` (default 8) the
oldest environment of each function is retired and a new one starts (a cold start) in its
place.

At the end it reads the token requests the sandbox counted (`GET /_sandbox/calls`) and writes
`token_requests_per_lifetime`, with what produced it under `tokens`, to `bench-results.json`
(other commands' figures stay). Target: 2 or fewer per lifetime for the whole deployment. For
comparison it estimates what a token per environment (the design before) would have asked for
in the same run: one at each environment's first request, and another each time that token's
usable life (its lifetime less the margin) ran out. It exits 1 when the target is missed or a
request was not answered 200.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest import mock

from local.bench_results import RESULTS_FILE, write_tokens
from local.console import stderr_line
from local.events import sample_event
from local.functions import FunctionPool, FunctionSpec, invoker
from local.lambda_api import LambdaApi, run_on_schedule
from local.serving import loopback_session
from local.stack import (
    REFRESHER,
    SCHEDULED_REFRESH,
    aws_clients,
    deploy_local,
    start_moto,
    template_parameters,
)
from local.template import Template

# Token requests per token lifetime: in steady state the refresher replaces a short-lived
# token with a fifth of its life left (1.25 a lifetime); a burst asks for one, two at most.
TARGETS = {
    "steady": 1.25,
    "cold_burst_slow_endpoint": 2,
    "revoked": 2,
    "store_throttled": 2,
}
ITEM_KEY = "airmiles-token"  # offer_state.token_store's
PACE_SECONDS = 2.0  # between one environment's requests (jittered)
# The first requests of the environments started together come over this long, not at once:
# a first request builds the AWS clients and reads the secret, a few hundred milliseconds of
# CPU that Lambda gives each environment, while here 32 of them share two cores and at once
# would each take several seconds, far longer than the token fetch they wait for.
RAMP_SECONDS = 8.0
# An event of each function's (the member's claims as API Gateway passes them on).
EVENTS = {"GetStateFunction": "count_states", "UpdateStateFunction": "update_offer_states"}


def _setting(variable: str, default: str, kind: type[int] | type[float], least: float) -> Any:
    raw = os.environ.get(variable, default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not least <= value < float("inf"):
        raise SystemExit(f"{variable} must be a number, {least:g} or more (got {raw!r})")
    return value


@dataclass(frozen=True)
class Plan:
    environments: int  # at a time, both functions together
    ttl: int  # the sandbox's token lifetime, seconds
    lifetimes: int
    churn_seconds: float
    margin: float
    refresh_seconds: float = 1.0  # the refresher's schedule

    @classmethod
    def from_env(cls) -> Plan:
        return cls(
            environments=_setting("TOKENS_ENVIRONMENTS", "32", int, 2),
            ttl=_setting("TOKENS_TTL", "20", int, 4),
            lifetimes=_setting("TOKENS_LIFETIMES", "4", int, 1),
            churn_seconds=_setting("TOKENS_CHURN_SECONDS", "8", float, 1),
            margin=_setting("TOKENS_MARGIN", "3", float, 0),
            refresh_seconds=_setting("TOKENS_REFRESH_SECONDS", "1", float, 0.1),
        )

    @property
    def seconds(self) -> int:
        return self.ttl * self.lifetimes


@dataclass
class Environment:
    """One execution environment (a pool of one worker) and the thread that drives it."""

    function: str
    pool: FunctionPool
    event: dict[str, Any]
    statuses: Counter[str] = field(default_factory=Counter)
    first_request: float | None = None  # monotonic
    last_request: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def drive(self, after: float = 0.0) -> None:
        """Invoke the function every 2 s or so, from `after` seconds on, until retired."""
        self._thread = threading.Thread(target=self._run, args=(after,), daemon=True)
        self._thread.start()

    def _run(self, after: float) -> None:
        self._stop.wait(after)
        while not self._stop.is_set():
            self.once()
            self._stop.wait(PACE_SECONDS * random.uniform(0.75, 1.25))  # (jitter: not in step)

    def once(self, go: threading.Barrier | None = None) -> None:
        """One request (after `go`, where given), its status counted."""
        # Ids of its own, as API Gateway gives each request (the audit item's key has one).
        event = json.loads(json.dumps(self.event))
        event["headers"]["x-correlation-id"] = str(uuid.uuid4())
        event["requestContext"]["requestId"] = str(uuid.uuid4())
        if go is not None:
            go.wait()
        try:
            reply = self.pool.invoke(event)
            status = str(reply["result"]["statusCode"]) if "result" in reply else "error"
        except Exception as exc:  # noqa: BLE001 - counted as what it was
            status = type(exc).__name__
        now = time.monotonic()
        self.first_request = self.first_request or now
        self.last_request = now
        self.statuses[status] += 1

    def retire(self) -> None:
        """Its last request answered, its process ended (once)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.pool.close()


class Deployment:
    """The environments of both functions, started and retired."""

    def __init__(
        self, template: Template, moto_url: str, plan: Plan, lambda_url: str, patient: bool = False
    ) -> None:
        """`patient`: invocations of 25 s with a 20 s upstream budget (a burst's: a 5 s token
        endpoint and the refresher's own start must fit in one request's wait on this machine)."""
        self.specs = {
            f: FunctionSpec.from_template(template, f, moto_url, lambda_url) for f in EVENTS
        }
        self.extra_env = {"AIRMILES_TOKEN_MARGIN": str(plan.margin)}
        if patient:
            self.specs = {f: replace(spec, timeout=25.0) for f, spec in self.specs.items()}
            self.extra_env["AIRMILES_TOTAL_BUDGET"] = "20"
        self.live: list[Environment] = []
        self.retired: list[Environment] = []

    def new(self, function: str) -> Environment:
        pool = FunctionPool(
            self.specs[function], max_environments=1, extra_env=self.extra_env, stdout=_discard
        )
        return Environment(function, pool, sample_event(EVENTS[function]))

    def start(self, count: int) -> None:
        """`count` environments, alternately of each function, all imported (cold) but none
        invoked yet: their first requests come together, a cold burst with no token yet."""
        functions = list(EVENTS)
        fresh = [self.new(functions[n % len(functions)]) for n in range(count)]
        threads = [threading.Thread(target=e.pool.warm, daemon=True) for e in fresh]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.live += fresh

    def churn(self) -> None:
        """The oldest environment of each function retired, a new one started in its place."""
        for function in EVENTS:
            oldest = next(e for e in self.live if e.function == function)
            self.live.remove(oldest)
            oldest.retire()
            self.retired.append(oldest)
            newcomer = self.new(function)
            self.live.append(newcomer)
            newcomer.drive()  # its first request is its cold start

    def stop(self) -> None:
        """Every live environment ended (again: nothing more)."""
        for environment in self.live:
            environment.retire()

    @property
    def everyone(self) -> list[Environment]:
        return self.retired + self.live


def per_environment_estimate(environments: list[Environment], plan: Plan) -> int:
    """Token requests a token per environment would have made in the same run: one at each
    environment's first request, another each time its token's usable life ran out."""
    usable = plan.ttl - min(plan.margin, plan.ttl / 2)
    return sum(
        math.floor((e.last_request - e.first_request) / usable) + 1
        for e in environments
        if e.first_request is not None and e.last_request is not None
    )


_LOG_LOCK = threading.Lock()


def _discard(line: str) -> None:
    """The functions' logs and metrics (several lines a request) are not shown; with
    `TOKENS_LOG=<file>` they are appended to that file, to see why an answer was not 200."""
    path = os.environ.get("TOKENS_LOG")
    if path:
        with _LOG_LOCK, open(path, "a", encoding="utf-8") as log:
            log.write(line.rstrip("\n") + "\n")


def run(plan: Plan) -> dict[str, Any]:
    """The four scenarios, one after another, against one sandbox, moto and token refresher:
    `steady` (the plan), then bursts of `plan.environments` new environments: no token stored
    and the token endpoint 5 s slow (`cold_burst_slow_endpoint`), every token revoked
    (`revoked`), the token store's reads throttled (`store_throttled`)."""
    from local.sandbox import Sandbox

    with Sandbox(port=0) as sandbox:
        moto, moto_url = start_moto()
        control = loopback_session()
        stack = contextlib.ExitStack()
        try:
            template = deploy_local(
                template_parameters(sandbox.url, "http://127.0.0.1:3004"), moto_url
            )
            control.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
            control.post(
                f"{sandbox.url}/_sandbox/config", json={"tokenTtl": plan.ttl}, timeout=5
            ).raise_for_status()
            refresher = _refresher(template, moto_url, plan, stack)
            bench = _Bench(sandbox.url, control, template, moto_url, plan, refresher)
            steady = bench.steady()
            scenarios = {
                "steady": steady["scenario"],
                "cold_burst_slow_endpoint": bench.burst(bench.cold_slow_endpoint),
                "revoked": bench.burst(bench.revoke),
                "store_throttled": bench.burst(bench.throttle_reads),
            }
        finally:
            stack.close()
            control.close()
            moto.stop()
    return {**steady["figures"], "scenarios": scenarios}


def _refresher(template: Template, moto_url: str, plan: Plan, stack: Any) -> Any:
    """The token refresher: a pool behind a local Lambda Invoke API, run every
    `plan.refresh_seconds` as its schedule would. The Invoke API's URL."""
    # One environment: a run takes a fraction of a second, and each of more would be another
    # process on this machine's two cores (asks and scheduled runs wait their turn).
    pool = FunctionPool(
        FunctionSpec.from_template(template, REFRESHER, moto_url),
        max_environments=1,
        stdout=_discard,
    )
    stack.callback(pool.close)
    pool.warm()
    name = template.resolve(template.function_properties(REFRESHER)["FunctionName"])
    api = stack.enter_context(LambdaApi({name: invoker(pool)}))
    invoker(pool)(SCHEDULED_REFRESH)  # the first token, then every plan.refresh_seconds
    stop = threading.Event()
    stack.callback(stop.set)
    run_on_schedule(invoker(pool), SCHEDULED_REFRESH, plan.refresh_seconds, stop)
    return api.url


class _Bench:
    def __init__(
        self,
        sandbox_url: str,
        control: Any,
        template: Template,
        moto_url: str,
        plan: Plan,
        lambda_url: str,
    ) -> None:
        self.sandbox_url, self.control, self.plan = sandbox_url, control, plan
        self.template, self.moto_url, self.lambda_url = template, moto_url, lambda_url
        self.dynamodb = aws_clients(moto_url)["dynamodb"]
        self.table = template.resolve({"Ref": "TokenTable"})

    def counted(self) -> int:
        return _tokens_counted(self.control, self.sandbox_url)

    def steady(self) -> dict[str, Any]:
        """The plan's environments with churn, from a stored token on, for its lifetimes."""
        plan = self.plan
        deployment = Deployment(self.template, self.moto_url, plan, self.lambda_url)
        stderr_line(f"steady: starting {plan.environments} environments (cold starts) ...")
        try:
            deployment.start(plan.environments)
            # From a refresh on: the window then holds as many refreshes as it can, whatever
            # the time the environments took to start.
            _wait_for(lambda: self._stored() is not None, 30, "the refresher's first token")
            first = self._stored()
            _wait_for(lambda: self._stored() != first, 2 * plan.ttl, "the first refresh")
            start = self.counted()
            stderr_line(
                f"steady: {plan.lifetimes} token lifetimes of {plan.ttl} s, an environment of"
                f" each function replaced every {plan.churn_seconds:g} s ..."
            )
            began = time.monotonic()
            for number, environment in enumerate(deployment.live):
                environment.drive(after=number * RAMP_SECONDS / plan.environments)
            _run_for(plan, deployment, began, lambda: self.counted() - start)
            seconds = time.monotonic() - began
            deployment.stop()  # the requests under way are answered first
            token_requests = self.counted() - start
        finally:
            deployment.stop()
        everyone = deployment.everyone
        statuses = sum((e.statuses for e in everyone), Counter())
        lifetimes = seconds / plan.ttl
        estimate = per_environment_estimate(everyone, plan)
        scenario = _scenario(token_requests, lifetimes, statuses, seconds)
        figures = {
            "token_requests_per_lifetime": scenario["token_requests_per_lifetime"],
            "token_requests": token_requests,
            "token_ttl_seconds": plan.ttl,
            "token_margin_seconds": plan.margin,
            "refresh_every_seconds": plan.refresh_seconds,
            "lifetimes": round(lifetimes, 2),
            "seconds": round(seconds, 1),
            "environments": {
                "at_a_time": plan.environments,
                "per_function": dict(Counter(e.function for e in deployment.live)),
                "started": len(everyone),
                "churn": {
                    "every_seconds": plan.churn_seconds,
                    "retired": len(deployment.retired),
                    "started": len(everyone) - plan.environments,
                },
            },
            "requests": sum(statuses.values()),
            "statuses": dict(sorted(statuses.items())),
            "per_environment_estimate": {
                "token_requests": estimate,
                "per_lifetime": round(estimate / lifetimes, 2),
            },
        }
        return {"figures": figures, "scenario": scenario}

    def burst(self, prepare: Any) -> dict[str, Any]:
        """`plan.environments` new environments (imported, no request yet), `prepare`d for,
        then one request from each at once; the token requests counted from just before."""
        deployment = Deployment(self.template, self.moto_url, self.plan, self.lambda_url, True)
        try:
            deployment.start(self.plan.environments)
            undo = prepare(deployment)
            start, began = self.counted(), time.monotonic()
            go = threading.Barrier(len(deployment.live))
            threads = [
                threading.Thread(target=e.once, args=(go,), daemon=True) for e in deployment.live
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - began
            token_requests = self.counted() - start
            undo()
        finally:
            deployment.stop()
        statuses = sum((e.statuses for e in deployment.everyone), Counter())
        lifetimes = max(1.0, seconds / self.plan.ttl)  # a burst shorter than a lifetime: one
        return _scenario(token_requests, lifetimes, statuses, seconds)

    def cold_slow_endpoint(self, deployment: Deployment) -> Any:
        """No token stored, and the token endpoint answers after 5 s."""
        self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": ITEM_KEY}})
        self._fault({"endpoint": "token", "mode": "delay", "delayMs": 5000})
        return self._clear_faults

    def revoke(self, deployment: Deployment) -> Any:
        """Every environment holding the stored token, then every token revoked."""
        for environment in deployment.live:
            environment.once()
        control = self.control
        control.post(f"{self.sandbox_url}/_sandbox/tokens/revoke", timeout=5).raise_for_status()
        for environment in deployment.live:
            environment.statuses.clear()
        return lambda: None

    def throttle_reads(self, deployment: Deployment) -> Any:
        """The token table's first reads, two for each environment, throttled."""
        return throttled_token_reads(self.table, 2 * len(deployment.live))

    def _stored(self) -> str | None:
        """The stored token's id, if any."""
        key = {"pk": {"S": ITEM_KEY}}
        item = self.dynamodb.get_item(TableName=self.table, Key=key).get("Item", {})
        return item.get("tokenId", {}).get("S")

    def _fault(self, spec: dict[str, Any]) -> None:
        self.control.post(f"{self.sandbox_url}/_sandbox/faults", json=spec, timeout=5)

    def _clear_faults(self) -> None:
        self.control.delete(f"{self.sandbox_url}/_sandbox/faults", timeout=5)


def _scenario(
    token_requests: int, lifetimes: float, statuses: Counter[str], seconds: float
) -> dict[str, Any]:
    return {
        "token_requests": token_requests,
        "token_requests_per_lifetime": round(token_requests / lifetimes, 2),
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(seconds, 1),
    }


def throttled_token_reads(table: str, count: int) -> Any:
    """moto (in this process) answers the next `count` GetItems of `table` as DynamoDB does a
    throttled read; the function returned ends it."""
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.models import DynamoDBBackend

    left = [count]
    original = DynamoDBBackend.get_item

    def get_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        if table_name == table and left[0] > 0:
            left[0] -= 1
            raise DynamodbException(
                ERROR_TYPE_PREFIX + "ProvisionedThroughputExceededException",
                message="The level of configured provisioned throughput was exceeded.",
            )
        return original(self, table_name, *args, **kwargs)

    patch = mock.patch.object(DynamoDBBackend, "get_item", get_item)
    patch.start()
    return patch.stop


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"no {what} after {seconds:g} s")
        time.sleep(0.2)


def _run_for(plan: Plan, deployment: Deployment, began: float, counted: Any) -> None:
    """Until the plan's time is over: churn on schedule, and a progress line every 5 s."""
    next_churn = began + plan.churn_seconds
    next_report = began + 5
    end = began + plan.seconds
    while (now := time.monotonic()) < end:
        if now >= next_churn:
            deployment.churn()
            next_churn += plan.churn_seconds
        if now >= next_report:
            done = sum(sum(e.statuses.values()) for e in deployment.everyone)
            stderr_line(
                f"{now - began:4.0f} s: {done} requests, {counted()} token requests,"
                f" {len(deployment.everyone)} environments started,"
                f" {len(deployment.retired)} retired"
            )
            next_report += 5
        time.sleep(min(0.2, max(0.0, end - now)))


def _tokens_counted(control: Any, sandbox_url: str) -> int:
    answer = control.get(f"{sandbox_url}/_sandbox/calls", timeout=5)
    answer.raise_for_status()
    return int(answer.json()["token"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", type=Path, default=RESULTS_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = Plan.from_env()
    started = time.monotonic()
    figures = run(plan)
    write_tokens(figures, args.results)

    environments = figures["environments"]
    estimate = figures["per_environment_estimate"]
    print(
        f"steady: {environments['at_a_time']} environments at a time"
        f" ({', '.join(f'{n} {f}' for f, n in environments['per_function'].items())}),"
        f" {environments['started']} started in all ({environments['churn']['retired']} retired"
        f" and as many started during the run); {figures['lifetimes']:g} token lifetimes of"
        f" {plan.ttl} s (margin {plan.margin:g} s, the refresher every {plan.refresh_seconds:g} s);"
        f" a token per environment would have asked for about {estimate['token_requests']}"
        f" ({estimate['per_lifetime']:g} per lifetime)"
    )
    missed = []
    for name, scenario in figures["scenarios"].items():
        target = TARGETS[name]
        answered = ", ".join(f"{s} x{n}" for s, n in scenario["statuses"].items())
        all_2xx = all(status.startswith("2") for status in scenario["statuses"])
        met = scenario["token_requests_per_lifetime"] <= target and all_2xx
        missed += [] if met else [name]
        print(
            f"{name}: token requests {scenario['token_requests']},"
            f" {scenario['token_requests_per_lifetime']:g} per lifetime (target <= {target:g});"
            f" answers {answered}: {'met' if met else 'NOT met'}"
        )
    took = time.monotonic() - started
    if missed:
        print(f"tokens: FAILED ({', '.join(missed)}; {args.results.name} written, {took:.0f} s)")
        return 1
    print(f"tokens: every target met; {args.results.name} written ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
