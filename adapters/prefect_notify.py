"""Notification blocks and automations on the Prefect server, through Prefect's own client and blocks.

- `save_webhook_block`: a ``CustomWebhookNotificationBlock`` (block type ``custom-webhook``) that POSTs
  ``{"subject", "body", "block"}`` as JSON to a URL; ``evergreen notify setup`` creates it.
- `apply_notifications`: the automations `deployments.notify` renders from the specs, created or
  updated by name, and the ``evergreen-notify`` ones no spec asks for any more deleted. Running it
  twice changes nothing the second time (the same names, the same content).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from deployments.notify import TAG, notification_automations, notification_blocks, with_block_ids
from evergreen.spec import ModelSpec

WEBHOOK_SLUG = "custom-webhook"
DEFAULT_BLOCK = "evergreen"
# What the webhook block posts: Prefect substitutes {{subject}}, {{body}} and {{name}} (the block's name)
WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}", "block": "{{name}}"}
SETUP_HINT = "create it with `evergreen notify setup --url URL --name NAME` or `prefect block create`"


class NotifyError(ValueError):
    """A notification block is missing, ambiguous, or not a notification block."""


def save_webhook_block(url: str, name: str = DEFAULT_BLOCK) -> str:
    """Create (or overwrite) the webhook block `name` posting JSON to `url`; its reference `custom-webhook/name`."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from pydantic import ValidationError

    if not url.startswith(("http://", "https://")):
        raise NotifyError(f"--url must be an http(s) URL, got {url!r}")
    block = CustomWebhookNotificationBlock(
        name=name, url=url, method="POST", json_data=WEBHOOK_JSON, headers=None, cookies=None
    )
    try:
        block.save(name, overwrite=True)
    except ValidationError as exc:
        raise NotifyError(
            f"--name {name!r} is not a valid block name (lowercase letters, digits and dashes)"
        ) from exc
    return f"{WEBHOOK_SLUG}/{name}"


def _capabilities(doc: Any) -> list[str]:
    schema = getattr(doc, "block_schema", None)
    return list(getattr(schema, "capabilities", None) or [])


def resolve_block(client: Any, ref: str, models: Sequence[str]) -> UUID:
    """The block document id of `ref` (`<type-slug>/<name>`, or a name no other notification block has)."""
    from prefect.exceptions import ObjectNotFound

    where = f"notifications.block {ref!r} (models: {', '.join(models)})"
    if "/" in ref:
        slug, name = ref.split("/", 1)
        try:
            doc = client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise NotifyError(f"{where} does not exist: {SETUP_HINT}") from None
        docs = [doc]
    else:
        docs = [
            d
            for d in client.read_block_documents(include_secrets=False)
            if d.name == ref and "notify" in _capabilities(d)
        ]
        if not docs:
            raise NotifyError(f"{where}: no notification block has this name: {SETUP_HINT}")
        if len(docs) > 1:
            kinds = sorted(f"{d.block_type.slug}/{ref}" for d in docs if d.block_type)
            raise NotifyError(f"{where} is ambiguous: write one of {', '.join(kinds)}")
    if "notify" not in _capabilities(docs[0]):
        raise NotifyError(f"{where} is not a notification block (it cannot `notify`)")
    return UUID(str(docs[0].id))


def apply_notifications(specs: Sequence[ModelSpec], *, prune: bool = True) -> dict[str, list[str]]:
    """Make the server's notification automations match the specs; {created, updated, deleted: [names]}."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    rendered = notification_automations(specs)
    out: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
    with get_client(sync_client=True) as client:
        ids = {ref: resolve_block(client, ref, models) for ref, models in notification_blocks(specs).items()}
        existing: dict[str, list[Any]] = {}
        for auto in client.read_automations():
            if TAG in (auto.tags or []):
                existing.setdefault(auto.name, []).append(auto)
        for doc in with_block_ids(rendered, {k: str(v) for k, v in ids.items()}):
            core = AutomationCore.model_validate(doc)
            found = existing.pop(doc["name"], [])
            if found:
                client.update_automation(found[0].id, core)
                out["updated"].append(doc["name"])
                for dupe in found[1:]:  # two applies raced: keep one
                    client.delete_automation(dupe.id)
            else:
                client.create_automation(core)
                out["created"].append(doc["name"])
        if prune:
            for name, autos in sorted(existing.items()):
                for auto in autos:
                    client.delete_automation(auto.id)
                out["deleted"].append(name)
    return out
