"""stack.queues retries a busy Prefect server (HTTP 503 / dropped connection) instead of failing `evergreen up`."""

from __future__ import annotations

import pytest

from stack import queues
from stack.errors import StackError


def test_a_transient_503_is_retried_then_the_queue_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([(404, None), (503, None), (0, None), (201, {"name": "retrain-p1"})])
    calls: list[str] = []

    def fake(method: str, url: str, payload: object | None, timeout: float) -> tuple[int, object]:
        calls.append(method)
        return next(answers)

    monkeypatch.setattr(queues, "_call_once", fake)
    monkeypatch.setattr(queues.time, "sleep", lambda s: None)
    assert queues.ensure_work_queues("http://api", "pool", [("retrain-p1", 1)]) == {"retrain-p1": "created"}
    assert calls == ["GET", "POST", "POST", "POST"]


def test_a_server_that_stays_down_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queues, "_call_once", lambda *a: (503, None))
    monkeypatch.setattr(queues.time, "sleep", lambda s: None)
    with pytest.raises(StackError, match="reading work queue 'retrain-p1' of pool 'pool' failed: HTTP 503"):
        queues.ensure_work_queues("http://api", "pool", [("retrain-p1", 1)])
