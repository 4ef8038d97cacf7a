"""The local stack's console: whole lines from many threads and from the function processes.

`make run` writes the gateway's request lines from one thread per request and the functions'
own output (their logs, their metrics) from worker processes, to one terminal. Written as
they come, lines merge and break apart under load. Here every line is one write under one
lock for the whole process, stdout and stderr alike (both usually end on the same terminal
or pipe), and a worker's output is read from its pipe and written line by line.

The streams are looked up at each write: `sys.stdout` and `sys.stderr` as they are then
(pytest swaps them for each test).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO, TextIO

LineWriter = Callable[[str], None]

_lock = threading.Lock()


def _write(stream: TextIO, line: str) -> None:
    with _lock:
        stream.write(line + "\n")
        stream.flush()


def stdout_line(line: str) -> None:
    """Writes `line` and a newline to stdout, whole."""
    _write(sys.stdout, line)


def stderr_line(line: str) -> None:
    """Writes `line` and a newline to stderr, whole."""
    _write(sys.stderr, line)


def forward_lines(pipe: IO[bytes], write: LineWriter) -> threading.Thread:
    """A started daemon thread that reads `pipe` to its end and hands `write` each line
    (UTF-8, undecodable bytes replaced; a last line without a newline too), then closes it."""

    def copy() -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                write(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread
