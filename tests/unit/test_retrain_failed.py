"""tasks.retrain_failed: the evergreen.retrain.failed payload, and a hook that never raises."""

from __future__ import annotations

from types import SimpleNamespace

from tasks.retrain_failed import failure_payload, on_retrain_failed


def test_payload_names_the_error_and_data_version() -> None:
    p = failure_payload({"model": "m", "reason": "drift", "data_rev": "abc"}, "run-1", ValueError("bad rows"))
    assert p == {
        "reason": "drift",
        "error_class": "ValueError",
        "error": "bad rows",
        "flow_run_id": "run-1",
        "data_version": "abc",
    }


def test_hook_swallows_its_own_errors() -> None:
    def broken(raise_on_failure: bool) -> object:
        raise RuntimeError("state unreadable")

    state = SimpleNamespace(result=broken)
    run = SimpleNamespace(id="run-1", parameters={"model": "m"})
    on_retrain_failed(None, run, state)  # must return, not raise
