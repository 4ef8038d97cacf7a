"""`make invoke FUNCTION=GetStateFunction EVENT=events/get_states.json`: one function, one
event, the way `sam local invoke` runs it.

The function gets the same environment as under the local gateway. If the local stack runs
(`make run`), its sandbox and AWS emulation are used; otherwise a sandbox and moto are
started for this one call, on free ports, and stopped after it. The token refresher answers
the function's Lambda Invoke for this call (`make invoke FUNCTION=TokenRefresherFunction
EVENT=events/scheduled_token_refresh.json` runs the refresher itself once). The function runs
under Lambda's runtime interface client, as under `make run` (local/functions.py). The
handler's answer is printed on stdout as JSON, its logs go to stderr; the exit code is 1 when
it raised, and stdout has the error as Lambda reports it (`errorType`, `errorMessage`,
`stackTrace`).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path

from local.console import stderr_line
from local.functions import (
    FunctionCrashed,
    FunctionPool,
    FunctionSpec,
    FunctionTimeout,
    invoker,
)
from local.issuer import issuer_url
from local.lambda_api import LambdaApi
from local.sandbox import Sandbox
from local.serving import loopback_session
from local.stack import (
    REFRESHER,
    REGION,
    Ports,
    deploy_local,
    existing_resources,
    start_moto,
    template_parameters,
)
from local.template import Template, function_ids


def _sandbox_running(url: str) -> bool:
    import requests

    try:
        with loopback_session() as http:
            return http.get(f"{url}/_sandbox/calls", timeout=1).ok
    except requests.RequestException:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__)
    parser.add_argument("function", choices=function_ids(), help="logical id in template.yaml")
    parser.add_argument("event", type=Path, help="an event file (events/: API Gateway, scheduled)")
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read the event {args.event}: {exc}")

    ports = Ports.from_env()
    with ExitStack() as cleanup:
        sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
        moto_url = f"http://127.0.0.1:{ports.moto}"
        refs = existing_resources(moto_url) if _sandbox_running(sandbox_url) else None
        if refs is not None:
            print(f"using the running local stack ({sandbox_url}, {moto_url})", file=sys.stderr)
            parameters = template_parameters(sandbox_url, issuer_url(ports.issuer))
            template = Template(parameters=parameters, resource_refs=refs, region=REGION)
        else:
            sandbox = cleanup.enter_context(Sandbox(port=0))
            moto, moto_url = start_moto()
            cleanup.callback(moto.stop)
            sandbox_url = sandbox.url
            template = deploy_local(
                template_parameters(sandbox_url, issuer_url(ports.issuer)), moto_url
            )
            print(
                f"started a sandbox ({sandbox_url}) and moto ({moto_url}) for this call",
                file=sys.stderr,
            )
        # The token refresher, which the function may ask for a token (a Lambda Invoke).
        refresher = FunctionPool(
            FunctionSpec.from_template(template, REFRESHER, moto_url), stdout=stderr_line
        )
        cleanup.callback(refresher.close)
        name = template.resolve(template.function_properties(REFRESHER)["FunctionName"])
        lambda_api = cleanup.enter_context(LambdaApi({name: invoker(refresher)}))
        pool = FunctionPool(
            FunctionSpec.from_template(template, args.function, moto_url, lambda_api.url),
            max_environments=1,
            stdout=stderr_line,  # the function's logs; stdout is for its answer
        )
        cleanup.callback(pool.close)
        try:
            reply = pool.invoke(event)
        except (FunctionTimeout, FunctionCrashed) as failure:
            # As Lambda reports it: the runtime client's init error, Sandbox.Timedout, or
            # Runtime.ExitError.
            print(json.dumps(failure.error, indent=2))
            return 1
    if "errorType" in reply:
        print(json.dumps(reply, indent=2))
        return 1
    print(json.dumps(reply["result"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
