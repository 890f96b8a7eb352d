"""The `evergreen-process` worker (workers/prefork.py) on a real Prefect server, with real deployments.

What a user of the worker type relies on: a run sees its job's env and working directory, imports the
project code as it is now (not as it was when the worker started), finds the heavy libraries already
imported, and ends FAILED, CRASHED or CANCELLED exactly as under Prefect's `process` worker. A job
with an explicit `command` runs that command in a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from stack.processes import descendants, pid_alive
from tests.e2e.harness import TERMINAL, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FLOW = """
import json, os, sys, time
from pathlib import Path

import numpy

from prefect import flow

import helper


@flow
def job(out: str, mode: str = "ok", seconds: float = 0.0) -> None:
    Path(out).write_text(json.dumps({
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "version": helper.VERSION,
        "mark": os.environ.get("EVERGREEN_TEST_MARK"),
        "lightgbm_preloaded": "lightgbm" in sys.modules,
        "draw": float(numpy.random.random()),
    }))
    if mode == "fail":
        raise RuntimeError("the flow failed on purpose")
    if mode == "crash":
        os._exit(3)
    time.sleep(seconds)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory holding a flow and a helper module it imports."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "flow_job.py").write_text(textwrap.dedent(FLOW))
    (proj / "helper.py").write_text("VERSION = 1\n")
    return proj


def _deploy(project: Path, pool: str, name: str, job_variables: dict[str, Any]) -> str:
    from prefect import flow

    source = flow.from_source(source=str(project), entrypoint="flow_job.py:job")
    return str(
        source.deploy(  # type: ignore[union-attr]
            name=name,
            work_pool_name=pool,
            job_variables=job_variables,
            build=False,
            push=False,
            print_next_steps=False,
        )
    )


def _run(deployment_id: str, out: Path, **params: Any) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        run = c.create_flow_run_from_deployment(deployment_id, parameters={"out": str(out), **params})
    return str(run.id)


def _state(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id).state_type.value


def _final(run_id: str) -> str:
    return wait_for(f"flow run {run_id} to end", lambda: (s := _state(run_id)) in TERMINAL and s, timeout=300)


@pytest.fixture
def worker(prefect_server, stack_env, prefect_worker, project: Path):
    """(pool name, worker service) of an `evergreen-process` worker polling a fresh pool."""
    env = stack_env(prefect=prefect_server)
    name = f"prefork-{uuid.uuid4().hex[:6]}"
    return name, prefect_worker(name, server=prefect_server, cwd=project, env=env)


@pytest.fixture
def pool(worker) -> str:
    return worker[0]


def _forkservers(worker_pid: int) -> list[int]:
    found = []
    for pid in descendants(worker_pid):
        with contextlib.suppress(psutil.Error):
            if "multiprocessing.forkserver" in " ".join(psutil.Process(pid).cmdline()):
                found.append(pid)
    return found


def test_runs_see_their_env_and_current_code_with_libraries_preloaded(pool, project, tmp_path):
    dep = _deploy(project, pool, "ok", {"env": {"EVERGREEN_TEST_MARK": "from-the-job"}})
    first = tmp_path / "first.json"
    assert _final(_run(dep, first)) == "COMPLETED"
    seen = json.loads(first.read_text())
    assert seen["mark"] == "from-the-job"
    assert Path(seen["cwd"]).resolve() == project.resolve()  # the deployment's pull step ran
    assert seen["lightgbm_preloaded"] is True  # what makes the start cheap: imported before the run
    assert seen["version"] == 1

    (project / "helper.py").write_text("VERSION = 2\n")  # a code change, no worker restart
    second = tmp_path / "second.json"
    assert _final(_run(dep, second)) == "COMPLETED"
    again = json.loads(second.read_text())
    assert again["version"] == 2
    assert again["pid"] != seen["pid"]  # one process per run, as under the process worker
    assert again["draw"] != seen["draw"]  # NumPy's global RNG is not the forkserver's, run after run


def test_failed_and_crashed_runs_end_as_under_the_process_worker(pool, project, tmp_path):
    dep = _deploy(project, pool, "bad", {})
    failed = _run(dep, tmp_path / "failed.json", mode="fail")
    crashed = _run(dep, tmp_path / "crashed.json", mode="crash")
    assert _final(failed) == "FAILED"
    assert _final(crashed) == "CRASHED"
    assert (tmp_path / "crashed.json").is_file()  # it did run before exiting with 3


def test_a_cancelled_run_ends_cancelled_and_its_process_is_gone(pool, project, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    dep = _deploy(project, pool, "slow", {})
    out = tmp_path / "slow.json"
    run_id = _run(dep, out, mode="sleep", seconds=600)
    wait_for("the slow run to start", lambda: out.is_file() and _state(run_id) == "RUNNING", timeout=300)
    pid = json.loads(out.read_text())["pid"]
    with get_client(sync_client=True) as c:
        c.set_flow_run_state(run_id, Cancelling(), force=True)
    assert _final(run_id) == "CANCELLED"
    wait_for(f"flow-run process {pid} to exit", lambda: not pid_alive(pid), timeout=60)


def test_a_job_with_a_command_runs_it_in_a_fresh_interpreter(pool, project, tmp_path):
    dep = _deploy(project, pool, "cmd", {"command": f"{sys.executable} -m prefect.engine"})
    out = tmp_path / "cmd.json"
    assert _final(_run(dep, out)) == "COMPLETED"
    assert json.loads(out.read_text())["lightgbm_preloaded"] is False


def test_runs_go_on_after_the_forkserver_is_killed(worker, project, tmp_path):
    pool, svc = worker
    dep = _deploy(project, pool, "after-kill", {})
    assert _final(_run(dep, tmp_path / "before.json")) == "COMPLETED"
    servers = wait_for("the worker's forkserver", lambda: _forkservers(svc.pid), timeout=60)
    for pid in servers:
        os.kill(pid, signal.SIGKILL)
    wait_for("the forkserver to die", lambda: not any(pid_alive(p) for p in servers), timeout=60)
    # multiprocessing starts a new forkserver (and its preload) for the next run
    out = tmp_path / "after.json"
    assert _final(_run(dep, out)) == "COMPLETED"
    assert json.loads(out.read_text())["lightgbm_preloaded"] is True
    assert set(_forkservers(svc.pid)).isdisjoint(servers)
