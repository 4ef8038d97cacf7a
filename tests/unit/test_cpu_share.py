"""CPU shares as Lambda gives them (`local/cpu_share.py`): the arithmetic, `LOCAL_CPU_SHARE`,
and what happens where this machine cannot cap, on directories that stand in for a cgroup
root (no root, no cgroup needed). tests/e2e/test_cpu_share.py caps real processes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local import cpu_share
from local.bench_cpu import billed_ms, gb_seconds_per_million
from local.cpu_share import (
    CannotCap,
    Hierarchy,
    ShareSetting,
    find_hierarchy,
    function_limits,
    lambda_share,
    parse_share,
    usable,
)


@pytest.mark.parametrize(
    ("memory_mb", "share"),
    [(128, 0.0724), (256, 0.1447), (512, 0.2894), (1024, 0.5789), (1769, 1.0), (3538, 2.0)],
)
def test_lambda_gives_one_core_per_1769_mb(memory_mb, share):
    assert lambda_share(memory_mb) == pytest.approx(share, abs=1e-4)


@pytest.mark.parametrize(("text", "share"), [("0.15", 0.15), (".5", 0.5), ("1", 1.0), ("2", 2.0)])
def test_a_share_is_a_fraction_of_a_core_up_to_the_machines_cores(text, share):
    assert parse_share(text, cores=2) == share


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "under 0.01"),
        ("0.005", "under 0.01"),
        ("-1", "a number such as 0.15"),
        ("abc", "a number such as 0.15"),
        ("nan", "a number such as 0.15"),
        ("1e-1", "a number such as 0.15"),
        ("", "a number such as 0.15"),
        # Refused, not run uncapped: a quota above the cores never binds, so what ran under
        # it would not have had the share asked for.
        ("2.5", "more than the 2 cores here"),
    ],
)
def test_a_bad_share_is_refused_with_a_sentence(text, says):
    with pytest.raises(ValueError, match=says):
        parse_share(text, cores=2)


def test_local_cpu_share_unset_or_blank_caps_nothing():
    assert ShareSetting.from_env({}) is None
    assert ShareSetting.from_env({"LOCAL_CPU_SHARE": " "}) is None


def test_local_cpu_share_lambda_gives_each_function_its_memorys_share():
    setting = ShareSetting.from_env({"LOCAL_CPU_SHARE": "lambda"}, cores=2)
    assert setting is not None
    assert setting.share_for("GetStateFunction", 256) == pytest.approx(256 / 1769)
    assert setting.share_for("Big", 1769) == 1.0
    upper = ShareSetting.from_env({"LOCAL_CPU_SHARE": "LAMBDA"}, cores=2)
    assert upper is not None and upper.fixed is None


def test_local_cpu_share_as_a_fraction_is_every_functions_share():
    setting = ShareSetting.from_env({"LOCAL_CPU_SHARE": "0.15"}, cores=2)
    assert setting is not None
    assert setting.share_for("GetStateFunction", 256) == 0.15
    assert setting.share_for("Big", 3008) == 0.15


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", "lambda:256"])
def test_a_bad_local_cpu_share_stops_with_a_line_naming_the_variable(value):
    with pytest.raises(SystemExit, match="LOCAL_CPU_SHARE"):
        ShareSetting.from_env({"LOCAL_CPU_SHARE": value}, cores=2)


def test_lambda_for_a_memory_size_beyond_the_machines_cores_names_the_function():
    setting = ShareSetting.from_env({"LOCAL_CPU_SHARE": "lambda"}, cores=2)
    assert setting is not None
    with pytest.raises(SystemExit, match=r"Big's MemorySize 10240 MB gives 5\.789 of a core"):
        setting.share_for("Big", 10240)


@pytest.mark.parametrize(
    ("memory_mb", "duration_ms", "billed", "gb_seconds"),
    [
        (256, 12.0, 12, 3000.0),  # 0.25 GB x 0.012 s x 1e6
        (256, 12.01, 13, 3250.0),  # billed per ms, rounded up
        (1024, 0.2, 1, 1000.0),
        (1769, 7.5, 8, 1769 / 1024 * 8000),
    ],
)
def test_gb_seconds_per_million_bill_the_duration_rounded_up_to_the_ms(
    memory_mb, duration_ms, billed, gb_seconds
):
    assert billed_ms(duration_ms) == billed
    assert gb_seconds_per_million(memory_mb, duration_ms) == pytest.approx(gb_seconds)


def test_the_hierarchy_is_v2_where_its_root_offers_cpu_else_v1s_cpu(tmp_path):
    v2 = tmp_path / "unified"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("hugetlb\n")
    v1 = "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0"
    mounts = "\n".join(
        [
            "proc /proc proc rw 0 0",
            "cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0",
            "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0",
            f"cgroup2 {v2} cgroup2 rw,relatime 0 0",
            v1,
        ]
    )
    # Hybrid, as on this project's machine: v2 without its cpu controller, v1's cpu mounted.
    assert find_hierarchy(mounts) == Hierarchy(Path("/sys/fs/cgroup/cpu"), 1)
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert find_hierarchy(mounts) == Hierarchy(v2, 2)
    with pytest.raises(CannotCap, match="no cgroup CPU controller is mounted"):
        find_hierarchy("\n".join(mounts.splitlines()[:3]))


@pytest.mark.parametrize("version", [1, 2])
def test_a_directory_that_is_not_a_cgroup_cannot_cap_and_keeps_nothing(tmp_path, version):
    # A group made there has no control files: writing its quota must fail, not create one.
    with pytest.raises(CannotCap) as caught:
        usable(Hierarchy(tmp_path, version))
    control = "cgroup.subtree_control" if version == 2 else "cpu.cfs_period_us"
    assert "No such file or directory" in str(caught.value)
    assert control in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_cgroup_root_this_user_may_not_write_cannot_cap(tmp_path, monkeypatch):
    def refused(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(CannotCap, match=f"Permission denied .*{tmp_path}/offer-state-"):
        usable(Hierarchy(tmp_path, 1))


def test_where_it_cannot_cap_one_line_says_why_and_nothing_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_share, "find_hierarchy", lambda: Hierarchy(tmp_path, 1))
    lines: list[str] = []
    limits = function_limits(
        {"GetStateFunction": 256, "UpdateStateFunction": 256},
        lines.append,
        {"LOCAL_CPU_SHARE": "lambda"},
    )
    assert limits == {}
    assert len(lines) == 1
    assert lines[0].startswith("LOCAL_CPU_SHARE=lambda: cannot cap CPU here (cgroup v1 at ")
    assert lines[0].endswith("; the functions run uncapped")


def test_unset_nothing_is_looked_at_and_nothing_said(monkeypatch):
    def looked(*_args: object) -> Hierarchy:
        raise AssertionError("looked for a cgroup")

    monkeypatch.setattr(cpu_share, "find_hierarchy", looked)
    lines: list[str] = []
    assert function_limits({"GetStateFunction": 256}, lines.append, {}) == {}
    assert lines == []


def test_the_check_command_says_in_one_line_that_it_cannot(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cpu_share, "find_hierarchy", lambda: Hierarchy(tmp_path, 1))
    assert cpu_share.main(["check", "--share", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith("cannot cap CPU here (cgroup v1 at ")
    assert out.endswith("; running uncapped\n")


@pytest.mark.parametrize("share", ["0", "abc"])
def test_the_commands_refuse_a_bad_share(share, capsys):
    with pytest.raises(SystemExit) as exited:
        cpu_share.main(["run", "--share", share, "--", "true"])
    assert exited.value.code == 2
    assert "--share:" in capsys.readouterr().err


def test_groups_left_by_a_creator_that_is_gone_are_swept_and_no_others(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    gone = tmp_path / f"offer-state-{int(ended.stdout)}-1"
    mine = tmp_path / f"offer-state-{os.getpid()}-1"
    other = tmp_path / "capped_1"
    for folder in (gone, mine, other):
        folder.mkdir()
    Hierarchy(tmp_path, 1).sweep()
    assert sorted(tmp_path.iterdir()) == sorted([mine, other])
