"""The demo report renders in a real browser: headless Chromium (Debian's `chromium`, no download).

Renders a report built by `evergreen.report` (synthetic rows, or the file named by
``EVERGREEN_SCREENSHOT_REPORT``, e.g. a real ``.evergreen/reports/demo.html``), checks that plotly drew
the SVG traces and retrain markers, and saves a screenshot: to the test's tmp dir, and also to
``EVERGREEN_SCREENSHOT_OUT`` when set (`make screenshot` sets it to docs/img/demo_report.png).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from evergreen import report

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    env = os.environ.get("EVERGREEN_CHROMIUM")
    for cand in ([env] if env else []) + list(CHROMIUM_CANDIDATES):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return shutil.which("chromium")


def synthetic_demo() -> tuple[list[dict], list[dict]]:
    """30 weeks with drift around week 52 and a few retrains of every decision."""
    weeks, versions = (
        [],
        [
            {
                "version": "1",
                "reason": "manual",
                "status": "promoted",
                "tags": {"reason": "manual", "gate_passed": "true"},
                "gate_report": "# Gate report",
            }
        ],
    )
    champion, n = "1", 1
    for i in range(30):
        wk = 44 + i
        drift = round(0.5 + 2.5 * math.exp(-((wk - 53) ** 2) / 6) + 0.2 * (i % 3), 3)
        acc = round(0.86 - 0.12 * math.exp(-((wk - 53) ** 2) / 4) - 0.01 * (i % 4), 3)
        retrains = []
        if drift > 1.5 or (i + 1) % 4 == 0:
            n += 1
            status = "promoted" if n % 3 else "rejected"
            reason = "drift" if drift > 1.5 else "schedule"
            retrains.append({"version": str(n), "reason": reason, "status": status})
            versions.append(
                {
                    "version": str(n),
                    "reason": reason,
                    "status": status,
                    "tags": {
                        "reason": reason,
                        "gate_passed": str(status == "promoted").lower(),
                        "trigger_event_id": f"ev-{n}" if reason == "drift" else "",
                    },
                    "gate_report": f"# Gate report v{n}\n{status}",
                }
            )
            if status == "promoted":
                champion = str(n)
        if i == 10:
            retrains.append({"version": "", "reason": "performance", "status": "skipped"})
        weeks.append(
            {
                "week": wk,
                "start": f"week {wk}",
                "drift_score": drift,
                "accuracy": acc,
                "champion_version": champion,
                "retrains": retrains,
            }
        )
    return weeks, versions


@pytest.mark.e2e
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    src = os.environ.get("EVERGREEN_SCREENSHOT_REPORT")
    if src and Path(src).is_file():
        page_path = Path(src)
        expect_versions = None
    else:
        weeks, versions = synthetic_demo()
        page_path = tmp_path / "demo.html"
        page_path.write_text(report.build_report(weeks, versions, meta={"source": "synthetic rows"}))
        expect_versions = len(versions)
    shot = tmp_path / "demo_report.png"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS[1:])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            # offline: any request that is not the local file is a failure of "self-contained"
            external: list[str] = []
            page.on(
                "request",
                lambda r: external.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
            )
            page.goto(page_path.resolve().as_uri())
            page.wait_for_selector(f"#{report.PLOT_DIV_ID} .main-svg", timeout=30_000)
            traces = page.locator(f"#{report.PLOT_DIV_ID} .scatterlayer .trace").count()
            lines = page.locator(f"#{report.PLOT_DIV_ID} .scatterlayer .trace path.js-line").count()
            markers = page.locator(f"#{report.PLOT_DIV_ID} .scatterlayer .trace .points path.point").count()
            legend = page.locator(f"#{report.PLOT_DIV_ID} .legend .legendtext").all_text_contents()
            sections = page.locator("section.version").count()
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()

    assert external == []
    assert traces >= 3, f"expected accuracy, drift and retrain traces; got {traces}"
    assert lines >= 2
    assert markers >= 3
    assert any(t.startswith("retrain: ") for t in legend), legend
    if expect_versions is not None:
        assert sections == expect_versions
        assert {"retrain: promoted", "retrain: rejected", "retrain: skipped"} <= set(legend), legend
    assert shot.stat().st_size > 10_000
    out = os.environ.get("EVERGREEN_SCREENSHOT_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out)
