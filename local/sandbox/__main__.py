"""`python -m local.sandbox [--host 127.0.0.1] [--port N]`: the sandbox in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from local.console import stderr_line
from local.sandbox import CLIENT_ID, Sandbox
from local.serving import stop_on_signals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "3001")))
    args = parser.parse_args(argv)

    stop = stop_on_signals()
    sandbox = Sandbox(host=args.host, port=args.port, log=stderr_line)
    try:
        sandbox.start()
    except OSError as error:
        print(f"sandbox: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(f"AIR MILES sandbox ready on {sandbox.url} (client id {CLIENT_ID})", flush=True)
    try:
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
