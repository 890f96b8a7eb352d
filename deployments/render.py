"""Render prefect.yaml from the model specs: per model a retrain, a monitor and an ingest deployment.

Pure: text in, text out, no Prefect import. `evergreen deployments render` writes the result to
prefect.yaml, and a unit test fails when the committed file differs from it. Adding a model means
adding models/<name>.yaml and re-rendering.

Per model (`<name>` below):

- ``retrain/<name>``: the spec's ``schedule:`` as a cron (``reason=schedule``), and one automation per
  enabled trigger in ``triggers:`` (drift, performance, volume, estimated). Each matches only events on the
  model's resource ``evergreen.model.<name>``, deduplicates per resource (``for_each``) within
  `RETRAIN_WITHIN` seconds, and passes the event id on as ``trigger_event_id``.
- Retrain priorities (1 = most urgent ... 5): each trigger and the schedule carry a ``priority`` in the
  spec. A run lands in the work queue ``retrain-p<priority>`` of the pool, whose Prefect priority
  orders what the worker picks up first. Prefect starts an automation's or a schedule's run on the
  deployment's own work queue, so there is one retrain deployment per priority the spec uses:
  ``retrain/<name>`` for the most urgent one (ad hoc runs go there too) and ``retrain/<name>-p<N>``
  for each other, e.g. ``retrain/elec2-p5`` for the weekly cron. Runs of all of them share the
  model's retrain lock (``evergreen-retrain-<name>``), so they still never train the same model at once.
- ``monitor/<name>``: ``monitor.schedule`` as a cron, and a run after every ``data.ingested``.
- ``ingest/<name>``: run ad hoc with a batch file path.
- ``rollback/<name>``, only when ``promotion.watch_batches`` > 0: the automation
  ``<name>-rollback-on-regression`` runs it on ``evergreen.champion.regressed`` (the monitor's watch
  after a promotion, docs/release.md) with the payload's versions: ``to_version`` = the previous
  champion, ``from_version`` = the regressed one (a compare-and-swap), the event id and the reason.

The deployment names (``retrain/elec2`` ...) are the public interface: the CLI, the demo and the docs
run deployments by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml

from deployments.notify import notification_comment
from evergreen.events import ESTIMATE_LABEL, VOLUME_LABEL, Event, resource_id
from evergreen.spec import ModelSpec, Schedule, SpecError, load_spec

PROJECT_NAME = "evergreen"
PREFECT_VERSION = "3.8.8"
WORK_POOL = "evergreen-pool"
# Reactive triggers fire on the first event, then ignore the rest of this window (per model resource)
RETRAIN_WITHIN = 600
# every ingest gets its own monitor run
MONITOR_WITHIN = 0
ENTRYPOINTS = {
    "retrain": "flows/retrain.py:retrain",
    "monitor": "flows/monitor.py:monitor",
    "ingest": "flows/ingest.py:ingest",
    "rollback": "flows/rollback.py:rollback",
}
PRIORITIES = (1, 2, 3, 4, 5)  # 1 = most urgent
RETRAIN_REASONS = ("drift", "performance", "volume", "estimated")
# Event templates Prefect fills in when an automation starts a run
EVENT_MODEL = "{{ event.resource.name }}"
EVENT_ID = "{{ event.id | string }}"
EVENT_DATA_REV = "{{ event.payload.data_rev | default('') }}"
# champion.regressed always carries these keys (tasks/watch.py)
EVENT_PREVIOUS = "{{ event.payload.previous_version }}"
EVENT_VERSION = "{{ event.payload.version }}"
EVENT_REASON = "{{ event.payload.reason }}"

HEADER = """\
# Evergreen deployments, rendered from models/*.yaml by `evergreen deployments render` (make deployments).
# Do not edit by hand: change the model's spec and re-render; a test fails when this file is stale.
# Each model gets a retrain deployment per retrain priority it uses (retrain/<name> for the most urgent,
# retrain/<name>-p<N> for the others; queue retrain-p<N>), a monitor and an ingest deployment.
# Adding a model means adding models/<name>.yaml.
# Deploy with:  prefect --no-prompt deploy --all   (evergreen up does this for you)
# Note: `prefect deploy` recreates automations, which resets their `within` state; the retrain
# flow's own registry-backed cooldown is the layer that survives a redeploy.
name: {project}
prefect-version: {version}

# No `pull:` section on purpose: `prefect deploy`, run from the repo root, records that directory as the
# deployment's pull step (set_working_directory), so any process worker on this machine can run the flows.
# (`{{{{ $EVERGREEN_PROJECT_DIR }}}}` here would be resolved at RUN time, in the worker's environment, and a
# worker started without that variable would chdir to "" and fail every run.)

definitions:
  work_pool: &pool
    name: {pool}
    job_variables: {{}}

deployments:
"""

_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./ ()-]*")
_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./ (),-]*")  # commas end a value in flow style


def _scalar(value: object, *, block: bool = False) -> str:
    """A YAML scalar: plain when it reads back as the same string, else double-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if (
        (_PLAIN_BLOCK if block else _PLAIN).fullmatch(text)
        and not text.endswith(" ")
        and yaml.safe_load(text) == text
    ):
        return text
    return json.dumps(text)


def _flow(value: dict[str, object] | list[object]) -> str:
    """A one-line flow mapping or sequence of scalars."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_scalar(v) for v in value) + "]"


def _schedule(schedule: Schedule, slug: str, parameters: dict[str, object]) -> list[str]:
    return [
        "    schedules:",
        f"      - cron: {json.dumps(schedule.cron)}",
        f"        timezone: {_scalar(schedule.timezone)}",
        f"        slug: {slug}",
        f"        parameters: {_flow(parameters)}",
    ]


def _trigger(
    name: str,
    match: dict[str, object],
    expect: Event,
    parameters: Mapping[str, object],
    *,
    within: int,
    for_each: bool,
    comment: str = "",
) -> list[str]:
    lines = [
        f"      - name: {name}",
        "        type: event",
        "        enabled: true",
        *([f"        # {comment}"] if comment else []),
        f"        match: {_flow(match)}",
        f"        expect: {_flow([expect.value])}",
        *(["        for_each: [prefect.resource.id]"] if for_each else []),
        "        posture: Reactive",
        "        threshold: 1",
        f"        within: {within}",
        "        parameters:",
    ]
    return lines + [f"          {k}: {_scalar(v)}" for k, v in parameters.items()]


def _retrain_trigger(spec: ModelSpec, reason: str, expect: Event, comment: str = "") -> list[str]:
    match: dict[str, object] = {"prefect.resource.id": resource_id(spec.name)}
    if reason == "volume":
        match[VOLUME_LABEL] = "true"
    if reason == "estimated":
        match[ESTIMATE_LABEL] = "true"
    params = {"model": EVENT_MODEL, "reason": reason, "trigger_event_id": EVENT_ID}
    name = f"{spec.name}-retrain-on-{reason}"
    return _trigger(name, match, expect, params, within=RETRAIN_WITHIN, for_each=True, comment=comment)


def _retrain_triggers(spec: ModelSpec, priority: int) -> list[list[str]]:
    """One automation per enabled trigger of the spec at `priority`: drift, performance, volume, estimated."""
    mine = {r for r, p in retrain_priorities(spec).items() if p == priority}
    out = []
    if "drift" in mine:
        out.append(_retrain_trigger(spec, "drift", Event.DRIFT_DETECTED))
    if "performance" in mine:
        out.append(_retrain_trigger(spec, "performance", Event.PERFORMANCE_DEGRADED))
    if "volume" in mine:
        note = (
            "ingest sets this label when new rows since the champion's data >= triggers.volume.min_new_share"
        )
        out.append(_retrain_trigger(spec, "volume", Event.DATA_INGESTED, note))
    if "estimated" in mine:
        note = "the monitor sets this label when triggers.estimated fired (CBPE estimate significantly low)"
        out.append(_retrain_trigger(spec, "estimated", Event.PERFORMANCE_ESTIMATED, note))
    return out


def retrain_queue(priority: int) -> str:
    """The work queue of retrain runs at `priority` (1 = most urgent)."""
    return f"retrain-p{priority}"


def work_queues() -> list[tuple[str, int]]:
    """(queue, Prefect priority) for the pool, most urgent first, as `evergreen up` creates them.

    ``default`` (monitor and ingest runs: short, and what produces the drift events) comes first, then
    ``retrain-p1`` .. ``retrain-p5``. A worker polling the pool takes runs of a lower Prefect priority
    number first, whenever the pool's or a queue's concurrency limit leaves fewer slots than runs.
    """
    return [("default", 1), *[(retrain_queue(p), p + 1) for p in PRIORITIES]]


def retrain_priorities(spec: ModelSpec) -> dict[str, int]:
    """{reason: priority} for every way the spec starts a retrain: the schedule and enabled triggers."""
    out = {"schedule": spec.schedule.priority} if spec.schedule else {}
    for reason in RETRAIN_REASONS:
        trigger = getattr(spec.triggers, reason)
        if trigger.enabled:
            out[reason] = trigger.priority
    return out


def retrain_deployments(spec: ModelSpec) -> dict[int, str]:
    """{priority: deployment name}, most urgent first; the most urgent is `<name>` (ad hoc runs too)."""
    levels = sorted(set(retrain_priorities(spec).values())) or [PRIORITIES[0]]
    return {p: spec.name if i == 0 else f"{spec.name}-p{p}" for i, p in enumerate(levels)}


def _head(
    spec: ModelSpec,
    kind: str,
    description: str,
    *,
    name: str | None = None,
    queue: str | None = None,
    work_pool: str = WORK_POOL,
) -> list[str]:
    # prefect.yaml names a deployment's queue inside `work_pool:` (a top-level work_queue_name is ignored)
    pool = (
        f"{{name: {_scalar(work_pool)}, work_queue_name: {queue}, job_variables: {{}}}}" if queue else "*pool"
    )
    lines = [
        f"  - name: {name or spec.name}",
        f"    description: {_scalar(description, block=True)}",
        f"    entrypoint: {ENTRYPOINTS[kind]}",
        f"    work_pool: {pool}",
        f"    parameters: {_flow({'model': spec.name})}",
    ]
    if kind != "ingest":  # runs of one model's retrain (or monitor) queue behind each other
        lines.append("    concurrency_limit: {limit: 1, collision_strategy: ENQUEUE}")
    return lines


def _retrain_description(spec: ModelSpec, priority: int, main: bool) -> str:
    mine = [r for r, p in retrain_priorities(spec).items() if p == priority]
    reasons = [r for r in RETRAIN_REASONS if r in mine]
    ways = (["on schedule"] if "schedule" in mine else []) + (
        [f"on {'/'.join(reasons)} events"] if reasons else []
    )
    if main:
        ways.append("or ad hoc" if ways else "ad hoc")
    return f"Retrain {spec.name} {', '.join(ways)} (priority {priority}, queue {retrain_queue(priority)})."


def retrain_block(spec: ModelSpec, priority: int | None = None, *, work_pool: str = WORK_POOL) -> list[str]:
    """The retrain deployment at `priority` (default: the most urgent, `retrain/<name>`): its cron and
    automations, on the work queue of that priority."""
    names = retrain_deployments(spec)
    priority = next(iter(names)) if priority is None else priority
    main = priority == next(iter(names))
    desc = _retrain_description(spec, priority, main)
    lines = _head(
        spec, "retrain", desc, name=names[priority], queue=retrain_queue(priority), work_pool=work_pool
    )
    if spec.schedule and spec.schedule.priority == priority:
        lines += _schedule(spec.schedule, f"{spec.name}-retrain", {"model": spec.name, "reason": "schedule"})
    triggers = _retrain_triggers(spec, priority)
    if triggers:
        lines.append("    triggers:")
        lines += [line for trigger in triggers for line in trigger]
    return lines


def retrain_blocks(spec: ModelSpec, *, work_pool: str = WORK_POOL) -> list[list[str]]:
    """One retrain deployment per priority the spec uses, most urgent (`retrain/<name>`) first."""
    return [retrain_block(spec, p, work_pool=work_pool) for p in retrain_deployments(spec)]


def monitor_block(spec: ModelSpec) -> list[str]:
    """The monitor deployment: `monitor.schedule` as a cron, and one run per ingested batch."""
    desc = f"Measure drift and performance of the {spec.name} champion on newly ingested data."
    lines = _head(spec, "monitor", desc)
    if spec.monitor.schedule:
        lines += _schedule(spec.monitor.schedule, f"{spec.name}-monitor", {"model": spec.name})
    params = {"model": EVENT_MODEL, "data_rev": EVENT_DATA_REV}
    match: dict[str, object] = {"prefect.resource.id": resource_id(spec.name)}
    on_ingest = _trigger(
        f"{spec.name}-monitor-on-ingest",
        match,
        Event.DATA_INGESTED,
        params,
        within=MONITOR_WITHIN,
        for_each=False,
    )
    return [*lines, "    triggers:", *on_ingest]


def ingest_block(spec: ModelSpec) -> list[str]:
    """The ingest deployment: run with a batch file path (`--param path=...`)."""
    desc = "Validate a batch file with GX and append it to the DVC data registry (or quarantine it)."
    return _head(spec, "ingest", desc)


def rollback_block(spec: ModelSpec) -> list[str]:
    """The rollback deployment and its automation on `champion.regressed` (only with a watch)."""
    desc = (
        f"Restore the previous {spec.name} champion when the watch after a promotion finds the new one "
        "significantly worse (or roll back ad hoc)."
    )
    params = {
        "model": EVENT_MODEL,
        "to_version": EVENT_PREVIOUS,
        "from_version": EVENT_VERSION,
        "reason": EVENT_REASON,
        "trigger_event_id": EVENT_ID,
    }
    match: dict[str, object] = {"prefect.resource.id": resource_id(spec.name)}
    on_regression = _trigger(
        f"{spec.name}-rollback-on-regression",
        match,
        Event.CHAMPION_REGRESSED,
        params,
        within=RETRAIN_WITHIN,
        for_each=True,
        comment="the monitor's watch (promotion.watch_batches): the new champion is significantly worse",
    )
    return [*_head(spec, "rollback", desc), "    triggers:", *on_regression]


def _watched(spec: ModelSpec) -> bool:
    return spec.promotion.watch_batches > 0


def render_prefect_yaml(specs: Sequence[ModelSpec], *, work_pool: str = WORK_POOL) -> str:
    """The prefect.yaml text for `specs`, in the order given (three deployments per model)."""
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"two specs share the model name {dupes}")
    blocks = [
        b
        for spec in specs
        for b in (
            *retrain_blocks(spec, work_pool=work_pool),
            monitor_block(spec),
            ingest_block(spec),
            *([rollback_block(spec)] if _watched(spec) else []),
        )
    ]
    body = "\n\n".join("\n".join(block) for block in blocks)
    head = HEADER.format(project=PROJECT_NAME, version=PREFECT_VERSION, pool=work_pool)
    return head + body + "\n" + notification_comment(specs)  # notifications: standalone automations


def spec_files(models_dir: Path) -> list[Path]:
    """models_dir/*.yaml, sorted by name."""
    return sorted(models_dir.glob("*.yaml"))


def load_specs(models_dir: Path) -> list[ModelSpec]:
    """Every spec in `models_dir` (sorted by file name; each name must match its file)."""
    files = spec_files(models_dir)
    if not files:
        raise SpecError(f"no model specs (*.yaml) in {models_dir}")
    return [load_spec(f.stem, models_dir) for f in files]


def render_models_dir(models_dir: Path, *, work_pool: str = WORK_POOL) -> str:
    """The prefect.yaml text for every spec in `models_dir`."""
    return render_prefect_yaml(load_specs(models_dir), work_pool=work_pool)


def deployment_names(specs: Iterable[ModelSpec]) -> list[str]:
    """The `<flow>/<deployment>` names the rendered file defines, e.g. retrain/elec2, retrain/elec2-p5."""
    return [
        name
        for s in specs
        for name in (
            *(f"retrain/{d}" for d in retrain_deployments(s).values()),
            f"monitor/{s.name}",
            f"ingest/{s.name}",
            *([f"rollback/{s.name}"] if _watched(s) else []),
        )
    ]
