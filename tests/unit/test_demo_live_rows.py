"""The demo's live table: a warm-up row appears when its batch is ingested and is replaced once done."""

from __future__ import annotations

import io

from rich.console import Console

from cli.demo_cmd import _LiveTable, _week_line


def _warm(**extra: object) -> dict:
    row = {"model": "elec2", "phase": "warm-up", "index": 0, "week": "36-43", "start": "1997-01-01"}
    return {**row, "rows": 2688, "retrains": [], "champion_version": None, **extra}


def test_warm_up_row_is_replaced_and_weeks_are_added():
    out = io.StringIO()
    table = _LiveTable(Console(file=out, width=160), total=3)
    with table:
        table.add(_warm(status="ingested; monitor and retrains running", seconds=5))
        done = _warm(
            retrains=[{"reason": "volume", "version": "1", "status": "promoted"}], champion_version="1"
        )
        table.add({**done, "seconds": 50})
        table.add(
            {"model": "elec2", "index": 1, "week": 44, "start": "1997-03-11", "retrains": [], "seconds": 60}
        )
    assert [(r.get("phase"), r["index"]) for r in table.rows] == [("warm-up", 0), (None, 1)]
    lines = out.getvalue().splitlines()  # not a terminal: one line per added row
    assert lines[0].startswith("elec2 warm-up (weeks 36-43, 2688 rows from 1997-01-01): ingested; monitor")
    assert "no champion yet" in lines[0]
    assert _week_line(table.rows[0], 3).endswith("volume: v1 promoted, champion v1, 50s")
