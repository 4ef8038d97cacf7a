"""Import a built function the way Lambda would, on a clean sys.path (run as a script by
tests/template/test_build.py, under `python -I -S`: no site-packages, no PYTHONPATH).

    python -I -S import_built.py <function dir> <layer python dir> <host site-packages>

sys.path becomes: the function's code, then the layer, then a stand-in for the runtime's own
packages (boto3 and its dependencies, linked from the host), then the standard library.
Binary modules built for the target (CPython 3.13 on arm64) cannot load here: for those
packages the host's copy of the same version is put in front, and they are reported. Prints
one JSON line: {"imported": [...], "foreign_binaries": [...]}.
"""

import importlib
import json
import os
import pkgutil
import sys
import tempfile
from pathlib import Path

RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")
# Modules the code imports lazily (inside functions): they must be in the artifact too.
LAZY_IMPORTS = (
    "boto3",
    "botocore.config",
    "aws_xray_sdk.core",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.idempotency.persistence.dynamodb",
)


def main(function_dir: str, layer_dir: str, host_site: str) -> None:
    layer = Path(layer_dir)
    host = Path(host_site)
    foreign = sorted(
        {so.relative_to(layer).parts[0] for so in layer.rglob("*.so") if "aarch64" in so.name}
    )
    links = Path(tempfile.mkdtemp())
    runtime, shims = links / "runtime", links / "shims"
    runtime.mkdir()
    shims.mkdir()
    for name in RUNTIME_PACKAGES:
        os.symlink(host / name, runtime / name)
    for name in foreign:
        os.symlink(host / name, shims / name)
    stdlib = [p for p in sys.path if p]
    sys.path[:] = [function_dir, str(shims), layer_dir, str(runtime), *stdlib]

    imported = ["app"]
    importlib.import_module("app")
    import offer_state

    for module in pkgutil.walk_packages(offer_state.__path__, "offer_state."):
        importlib.import_module(module.name)
        imported.append(module.name)
    for name in LAZY_IMPORTS:
        importlib.import_module(name)
        imported.append(name)
    # Everything must have come from the function, the layer or a stand-in, never elsewhere.
    allowed = (function_dir, layer_dir, str(runtime), str(shims), sys.base_prefix)
    strays = sorted(
        name
        for name, module in list(sys.modules.items())
        if (file := getattr(module, "__file__", None))
        and not file.startswith(allowed)
        and name not in ("__main__", "__mp_main__")  # this script
    )
    print(json.dumps({"imported": imported, "foreign_binaries": foreign, "strays": strays}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
