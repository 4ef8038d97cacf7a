"""How `make test` provides the browser: the system's Chromium, else apt-get when allowed, else
Playwright's own build; never a request to install something by hand."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from local import browser


class _Machine:
    """A stand-in machine: which commands exist, who we are, and what each command does."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        *,
        uid: int,
        commands: set[str],
        sudo_without_password: bool = False,
        apt_works: bool = True,
        playwright_works: bool = True,
    ) -> None:
        self.commands = set(commands)
        self.ran: list[list[str]] = []
        self.playwright_cache: str | None = None
        self._sudo_ok = sudo_without_password
        self._apt_ok = apt_works
        self._playwright_ok = playwright_works
        monkeypatch.setattr(browser.shutil, "which", self._which)
        monkeypatch.setattr(browser.os, "geteuid", lambda: uid)
        monkeypatch.setattr(browser.subprocess, "run", self._run)
        monkeypatch.setattr(browser, "playwright_chromium", lambda: self.playwright_cache)

    def _which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.commands else None

    def _run(self, command: list[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.ran.append(list(command))
        words = [w for w in command if w not in ("/usr/bin/sudo", "-n")]
        ok = True
        if words[:1] == ["true"]:
            ok = self._sudo_ok
        elif words[:2] == ["apt-get", "install"]:
            ok = self._apt_ok
            if ok:
                self.commands.add("chromium")
        elif words[1:4] == ["-m", "playwright", "install"]:
            ok = self._playwright_ok
            if ok:
                self.playwright_cache = "/home/dev/.cache/ms-playwright/chrome"
        return subprocess.CompletedProcess(command, 0 if ok else 1, "", "E: failed")


def test_an_installed_chromium_is_used_and_nothing_is_installed(monkeypatch):
    machine = _Machine(monkeypatch, uid=1000, commands={"chromium", "apt-get"})
    found = browser.ensure()
    assert found.executable == "/usr/bin/chromium"
    assert machine.ran == []


def test_root_installs_debians_chromium_with_apt_get(monkeypatch):
    machine = _Machine(monkeypatch, uid=0, commands={"apt-get"})
    found = browser.ensure()
    assert found.executable == "/usr/bin/chromium"
    assert "apt-get" in found.origin
    assert [c[:2] for c in machine.ran] == [["apt-get", "update"], ["apt-get", "install"]]
    assert machine.ran[-1][-1] == "chromium"


def test_passwordless_sudo_installs_with_apt_get_through_sudo(monkeypatch):
    machine = _Machine(
        monkeypatch, uid=1000, commands={"apt-get", "sudo"}, sudo_without_password=True
    )
    browser.ensure()
    installs = [c for c in machine.ran if "install" in c]
    assert installs and installs[0][:3] == ["/usr/bin/sudo", "-n", "apt-get"]


def test_without_privileges_playwright_downloads_its_own_chromium(monkeypatch):
    machine = _Machine(monkeypatch, uid=1000, commands={"apt-get", "sudo"})
    found = browser.ensure()
    assert found.executable.endswith("ms-playwright/chrome")
    assert not any("apt-get" in c for c in machine.ran)  # sudo asked a password: never tried
    assert machine.ran[-1][1:] == ["-m", "playwright", "install", "chromium"]


def test_a_failing_apt_get_falls_back_to_playwright(monkeypatch):
    machine = _Machine(monkeypatch, uid=0, commands={"apt-get"}, apt_works=False)
    found = browser.ensure()
    assert "Playwright" in found.origin
    assert machine.ran[-1][1:] == ["-m", "playwright", "install", "chromium"]


def test_when_nothing_can_provide_a_browser_the_command_says_so_and_fails(monkeypatch, capsys):
    _Machine(monkeypatch, uid=1000, commands=set(), playwright_works=False)
    assert browser.main() == 1
    assert "no Chromium could be provided" in capsys.readouterr().err


def test_the_command_prints_one_line_naming_the_browser(monkeypatch, capsys):
    _Machine(monkeypatch, uid=1000, commands={"chromium"})
    assert browser.main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["browser for the tests: the system's Chromium, /usr/bin/chromium"]
