"""A local Lambda execution environment: one process per function environment, as Lambda runs
them, so each function has its own module namespace and exactly its own environment.

Run as a script by `local.functions` (never imported into the function's process as part of
the `local` package, so the function sees no module of ours but this one):

    python local/lambda_runtime.py <task root> <layer python dir> <module.handler> <reply fd>

Requests arrive on stdin and answers leave on the reply fd, each a 4-byte length and a JSON
document; stdout and stderr stay the function's own (its logs), as in Lambda. End of stdin
ends the environment; SIGINT does not (see `_serve`).

`LambdaContext` is also imported by the tests for in-process invocations.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import struct
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass
class LambdaContext:
    """The `context` Lambda hands a handler, honouring the function's Timeout and MemorySize."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    account_id: str = "123456789012"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def read_message(stream: IO[bytes]) -> Any:
    """One length-prefixed JSON document, or None at end of stream."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return json.loads(stream.read(size))


def write_message(stream: IO[bytes], message: Any) -> None:
    data = json.dumps(message, default=str).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _serve(task_root: str, layer_dir: str, handler_path: str, reply_fd: int) -> None:
    # A terminal's Ctrl-C goes to the whole process group: the stack that started us decides
    # when we end (it closes our stdin), and we end without a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The function's view of the world: its code first, then the layer (/opt/python), then
    # the interpreter's own packages (standing in for the runtime's).
    sys.path[:] = [task_root, layer_dir, *[p for p in sys.path[1:] if p]]
    os.chdir(task_root)
    module_name, function_name = handler_path.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    replies = os.fdopen(reply_fd, "wb")
    write_message(replies, {"ready": True})
    requests = sys.stdin.buffer
    while (request := read_message(requests)) is not None:
        context = LambdaContext(
            function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name),
            memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            timeout_seconds=float(request["timeout"]),
            aws_request_id=request["requestId"],
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )
        try:
            result = handler(request["event"], context)
            reply = {"result": result}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, as Lambda does
            trace = traceback.format_exc()
            sys.stderr.write(trace)  # ends with its own newline
            sys.stderr.flush()
            reply = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": trace.splitlines(),
            }
        sys.stdout.flush()
        write_message(replies, reply)
    # End of stdin: gone at once, as Lambda ends an environment, without the interpreter's
    # orderly shutdown (a few hundred ms of finalizers with boto3 loaded, times every
    # environment when the stack stops).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
