"""The demo report with two models side by side: the second model gets its own section and plot."""

from __future__ import annotations

import evergreen.report as report
from tests.unit.test_report import synthetic_rows


def test_second_model_has_its_own_timeline_summary_and_versions() -> None:
    weeks, versions = synthetic_rows()
    bike_weeks = [
        {**{k: v for k, v in w.items() if k != "accuracy"}, "metric": 50.0 + i, "metric_name": "rmse"}
        for i, w in enumerate(weeks)
    ]
    other = {"model": "bike_sharing", "weeks": bike_weeks, "versions": versions[:1], "x_title": "week"}
    page = report.build_report(weeks, versions, others=[other])
    assert page.count("Plotly.newPlot") == 2 and page.count('<script type="text/javascript">/**') <= 1
    assert f'id="{report.PLOT_DIV_ID}"' in page and f'id="{report.PLOT_DIV_ID}-bike_sharing"' in page
    assert 'data-model="bike_sharing"' in page and "Weekly summary: bike_sharing" in page
    # version anchors stay unique across models
    assert 'id="version-bike_sharing-1"' in page and f'id="version-{versions[0]["version"]}"' in page
    assert "rmse (prequential)" in page  # the regression model plots its metric, not accuracy


def test_without_others_the_page_has_one_model() -> None:
    weeks, versions = synthetic_rows()
    page = report.build_report(weeks, versions)
    assert "data-model=" not in page and page.count("Plotly.newPlot") == 1
