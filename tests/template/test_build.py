"""`sam build` from this machine (Python 3.11, no Docker) yields a python3.13/arm64 layer and
function artifacts that import cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import build
from local.template import ROOT
from tests.support.built import BUILD_TEST_TIMEOUT, run_import_script

pytestmark = pytest.mark.timeout(BUILD_TEST_TIMEOUT)


def test_function_artifacts_hold_only_their_own_code(built: Path):
    for function in build.FUNCTIONS:
        shipped = sorted(
            str(p.relative_to(built / function)) for p in (built / function).rglob("*")
        )
        assert shipped == ["__pycache__", "__pycache__/app.cpython-313.pyc", "app.py"]


def test_layer_is_built_for_python313_on_arm64(built: Path):
    python = built / "OfferStateLayer" / "python"
    binaries = list(python.rglob("*.so"))
    assert any("pydantic_core" in str(b) for b in binaries)
    assert all(b.name.endswith("cpython-313-aarch64-linux-gnu.so") for b in binaries), binaries
    assert (python / "offer_state" / "client.py").exists()


def test_layer_does_not_ship_what_the_runtime_provides(built: Path):
    python = built / "OfferStateLayer" / "python"
    shipped = {p.name for p in python.iterdir()}
    for runtime_package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py"):
        assert runtime_package not in shipped
    assert (
        "urllib3-2.8.0.dist-info" in shipped
    )  # the one deliberate exception (see its requirements)
    size = sum(p.stat().st_size for p in python.rglob("*") if p.is_file())
    assert size < 20 * 1024 * 1024


@pytest.mark.parametrize("function", build.FUNCTIONS)
def test_built_function_imports_with_the_built_layer_alone(built: Path, function: str):
    layer = built / "OfferStateLayer" / "python"
    report = run_import_script("import_built.py", function, built / function, layer)[-1]
    print(f"{function}: foreign binaries replaced by the host's copy: {report['foreign_binaries']}")
    assert "offer_state.client" in report["imported"]
    assert set(report["foreign_binaries"]) <= {"pydantic_core", "charset_normalizer", "wrapt"}
    assert report["strays"] == []


def test_layer_pins_are_the_tested_versions():
    def pins(path: Path) -> dict[str, str]:
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                found[name.lower().replace("_", "-").split("[")[0]] = version
        return found

    layer = pins(ROOT / "layers" / "offer_state" / "requirements-layer.txt")
    tested = pins(ROOT / "requirements" / "constraints.txt")
    assert {name: tested.get(name) for name in layer} == layer
