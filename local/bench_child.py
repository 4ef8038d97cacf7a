"""One measurement of `make bench`, in a fresh interpreter (run as a script under
`python -B -I -S`, so nothing of the parent's sys.path, site-packages or environment leaks in,
and no bytecode is written; with `-X importtime` too for the imports report).

    python -B -I -S [-X importtime] local/bench_child.py <request.json> <result.json>

The request names the mode and the sys.path to use (the function's code, the layer as the twin
of the build has it, `twin/layer/python`: our package and its dependencies built for this
machine, and the packages Lambda's runtime provides).
Standard library only: the function must find nothing of ours but what Lambda would give it.
"""

import importlib
import json
import os
import sys
import time
import uuid


def _paths(request):
    sys.path[:0] = request["sys_path"]


def lambda_context(function_name, memory, timeout):
    """The context Lambda's Python runtime hands a handler for an invocation that starts now
    and may last `timeout` seconds: the runtime interface client's own `LambdaContext` (here
    from the runtime's packages on the request's sys.path), with what Lambda takes from the
    function's settings. The in-process tests use it too (`tests/support/context.py`)."""
    from awslambdaric.lambda_context import LambdaContext

    deadline_ms = int((time.time() + timeout) * 1000)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    context = LambdaContext(str(uuid.uuid4()), None, None, deadline_ms, arn)
    context.function_name = function_name
    context.memory_limit_in_mb = str(memory)  # as Lambda's: from an environment variable
    context.function_version = "$LATEST"
    context.log_group_name = f"/aws/lambda/{function_name}"
    return context


def _join_cpu_group(request):
    """At Lambda's CPU (`local/bench_cpu.py`): from here on this process, and what it starts,
    runs in the CPU group whose `cgroup.procs` the request names; what it did before (work
    that is not measured) ran uncapped."""
    if "cpu_group" in request:
        with open(request["cpu_group"], "w") as procs:
            procs.write("0")  # 0: the writing process


def _fresh(event):
    """The event as API Gateway sends the next request: a new request id."""
    copy = json.loads(json.dumps(event))
    copy["requestContext"]["requestId"] = str(uuid.uuid4())
    return copy


def boto3_import(request):
    _paths(request)
    started = time.perf_counter()
    import boto3  # noqa: F401

    return {"ms": (time.perf_counter() - started) * 1000}


def cold_init(request):
    _paths(request)
    started = time.perf_counter()
    import app  # type: ignore[import-not-found]  # noqa: F401 - the function under test

    return {"ms": (time.perf_counter() - started) * 1000}


def framework_import(request):
    """What the design's framework costs to import, as the functions load it: pydantic and
    Powertools (Logger, Metrics, the Event Handler with validation, through
    `offer_state.event_handler`, which leaves out the resolvers they do not use)."""
    _paths(request)
    started = time.perf_counter()
    import aws_lambda_powertools.logging
    import aws_lambda_powertools.metrics  # noqa: F401
    import pydantic  # noqa: F401

    import offer_state.event_handler  # noqa: F401 - before anything of the Event Handler

    # What the resolver imports when created with validation, as the functions create it.
    importlib.import_module("aws_lambda_powertools.event_handler.middlewares.openapi_validation")
    return {"ms": (time.perf_counter() - started) * 1000}


def xray_import(request):
    """What X-Ray adds where tracing is on (in Lambda): the SDK, loaded at the first request,
    when boto3 is already loaded."""
    _paths(request)
    import boto3  # noqa: F401

    started = time.perf_counter()
    import aws_xray_sdk.core  # noqa: F401

    return {"ms": (time.perf_counter() - started) * 1000}


def cold_first_request(request):
    _paths(request)
    # On Lambda the bootstrap, with its context class, is loaded before init: not timed.
    import awslambdaric.lambda_context  # noqa: F401

    started = time.perf_counter()
    import app

    answer = app.lambda_handler(_fresh(request["event"]), lambda_context(**request["context"]))
    elapsed = (time.perf_counter() - started) * 1000
    return {"ms": elapsed, "status": answer["statusCode"]}


def floor(request):
    """The leanest script doing the first request's I/O: no framework, no validation."""
    _paths(request)
    started = time.perf_counter()
    import boto3
    import requests

    return _floor_io(request["floor"], boto3, requests, started)


def floor_io(request):
    """The same script with its imports done before the clock starts: the I/O alone (clients,
    secret, token, AIR MILES, the collector's pseudonym, one DynamoDB item), which is what a
    restored SnapStart environment still has to do."""
    _paths(request)
    import boto3
    import requests

    return _floor_io(request["floor"], boto3, requests, time.perf_counter())


def _floor_io(spec, boto3, requests, started):
    secrets = boto3.client("secretsmanager")
    dynamodb = boto3.client("dynamodb")
    kms = boto3.client("kms")
    secret = json.loads(secrets.get_secret_value(SecretId=spec["secret_id"])["SecretString"])
    http = requests.Session()
    http.trust_env = False  # loopback only, as the gateway's client
    token = http.post(
        spec["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": secret["client_id"],
            "client_secret": secret["client_secret"],
            "audience": secret["audience"],
        },
        timeout=5,
    ).json()["access_token"]
    answer = http.request(
        spec["method"],
        spec["url"],
        params=spec.get("params"),
        data=spec.get("body"),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Collector-Number": spec["collector"],
            "x-origin-client": "external:partner:bench",
        },
        timeout=5,
    )
    answer.raise_for_status()
    mac = kms.generate_mac(
        KeyId=spec["pseudonym_key"],
        Message=spec["collector"].encode(),
        MacAlgorithm="HMAC_SHA_256",
    )["Mac"]
    dynamodb.put_item(
        TableName=spec["table"],
        Item={"pk": {"S": f"BENCH#{mac.hex()}"}, "sk": {"S": f"floor#{uuid.uuid4()}"}},
    )
    return {"ms": (time.perf_counter() - started) * 1000}


def warm(request):
    """Many requests in one environment: time in our code (total minus time inside AIR MILES
    and AWS calls), the invocation's whole time (`duration_p50`: what Lambda bills), calls
    made, and the peak resident memory."""
    import resource

    _paths(request)
    import app
    import botocore.client

    aws: dict = {"seconds": 0.0, "calls": []}
    original = botocore.client.BaseClient._make_api_call

    def timed(self, operation, params):
        started = time.perf_counter()
        try:
            return original(self, operation, params)
        finally:
            aws["seconds"] += time.perf_counter() - started
            aws["calls"].append((operation, params.get("TableName", "")))

    botocore.client.BaseClient._make_api_call = timed
    context = request["context"]
    telemetry = app.service.telemetry
    results = {}
    warmup = request["warmup"]
    served = 0
    first_thousand = {}
    tokens_before = _sandbox_calls(request["sandbox_url"])["token"]
    _join_cpu_group(request)  # the warm-up requests included, not the cold start
    for route, event in request["routes"].items():
        overheads, durations = [], []
        statuses = set()
        calls_before = len(aws["calls"])
        for number in range(warmup + request["requests"]):
            upstream_before, aws_before = telemetry.seconds_in_calls, aws["seconds"]
            started = time.perf_counter()
            answer = app.lambda_handler(_fresh(event), lambda_context(**context))
            total = time.perf_counter() - started
            upstream = telemetry.seconds_in_calls - upstream_before
            served += 1
            if served == request["window"]:  # what a fresh environment asked in its first 1000
                first_thousand = {
                    "token_requests": _sandbox_calls(request["sandbox_url"])["token"]
                    - tokens_before,
                    "secret_reads": sum(1 for op, _ in aws["calls"] if op == "GetSecretValue"),
                }
            if number >= warmup:
                overheads.append((total - upstream - (aws["seconds"] - aws_before)) * 1000)
                durations.append(total * 1000)
                statuses.add(answer["statusCode"])
            elif number == warmup - 1:
                calls_before = len(aws["calls"])
        overheads.sort()
        durations.sort()
        audit_writes = sum(
            1
            for operation, table in aws["calls"][calls_before:]
            if table == request["audit_table"] and operation in ("PutItem", "UpdateItem")
        )
        results[route] = {
            "p50": overheads[len(overheads) // 2],
            "p99": overheads[int(len(overheads) * 0.99) - 1],
            "duration_p50": durations[len(durations) // 2],
            "statuses": sorted(statuses),
            "audit_writes_per_request": audit_writes / len(overheads),
        }
    return {
        "routes": results,
        "first_thousand": first_thousand,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _sandbox_calls(url):
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with direct.open(f"{url}/_sandbox/calls", timeout=5) as answer:
        return json.load(answer)


if __name__ == "__main__":
    with open(sys.argv[1]) as source:
        job = json.load(source)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the functions' logs and metrics
    result = globals()[job["mode"]](job)
    with open(sys.argv[2], "w") as target:
        json.dump(result, target)
