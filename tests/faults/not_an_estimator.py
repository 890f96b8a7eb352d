"""A function where a spec's class_path expects an estimator class (issue 9 case 10): calling it leaves
a marker file, so a test can prove Evergreen refused it without calling it."""

from __future__ import annotations

import os
from pathlib import Path


def leave_marker(*args: object, **kwargs: object) -> str:
    Path(os.environ.get("EVERGREEN_TEST_MARKER", "/tmp/evergreen-class-path-called")).write_text("called")
    return "called"
