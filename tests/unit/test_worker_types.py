"""The worker-type name is spelled where Prefect cannot be imported (stack/, settings); keep the copies equal."""

from __future__ import annotations

import typing

from evergreen.settings import Settings
from stack.config import StackConfig
from stack.prefect_worker import WORKER_TYPE, WORKER_TYPES


def test_the_registered_worker_type_is_the_stacks_default() -> None:
    from prefect.utilities.dispatch import lookup_type
    from prefect.workers.base import BaseWorker

    from workers.prefork import PreforkProcessWorker

    assert PreforkProcessWorker.type == WORKER_TYPE
    assert lookup_type(BaseWorker, WORKER_TYPE) is PreforkProcessWorker
    assert StackConfig(home=".").worker_type == WORKER_TYPE  # type: ignore[arg-type]


def test_evergreen_worker_type_accepts_exactly_the_known_types() -> None:
    field = Settings.model_fields["worker_type"]
    assert typing.get_args(field.annotation) == WORKER_TYPES
    assert field.default == WORKER_TYPE
