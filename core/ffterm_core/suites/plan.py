"""The suite folder's plan, `suite.json`: every run's folder, setting, seed and tables, and the suite's id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ffterm_core.suites.spec import SuiteError

PLAN = "suite.json"


def read_plan(suite_dir: Path) -> dict[str, Any] | None:
    path = Path(suite_dir) / PLAN
    if not path.exists():
        return None
    try:
        plan = json.loads(path.read_text())
    except ValueError:
        raise SuiteError(f"{path}: unreadable suite plan; remove it to start the suite folder afresh") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("runs"), list):
        raise SuiteError(f"{path}: not an ffterm suite plan; remove it or choose another --out")
    return plan


def read_suite_id(suite_dir: Path) -> str | None:
    try:
        plan = read_plan(suite_dir)
    except SuiteError:
        return None
    return None if plan is None else plan.get("id")
