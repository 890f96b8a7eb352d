"""`evergreen-process`: Prefect's process worker, with flow-run processes forked from a warm interpreter.

A `process` worker starts every flow run as `python -m prefect.runner._workspace_supervisor`, which
prepares the workspace and then `exec`s `python -m prefect.engine`: two interpreters, each importing
Prefect, before the run turns `Running`; the run then imports LightGBM, MLflow and GX itself.
This worker type runs the same `prefect.engine` entry point in a child forked from a
`multiprocessing` forkserver that imported those third-party libraries once, when the worker started.

What stays Prefect's: the work pool, its base job template (`env`, `working_dir`, `stream_output`,
`command`), the deployment's pull steps (the engine runs them, as with an explicit `command`), the
control channel and cancellation, Crashed on a non-zero exit. A job whose `command` is set runs that
command exactly as the `process` worker would.

Only third-party modules are preloaded (workers/preload.py), never the project's: a run imports the code its
pull steps check out, so a redeploy takes effect without restarting the worker. Upgrading a
preloaded library does need a worker restart (the same holds for the worker's own Prefect).

    prefect worker start --pool evergreen-pool --type evergreen-process
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import runpy
import sys
import tempfile
import warnings
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle, create_isolated_termination_scope
from prefect.settings import get_current_settings
from prefect.utilities.processutils import sanitize_subprocess_env
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._control_channel import ControlChannel

WORKER_TYPE = "evergreen-process"


def forkserver_context() -> BaseContext:
    """The forkserver context whose server imports workers/preload.py's libraries once."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["workers.preload"])
    return ctx


def _run_engine(env: dict[str, str], cwd: str, stream_output: bool) -> None:
    """The child: the flow run's environment and directory, then `python -m prefect.engine`'s code."""
    from prefect.context import SettingsContext, get_settings_context
    from prefect.logging.configuration import setup_logging
    from prefect.settings import Settings

    # A session of its own, as the `process` worker gives each run: a signal to the worker's group
    # (Ctrl-C) does not reach the run, and cancelling the run stops its whole group (Dask workers...).
    os.setsid()
    if not stream_output:  # as the process worker's `stream_output: false`: output to /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.path.insert(0, cwd)  # as `python -m prefect.engine` run in `cwd` would have it
    sys.argv = ["prefect.engine"]  # the engine reads the flow run id from PREFECT__FLOW_RUN_ID
    if "numpy" in sys.modules:
        # Forked children share the forkserver's global NumPy RNG state (Python's `random` reseeds
        # itself after a fork, NumPy does not): unseeded draws would repeat from run to run.
        sys.modules["numpy"].random.seed()
    try:
        # Settings (and the logging levels they set) were read from the worker's environment at
        # preload time: read the run's.
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
            setup_logging()
            with warnings.catch_warnings():
                # "found in sys.modules ... prior to execution": the forkserver preloaded it, on purpose
                warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
                runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    finally:
        # A forked child leaves by os._exit: run what Python's exit would (Prefect drains its
        # log and event workers there), then flush what the run printed.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()


class ForkedEngineStarter:
    """A Prefect `ProcessStarter`: the engine in a forkserver child (env built as the `process` worker's)."""

    def __init__(
        self,
        ctx: BaseContext,
        *,
        cwd: Path,
        env: dict[str, str | None],
        stream_output: bool = True,
        control_channel: ControlChannel | None = None,
    ) -> None:
        self._ctx = ctx
        self._cwd = cwd
        self._env = env
        self._stream_output = stream_output
        self._control_channel = control_channel

    def environment(self, flow_run: FlowRun, control_env: dict[str, str]) -> dict[str, str]:
        """os.environ, the worker's Prefect settings, the job's env (it wins, as under `process`), the run's keys."""
        env: dict[str, str | None] = dict(os.environ)
        env.update(get_current_settings().to_environment_variables(exclude_unset=True))
        env.update(self._env)
        env.update(
            {
                "PREFECT__FLOW_RUN_ID": str(flow_run.id),
                "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
                **control_env,
            }
        )
        return {k: v for k, v in sanitize_subprocess_env(env).items() if v is not None}

    async def start(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        control_env: dict[str, str] = {}
        registered = False
        if self._control_channel is not None:
            try:
                port, token = self._control_channel.register(flow_run.id)
                control_env = {"PREFECT__CONTROL_PORT": str(port), "PREFECT__CONTROL_TOKEN": token}
                registered = True
            except RuntimeError:
                pass  # the channel is disabled: cancellation falls back to kill, as in Prefect
        handed_off = False
        try:
            process: Any = self._ctx.Process(  # type: ignore[attr-defined]
                target=_run_engine,
                args=(self.environment(flow_run, control_env), str(self._cwd), self._stream_output),
                name=f"prefect-flow-run-{flow_run.id}",
            )
            # The first start waits for the forkserver to finish its preload.
            await anyio.to_thread.run_sync(process.start)
            task_status.started(
                ProcessHandle(process, termination_scope=create_isolated_termination_scope(process.pid))
            )
            handed_off = True
            await anyio.to_thread.run_sync(process.join)
        except BaseException:
            if registered and not handed_off:
                assert self._control_channel is not None
                self._control_channel.unregister(flow_run.id)
            raise


class PreforkProcessWorker(ProcessWorker):
    """Prefect's process worker; runs without a `command` start in a forked, warm interpreter."""

    type = WORKER_TYPE
    _description = (
        "Evergreen's process worker: flow runs start in processes forked from an interpreter that "
        "has already imported Prefect, LightGBM, MLflow and GX."
    )
    _display_name = "Evergreen process (prefork)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fork_ctx: BaseContext | None = None

    async def __aenter__(self) -> PreforkProcessWorker:
        await super().__aenter__()
        self._fork_ctx = forkserver_context()
        # Start the forkserver (and its imports) now, not on the first flow run.
        await anyio.to_thread.run_sync(forkserver.ensure_running)
        return self

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        if configuration._command_configured or self._fork_ctx is None:
            return await super().run(flow_run, configuration, task_status)
        task_status = task_status or anyio.TASK_STATUS_IGNORED
        execution: FlowRunExecutionResult | None = None
        workspace_ctx = (
            contextlib.nullcontext(Path(configuration.working_dir))
            if configuration.working_dir
            else tempfile.TemporaryDirectory(suffix="prefect")
        )
        with workspace_ctx as workspace_dir:
            workspace = Path(workspace_dir).resolve()
            async with FlowRunExecutorContext() as ctx:
                starter = ForkedEngineStarter(
                    self._fork_ctx,
                    cwd=workspace,
                    env=dict(configuration.env),
                    stream_output=configuration.stream_output,
                    control_channel=ctx.control_channel,
                )
                executor = ctx.create_executor(
                    flow_run, starter, resolve_flow=load_flow_from_flow_run, propose_submitting=False
                )

                async def execute(
                    *, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
                ) -> None:
                    nonlocal execution
                    execution = await executor.submit(task_status=task_status)

                async with anyio.create_task_group() as tg:
                    handle = await tg.start(execute)
                    if handle.pid is None:
                        raise RuntimeError("Flow run process has no PID")
                    task_status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return ProcessWorkerResult(status_code=execution.status_code, identifier=str(execution.handle.pid))
