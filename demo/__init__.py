"""The guided demo (`evergreen demo`, `make demo`): replay Elec2 (and, side by side, the bike sharing
regression model: ``DemoOptions.side_model``) week by week through the real scheduler on a local stack,
then write a report. Orchestration and I/O only; the report page is built by the pure
`evergreen.report`.

What runs where (see docs/demo.md):

- The demo owns ``<EVERGREEN_HOME>/demo/`` and wipes it at the start of every run (stopping a stack a
  previous ``--keep`` run left there, by the PIDs it recorded). That directory is the stack's home:
  Prefect DB, MLflow DB and artifacts, the git+DVC data registry, logs, batch files, and a demo copy of
  the model specs (``models/``) whose only change is ``triggers.cooldown``, set to
  ``DemoOptions.cooldown`` (``1s``): the shipped spec's wall-clock cooldown (``27D`` for elec2) would
  skip every retrain after the first of a replay that runs weeks in minutes.
  ``EVERGREEN_MODELS_DIR`` points the worker (and so every flow run) at that copy.
- Every flow runs through the deployments rendered into prefect.yaml: ingest is started by the demo
  (in this process by default, or ``create_flow_run`` on ``ingest/elec2``); monitor is started by the
  ``data.ingested`` automation; drift/performance/volume retrains by their automations. Scheduled
  retrains are explicit ``retrain/elec2`` runs with ``reason=schedule`` every ``schedule_every`` replay
  weeks (the cron schedule runs on wall-clock time, which a replay outruns).
- Prequential accuracy: before a week is ingested, the current champion (``models:/elec2@champion``)
  scores it; those labels are used for training only afterwards.

Modules: ``options`` (what to run, results), ``environment`` (the demo home, spec copy, environment),
``data`` (replayed weeks), ``prefect_rest`` (the Prefect REST calls, over HTTP), ``registry`` (champion
and versions), ``settle`` (when a week's chain has finished), ``replay`` (the warm-ups and weeks, every model's
chain side by side), ``run`` (the run), ``timing`` (where the time goes: each flow run's phases),
``report``.
"""

from demo.options import DemoError, DemoOptions, DemoPaths, DemoResult
from demo.run import run_demo

__all__ = ["DemoError", "DemoOptions", "DemoPaths", "DemoResult", "run_demo"]
