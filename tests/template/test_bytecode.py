"""What `sam build` ships holds CPython 3.13 bytecode for every module, valid for its source,
in the same bytes from one build to the next; the local twin of the artifacts, imported the
way Lambda imports, compiles nothing."""

from __future__ import annotations

import _imp
import subprocess
from pathlib import Path

import pytest

from local import build
from local.template import ROOT, Template
from tests.support.built import BUILD_TEST_TIMEOUT, PARAMETERS, run_import_script

pytestmark = pytest.mark.timeout(BUILD_TEST_TIMEOUT)

MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"  # every CPython 3.13.x
UNCHECKED_HASH, CHECKED_HASH = 0b01, 0b11  # PEP 552 flags
# Each artifact, where Lambda puts it, and the bytecode flags the build promises there.
ARTIFACTS = {
    "OfferStateLayer/python": ("/opt/python", UNCHECKED_HASH),
    **{function_id: ("/var/task", CHECKED_HASH) for function_id in build.FUNCTIONS},
}


def _pyc(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"


def _sources(built: Path) -> dict[str, list[Path]]:
    return {artifact: sorted((built / artifact).rglob("*.py")) for artifact in ARTIFACTS}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_twin_builds_every_function_of_the_template():
    template = Template(parameters=PARAMETERS)
    code = {
        function_id: template.function_properties(function_id)["CodeUri"].rstrip("/")
        for function_id in template.resources_of_type("AWS::Serverless::Function")
    }
    assert code == build.FUNCTIONS


def test_every_module_and_nothing_else_has_313_bytecode(built: Path):
    for artifact, sources in _sources(built).items():
        assert sources, artifact
        expected = {_pyc(source) for source in sources}
        assert set((built / artifact).rglob("__pycache__/*")) == expected, artifact
        assert {pyc.read_bytes()[:4] for pyc in expected} == {MAGIC_313}, artifact


def test_make_builds_summary_counts_every_function(built: Path):
    lines, complete = build.summary(built)
    assert complete
    # Each function ships its app.py alone.
    functions = len(build.FUNCTIONS)
    assert lines[-1] == f"functions bytecode: {functions} modules, {functions} with 3.13 bytecode"


def test_bytecode_is_unchecked_hash_in_the_layer_and_checked_hash_in_the_functions(built: Path):
    for artifact, sources in _sources(built).items():
        _, flags = ARTIFACTS[artifact]
        found = {int.from_bytes(_pyc(s).read_bytes()[4:8], "little") for s in sources}
        assert found == {flags}, artifact


def test_no_bytecode_is_stale(built: Path):
    key = int.from_bytes(MAGIC_313, "little")  # the hash is keyed by the magic number
    for sources in _sources(built).values():
        hashes = {source: _imp.source_hash(key, source.read_bytes()) for source in sources}
        assert [s for s in sources if _pyc(s).read_bytes()[8:16] != hashes[s]] == []


def test_bytecode_names_the_paths_lambda_sees(built: Path):
    for artifact, sources in _sources(built).items():
        lambda_path, _ = ARTIFACTS[artifact]
        for source in sources[:3]:
            code = _pyc(source).read_bytes()
            assert f"{lambda_path}/{source.relative_to(built / artifact)}".encode() in code
            assert str(built).encode() not in code


def test_a_rebuild_gives_the_same_bytes(built: Path, tmp_path: Path):
    # Built again from the repository's folders (sam build uses copies elsewhere), by the same
    # plain python3 sam build's Makefiles call, run from another path: every file, bytecode
    # included, is identical.
    python3 = subprocess.run(
        ["python3", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    elsewhere = tmp_path / "elsewhere" / "python3"
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(python3)
    commands = [("layer", "layers/offer_state", "layer")] + [
        ("function", source, function_id) for function_id, source in build.FUNCTIONS.items()
    ]
    script = str(ROOT / "local" / "build.py")
    for command, source, dest in commands:
        subprocess.run(
            [str(elsewhere), script, command, source, str(tmp_path / dest)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=600,
        )
    assert _files(tmp_path / "layer") == _files(built / "OfferStateLayer")
    for function_id in build.FUNCTIONS:
        assert _files(tmp_path / function_id) == _files(built / function_id)


@pytest.mark.parametrize("function", build.FUNCTIONS)
def test_the_local_twin_compiles_nothing_when_imported(twin: Path, function: str):
    layer = twin / "layer" / "python"
    imported, recorded = run_import_script(
        "import_without_compiling.py", function, twin / function, layer
    )[-2:]
    assert "offer_state.client" in imported["imported"]
    assert recorded["control_recorded"]  # the recording sees a compile when there is one
    ours = (str(twin / function), str(twin / "layer"))
    assert [path for path in recorded["compiled"] if path.startswith(ours)] == []


def test_the_shipped_code_never_serves_swagger_ui():
    # The build removes Swagger UI's bundle from the layer (build.UNUSED_LAYER_FILES): only the
    # route `enable_swagger()` adds reads it.
    shipped = [
        *(ROOT / "layers" / "offer_state" / "python").rglob("*.py"),
        *(ROOT / "functions").rglob("*.py"),
    ]
    assert [p for p in shipped if "enable_swagger" in p.read_text()] == []
    assert all("swagger_ui" in path for path in build.UNUSED_LAYER_FILES)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("twin")
    build.build_twin(folder)
    return folder
