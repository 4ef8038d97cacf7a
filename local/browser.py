"""The headless Chromium that the demo page's tests drive: found on this machine, or provided.

`make test` runs this first (`python -m local.browser`), so a machine with only Python, git and
make gets a browser without anyone installing one by hand. In order of preference:

1. a Chromium already installed (`chromium` or `chromium-browser` on PATH);
2. Debian's `chromium` package through apt-get, when this user may install packages (root, or
   passwordless sudo): the distribution's build, kept up to date by the system;
3. Playwright's own Chromium build (`python -m playwright install chromium`, into the user's
   cache), which needs no privileges.

One line says which browser the tests will use and where it came from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DEBIAN_PACKAGE = "chromium"
_SYSTEM_NAMES = ("chromium", "chromium-browser")


@dataclass(frozen=True)
class Browser:
    """A Chromium executable and a sentence saying where it came from."""

    executable: str
    origin: str

    def describe(self) -> str:
        return f"browser for the tests: {self.origin}, {self.executable}"


def system_chromium() -> str | None:
    """A Chromium installed on the machine (found on PATH), or None."""
    return next(filter(None, map(shutil.which, _SYSTEM_NAMES)), None)


def playwright_chromium() -> str | None:
    """The Chromium that `playwright install` put in the user's cache, or None."""
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            executable = playwright.chromium.executable_path
    except Error:
        return None
    return executable if executable and Path(executable).is_file() else None


def find() -> Browser | None:
    """The browser the tests will use, without installing anything."""
    system = system_chromium()
    if system is not None:
        return Browser(system, "the system's Chromium")
    cached = playwright_chromium()
    if cached is not None:
        return Browser(cached, "Playwright's Chromium (already downloaded)")
    return None


def _may_install_packages() -> list[str] | None:
    """The command prefix that runs apt-get as root (`[]` when we are root), or None."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    return None


def _apt_install(prefix: list[str]) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing Debian's {DEBIAN_PACKAGE} with apt-get (first run only) ...", flush=True)
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", DEBIAN_PACKAGE],
    ):
        done = subprocess.run([*prefix, *command], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            print(f"apt-get failed ({' '.join(command[:2])}): {' / '.join(tail)}", flush=True)
            return False
    return system_chromium() is not None


def _playwright_install() -> bool:
    print("downloading Playwright's Chromium (first run only) ...", flush=True)
    command = [sys.executable, "-m", "playwright", "install", "chromium"]
    return subprocess.run(command).returncode == 0 and playwright_chromium() is not None


def ensure() -> Browser:
    """The browser the tests will use, installing one first if the machine has none."""
    found = find()
    if found is not None:
        return found
    prefix = _may_install_packages()
    if prefix is not None and _apt_install(prefix):
        return Browser(str(system_chromium()), f"Debian's {DEBIAN_PACKAGE}, installed with apt-get")
    if _playwright_install():
        return Browser(str(playwright_chromium()), "Playwright's Chromium, downloaded now")
    raise RuntimeError(
        "no Chromium could be provided: apt-get was not allowed or failed, and "
        "`python -m playwright install chromium` failed (see its output above)"
    )


def main() -> int:
    try:
        browser = ensure()
    except RuntimeError as exc:
        print(f"browser for the tests: {exc}", file=sys.stderr)
        return 1
    print(browser.describe(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
