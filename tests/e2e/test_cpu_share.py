"""CPU shares on real processes (`local/cpu_share.py`), where this machine allows it (root, a
writable cgroup CPU controller); skipped elsewhere. Timing is only ever bounded from above,
far from the quota: a busy machine gives a capped process less, never more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from local.cpu_share import PERIOD_US, CannotCap, CpuLimit, Hierarchy, usable
from local.functions import FunctionPool, FunctionSpec
from local.template import ROOT
from tests.support.stack import child_pids

SHARE = 0.3
# Spins for a second of wall time; prints the CPU time it got over that second.
BUSY = textwrap.dedent(
    """
    import json, time
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < 1.0:
        pass
    print(json.dumps({"wall": time.monotonic() - wall, "cpu": time.process_time() - cpu}))
    """
)


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    try:
        return usable()
    except CannotCap as exc:
        pytest.skip(f"this machine cannot cap CPU: {exc}")


def _my_groups(hierarchy: Hierarchy) -> set[str]:
    return {path.name for path in hierarchy.root.glob(f"offer-state-{os.getpid()}-*")}


def _quota(hierarchy: Hierarchy, group: str) -> str:
    if hierarchy.version == 2:
        return (hierarchy.root / group / "cpu.max").read_text().strip()
    return (hierarchy.root / group / "cpu.cfs_quota_us").read_text().strip()


def test_a_busy_loop_in_a_group_gets_about_its_share_of_a_core(hierarchy):
    with CpuLimit(hierarchy, SHARE).group() as group:
        with group.joining() as join:
            child = subprocess.Popen(
                [sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True, preexec_fn=join
            )
        assert group.processes() == [child.pid]  # in it from the start
        out, _ = child.communicate(timeout=30)
        periods = group.stat()["nr_periods"]
    measured = json.loads(out)
    # 0.3 of a core gives 0.3 s of CPU a second; uncapped, a spinning loop gets close to 1.
    assert measured["cpu"] <= 0.6 * measured["wall"], measured
    assert periods > 0  # the quota was in force while it ran
    assert not group.path.exists()


def test_the_run_command_becomes_the_command_capped_and_sweep_removes_its_group(hierarchy):
    script = BUSY + "raise SystemExit(3)\n"
    command = [sys.executable, "-m", "local.cpu_share", "run", "--share", str(SHARE), "--"]
    process = subprocess.Popen(
        [*command, sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 3  # its own status: it was the command (exec), not its parent
    measured = json.loads(out)
    assert measured["cpu"] <= 0.6 * measured["wall"], measured
    # Its group, made by the pid it ran as, outlives it, empty, until a sweep.
    (left,) = hierarchy.root.glob(f"offer-state-{process.pid}-*")
    assert (left / "cgroup.procs").read_text() == ""
    subprocess.run(
        [sys.executable, "-m", "local.cpu_share", "sweep"], cwd=ROOT, check=True, timeout=60
    )
    assert not left.exists()


@pytest.fixture
def echo_spec() -> FunctionSpec:
    return FunctionSpec(
        logical_id="EchoFunction",
        task_root=ROOT / "tests" / "e2e" / "echo_function",
        handler="app.lambda_handler",
        timeout=10,
        memory=256,
        environment={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def test_each_function_environment_has_a_group_of_its_own_until_it_ends(hierarchy, echo_spec):
    before = _my_groups(hierarchy)
    pool = FunctionPool(echo_spec, cpu=CpuLimit(hierarchy, SHARE))
    try:
        assert pool.invoke({"rawPath": "/"})["result"] == {"statusCode": 200, "body": "ok"}
        groups = _my_groups(hierarchy) - before
        assert len(groups) == 1
        (group,) = groups
        procs = (hierarchy.root / group / "cgroup.procs").read_text().split()
        assert len(procs) == 1 and int(procs[0]) in child_pids(os.getpid())
        quota = round(SHARE * PERIOD_US)
        assert _quota(hierarchy, group) in (str(quota), f"{quota} {PERIOD_US}")
    finally:
        pool.close()
    assert _my_groups(hierarchy) == before
