"""Reports as files or pages, built from results (pure: data in, HTML/PNG out).

- `demo`: the guided demo's self-contained HTML page (was evergreen.report).
- `backtest`: the policy backtest's interactive HTML and static PNG plots.
"""
