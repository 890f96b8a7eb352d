"""Start a `prefect` CLI command early: import Prefect now, run the command once it can work.

    python stack/launch.py --after-health URL [--timeout S] -- worker start --pool P ...
    python stack/launch.py --wait-stdin -- --no-prompt deploy --all

`evergreen up` (stack/up.py) spawns the worker and the deploy this way right after it spawns the
servers, so their ~2 s (more on a loaded machine) of `import prefect.cli` overlaps the servers'
start-up instead of following it. `--after-health` polls `URL` until it answers 200, then runs the
command; `--wait-stdin` runs it once a line `go` arrives on stdin and exits 3 without running it when
stdin closes first (the `up` that spawned it failed or was stopped). Then it is exactly the `prefect`
console script: `prefect.cli.app()` with the arguments after `--`, in this process (same PID).

Run by file path, not `-m`: it must work with any project root, and it imports nothing from this
repository (the script's directory is removed from sys.path, so stack/*.py shadows no module).
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

NOT_STARTED = 3


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (the stack's own server)
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401  # basic auth on: the server answers, which is all we wait for
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _wait_health(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _healthy(url):
            return True
        time.sleep(0.25)
    return False


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(
            "usage: launch.py [--after-health URL] [--wait-stdin] [--timeout S] -- PREFECT ARGS",
            file=sys.stderr,
        )
        return 2
    own, args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    after = own[own.index("--after-health") + 1] if "--after-health" in own else None
    timeout = float(own[own.index("--timeout") + 1]) if "--timeout" in own else 240.0
    import prefect.cli  # the expensive part, done while the server starts

    # what the command itself imports once it runs (the CLI loads its commands lazily)
    if "worker" in args:
        import prefect.cli.worker
        import prefect.workers.process  # noqa: F401
    if "deploy" in args:
        import prefect.cli.deploy  # noqa: F401
    if after is not None and not _wait_health(after, timeout):
        print(f"launch.py: {after} did not answer within {timeout:.0f}s; not starting", file=sys.stderr)
        return NOT_STARTED
    if "--wait-stdin" in own and sys.stdin.readline().strip() != "go":
        return NOT_STARTED  # stdin closed: whoever spawned us gave up
    sys.argv = ["prefect", *args]
    prefect.cli.app()  # a Typer app: it raises SystemExit with the command's exit code
    return 0


if __name__ == "__main__":
    sys.path.pop(0)  # this directory: stack/config.py etc. must not shadow top-level modules
    sys.exit(main(sys.argv[1:]))
