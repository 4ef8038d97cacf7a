"""The Node tools `make lint` runs: Spectral, which lints openapi.json against .spectral.yaml.

They are pinned with their whole tree (versions and integrity hashes) by
requirements/node-tools/package-lock.json and installed as the tests' npm packages are
(dynalite, iam-simulate), by local/build.py's installed_npm_tool: `npm ci --ignore-scripts`
(no install script runs: one of Spectral's dependencies would otherwise phone home) into
.venv/tools/node-tools, under the Node `make build` uses (`node` from PATH when it is 18 or
newer, else the one requirements/node.txt pins, with the npm it ships).

    python -m local.node_tools install                      # the Makefile, once per lock file
    python -m local.node_tools spectral lint openapi.json   # a tool, under that Node
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from local.build import TOOLS, BuildError, find_node, installed_npm_tool

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "requirements" / "node-tools"
INSTALLED = TOOLS / "node-tools"
# The tools, by the script Node runs for each (not node_modules/.bin: its `#!/usr/bin/env
# node` would need a `node` on PATH).
SCRIPTS = {"spectral": "node_modules/@stoplight/spectral-cli/dist/index.js"}


def install() -> str:
    """Installs the pinned tools (again, if the lock file changed); says where."""
    node, folder = installed_npm_tool("node-tools", PINS, INSTALLED)
    return f"the Node tools of {PINS.relative_to(ROOT)} are in {folder}, run by {node}"


def run(tool: str, args: list[str]) -> int:
    """Runs an installed tool with `args`, under the Node found as for the install."""
    script = INSTALLED / SCRIPTS[tool]
    if not script.exists():
        raise BuildError(f"{script} is missing: run `python -m local.node_tools install`")
    node, _ = find_node()
    return subprocess.run([node, str(script), *args], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.node_tools", description=__doc__)
    parser.add_argument("command", choices=["install", *SCRIPTS])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(install())
            return 0
        return run(args.command, args.args)
    except BuildError as error:
        print(f"node tools: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
