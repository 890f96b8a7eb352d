"""`evergreen up / status / down` as a user runs them: real processes, free ports, no strays."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import stack
from deployments import work_queues
from stack.queues import queue_priorities

REPO = Path(__file__).resolve().parents[2]
CLEAN = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_HOME",
    "MLFLOW_TRACKING_URI",
    "EVERGREEN_MLFLOW_TRACKING_URI",
    "EVERGREEN_DATABASE_URL",
    "EVERGREEN_MLFLOW_BACKEND_URI",
    "EVERGREEN_MLFLOW_ARTIFACTS_DESTINATION",
    "EVERGREEN_WORK_POOL",
)


def _env(home: Path, prefect_port: int, mlflow_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env.update(
        EVERGREEN_HOME=str(home),
        EVERGREEN_PREFECT_PORT=str(prefect_port),
        EVERGREEN_MLFLOW_PORT=str(mlflow_port),
        EVERGREEN_WORKER_QUERY_SECONDS="1",
    )
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _json(res: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(res.stdout)
    except ValueError:
        pytest.fail(f"not JSON (rc {res.returncode}):\nstdout:\n{res.stdout}\nstderr:\n{res.stderr[-4000:]}")


def _deployable() -> bool | str:
    """True when prefect.yaml exists and every entrypoint file it names exists; else the reason."""
    import yaml

    path = REPO / "prefect.yaml"
    if not path.is_file():
        return "no prefect.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    missing = sorted(
        {
            d["entrypoint"].split(":")[0]
            for d in doc.get("deployments") or []
            if d.get("entrypoint") and not (REPO / d["entrypoint"].split(":")[0]).is_file()
        }
    )
    return f"prefect.yaml names missing entrypoints {missing}" if missing else True


def _force_down(home: Path) -> None:
    """Safety net: whatever a failed test left recorded is stopped by PID."""
    path = home / "stack.json"
    if path.exists():
        for d in json.loads(path.read_text()).get("services", {}).values():
            svc = stack.Service.from_dict(d)
            with contextlib.suppress(stack.StackError):
                svc.stop(timeout=20)


@pytest.fixture
def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((stack.HOST, 0))
    s.listen()
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("which", ["prefect", "mlflow"])
def test_taken_port_gives_clear_error(tmp_path, listening_socket, which):
    taken = listening_socket
    other = stack.free_port()
    ports = (taken, other) if which == "prefect" else (other, taken)
    env = _env(tmp_path / "home", *ports)
    res = _cli("up", "--no-deploy", "--json", env=env, timeout=120)
    setting = "EVERGREEN_PREFECT_PORT" if which == "prefect" else "EVERGREEN_MLFLOW_PORT"
    assert res.returncode == 2, res.stderr
    assert str(taken) in res.stderr and setting in res.stderr, res.stderr
    out = _json(res)
    assert out["ok"] is False and out["port"] == taken and out["setting"] == setting
    # nothing was started: no recorded services, and the other port is still free
    state = tmp_path / "home" / "stack.json"
    assert not state.exists() or not json.loads(state.read_text()).get("services")
    assert not stack.port_in_use(other)


@pytest.mark.slow
@pytest.mark.integration
def test_up_status_down_leaves_no_stray_process(tmp_path):
    home = tmp_path / "home"
    prefect_port, mlflow_port = stack.free_port(), stack.free_port()
    env = _env(home, prefect_port, mlflow_port)
    deploy = _deployable()
    try:
        res = _cli("up", "--json", "--no-deploy", env=env)
        assert res.returncode == 0, f"up failed:\n{res.stdout}\n{res.stderr[-6000:]}"
        st = _json(res)
        services = st["services"]
        assert set(services) == {"prefect-server", "mlflow-server", "prefect-worker"}
        assert services["prefect-server"]["port"] == prefect_port
        assert services["mlflow-server"]["port"] == mlflow_port
        assert st["env"]["PREFECT_API_URL"] == f"http://127.0.0.1:{prefect_port}/api"
        assert st["env"]["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{mlflow_port}"
        assert all(a == "started" for a in st["actions"].values()), st["actions"]
        # the retrain priority queues, in order (deployments.work_queues; docs/priorities.md)
        queues = queue_priorities(st["env"]["PREFECT_API_URL"], st["work_pool"])
        assert queues == dict(work_queues()) and set(st["work_queues"]) == set(queues)
        assert (home / "logs" / "prefect-server.log").is_file()
        assert (home / "logs" / "mlflow-server.log").is_file()
        assert (home / "logs" / "prefect-worker.log").is_file()
        pids = {name: svc["pid"] for name, svc in services.items()}
        # Prefect's own PID file, so `prefect server stop` finds the server too
        assert (home / "prefect" / "server.pid").read_text() == str(pids["prefect-server"])
        for name, svc in services.items():
            print(f"{name}: ready {svc['startup_seconds']:.1f}s after spawn")
        print(f"up total: {st['up_seconds']:.1f}s")

        res = _cli("status", "--json", env=env, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        status = _json(res)
        assert status["healthy"] is True
        rows = {r["name"]: r for r in status["services"]}
        for name, pid in pids.items():
            assert rows[name]["pid"] == pid and rows[name]["running"] and rows[name]["healthy"]
        assert rows["prefect-server"]["port"] == prefect_port
        assert rows["mlflow-server"]["port"] == mlflow_port

        # idempotent: a second `up` reuses the running services (and deploys prefect.yaml when it can)
        res = _cli("up", "--json", *([] if deploy is True else ["--no-deploy"]), env=env, timeout=600)
        assert res.returncode == 0, f"second up failed:\n{res.stdout}\n{res.stderr[-6000:]}"
        again = _json(res)
        assert {n: s["pid"] for n, s in again["services"].items()} == pids
        assert set(again["actions"].values()) == {"reused"}
        if deploy is True:
            assert again["deploy"]["status"] == "deployed", again["deploy"]
            code, body = stack.http_post_json(f"{st['env']['PREFECT_API_URL']}/deployments/filter", {})
            assert code == 200 and body, "prefect.yaml deployed nothing"
            print(f"deploy: {again['deploy']['seconds']:.1f}s")
        else:
            warnings.warn(f"`up` ran without deploying: {deploy}", stacklevel=1)

        # every process of the stack, children included, before `down`
        everything = {pid for pid in pids.values()}
        for pid in pids.values():
            everything.update(stack.descendants(pid))
        starts = {pid: stack.process_start_time(pid) for pid in everything}

        res = _cli("down", "--json", env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        out = _json(res)
        assert {s["name"] for s in out["services"] if s["stopped"]} == set(pids)
    finally:
        _force_down(home)

    alive = [pid for pid, t in starts.items() if stack.pid_alive(pid, t)]
    assert not alive, f"stray processes after down: {alive}"
    assert not stack.port_in_use(prefect_port), f"port {prefect_port} still bound"
    assert not stack.port_in_use(mlflow_port), f"port {mlflow_port} still bound"
    assert not (home / "stack.json").exists()
    assert not (home / "prefect" / "server.pid").exists()

    res = _cli("status", "--json", env=env, timeout=120)
    assert res.returncode == 1
    assert _json(res)["recorded"] is False
    res = _cli("down", "--json", env=env, timeout=120)  # nothing to stop is fine
    assert res.returncode == 0 and _json(res)["services"] == []


def _processes_of(home: Path) -> list[int]:
    """PIDs of every process whose environment names this EVERGREEN_HOME (what `up` started from it)."""
    import psutil

    mine = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("EVERGREEN_HOME") == str(home):
                mine.append(proc.pid)
    return mine


@pytest.mark.slow
@pytest.mark.integration
def test_a_part_that_fails_stops_the_others_with_one_error_line(tmp_path):
    """MLflow cannot start (unknown backend store): `up` fails at once, naming it, and leaves nothing running.

    The Prefect server, the worker and the held `prefect deploy` started beside MLflow are all stopped.
    """
    home = tmp_path / "home"
    prefect_port, mlflow_port = stack.free_port(), stack.free_port()
    env = _env(home, prefect_port, mlflow_port)
    env["EVERGREEN_MLFLOW_BACKEND_URI"] = "nosuchstore://nowhere"
    try:
        res = _cli("up", "--json", env=env, timeout=600)
        out = _json(res)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 1 and out["ok"] is False, res.stderr[-4000:]
        assert len(errors) == 1 and "mlflow-server" in errors[0] and "exited" in errors[0], res.stderr
        assert "Traceback" not in errors[0]
        state = json.loads((home / "stack.json").read_text())
        assert state.get("services") == {} and "failed" in state.get("error", "")
        assert _wait_for(lambda: not _processes_of(home), timeout=30), _processes_of(home)
        assert not stack.port_in_use(prefect_port) and not stack.port_in_use(mlflow_port)
    finally:
        _force_down(home)


@pytest.mark.slow
@pytest.mark.integration
def test_prefect_server_stop_stops_a_server_we_started(tmp_path):
    """We share Prefect's PID-file convention: `prefect server stop` with the same PREFECT_HOME works."""
    home = tmp_path / "prefect"
    svc = stack.start_prefect_server(
        stack.free_port(), home, port_setting=None, die_with_parent=True, timeout=300
    )
    try:
        assert (home / "server.pid").read_text() == str(svc.pid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        res = subprocess.run(
            [str(Path(sys.executable).with_name("prefect")), "server", "stop"],
            env={**env, "PREFECT_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert _wait_for(lambda: not svc.alive(), timeout=60), "the server survived `prefect server stop`"
        assert not (home / "server.pid").exists()
    finally:
        svc.stop()


# ------------------------------------------------------------------ fast checks of the process layer

SPAWN_TREE = """
import subprocess, sys, time
# a grandchild in its OWN session, like the process worker's flow runs
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
time.sleep(300)
"""


def _wait_for(pred, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_stop_kills_the_whole_tree_including_other_sessions(tmp_path):
    svc = stack.spawn("tree", [sys.executable, "-c", SPAWN_TREE], log_path=tmp_path / "tree.log")
    assert _wait_for(lambda: len(stack.descendants(svc.pid)) >= 2)
    kids = stack.descendants(svc.pid)
    starts = {k: stack.process_start_time(k) for k in kids}
    assert svc.stop(timeout=5) is True
    assert not svc.alive()
    assert not [k for k in kids if stack.pid_alive(k, starts[k])]
    assert svc.stop() is False  # second stop: nothing to do


def test_recorded_pid_with_other_start_time_is_not_signalled(tmp_path):
    svc = stack.spawn(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log_path=tmp_path / "s.log"
    )
    try:
        d = svc.to_dict()
        d["start_time"] = (svc.start_time or 0) + 12345  # as if the PID had been recycled
        impostor = stack.Service.from_dict(json.loads(json.dumps(d)))
        assert impostor.alive() is False
        assert impostor.stop() is False
        assert svc.alive()
    finally:
        svc.stop()


def test_port_in_use_error_names_port_and_setting(listening_socket):
    with pytest.raises(stack.PortInUseError) as exc:
        stack.ensure_port_free(listening_socket, "EVERGREEN_MLFLOW_PORT", "MLflow server")
    assert str(listening_socket) in str(exc.value) and "EVERGREEN_MLFLOW_PORT" in str(exc.value)
    assert not stack.port_in_use(stack.free_port())


def test_startup_error_carries_log_tail(tmp_path):
    code = "import sys; print('boom: bad config'); sys.exit(3)"
    svc = stack.spawn("failing", [sys.executable, "-c", code], log_path=tmp_path / "f.log")
    svc.health_url = "http://127.0.0.1:9/never"
    with pytest.raises(stack.StartupError, match="boom: bad config"):
        svc.wait_healthy(timeout=20)


def test_database_urls():
    assert stack.asyncpg_url("postgresql://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert stack.mlflow_pg_url("postgresql+asyncpg://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert stack.mlflow_pg_url("sqlite:///x.db") == "sqlite:///x.db"
    assert stack.redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
