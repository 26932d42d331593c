"""scripts/gpu-check works end to end: its --smoke mode on whatever device is here."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu-check"


def test_gpu_check_smoke_writes_every_figure(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert result["smoke"] is True
    steps = result["steps"]
    assert list(steps) == ["gpu-tests", "bench", "ff-paper", "ff-batched-suite", "bpff-paper", "bp-paper"]
    assert all(step["returncode"] == 0 and step["seconds"] > 0 for step in steps.values())
    for model in ("ff", "bpff", "bp"):
        run = result["runs"][model]
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["process_seconds"] > 0
    assert result["batched_suite"]["seeds"] == 2 and result["batched_suite"]["seeds_per_hour_ratio"] > 0
    assert result["bench"]["trainers"]["ff"]["seconds_per_epoch"] > 0
    # ffterm ran from the source tree through the script's own package layout, not an installed copy
    assert result["ffterm_from"].endswith("layout/ffterm")
    log = (tmp_path / "out" / "logs" / "gpu-tests.log").read_text()
    assert "skipped" in log or "passed" in log
