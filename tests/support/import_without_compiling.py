"""Import a built function as import_built.py does, and record every module Python compiles
from source on the way (run by tests/template/test_bytecode.py under `python -B -I -S`, so
nothing is written either):

    python -B -I -S import_without_compiling.py <function> <layer python> <host site-packages>

A module whose bytecode is valid loads from it and is never compiled. Prints import_built's
JSON line, then one more: {"compiled": [...], "control_recorded": true}; the control is a
module without bytecode imported last, which the recording must catch.
"""

import importlib.machinery
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

compiled: list[str] = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code


def _recording_source_to_code(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return _source_to_code(self, data, path, *args, **kwargs)


def main(function_dir: str, layer_dir: str, host_site: str) -> None:
    # The one way to see every compile: the import system's own loader, patched in place.
    importlib.machinery.SourceFileLoader.source_to_code = _recording_source_to_code  # type: ignore[method-assign]
    # -I leaves this script's folder off sys.path: load its sibling by path.
    spec = importlib.util.spec_from_file_location(
        "import_built", Path(__file__).with_name("import_built.py")
    )
    assert spec is not None and spec.loader is not None  # a file that is there
    import_built = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(import_built)
    import_built.main(function_dir, layer_dir, host_site)

    control = Path(tempfile.mkdtemp()) / "bytecode_control.py"
    control.write_text("LOADED = True\n")
    sys.path.insert(0, str(control.parent))
    importlib.import_module("bytecode_control")
    print(json.dumps({"compiled": compiled, "control_recorded": str(control) in compiled}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
