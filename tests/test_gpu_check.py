"""scripts/gpu-check works end to end: its --smoke mode on whatever device is here, in a Python that has
neither textual nor platformdirs (as on the bare GPU machine)."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "gpu-check"
# ffterm: it must run from the tree; pytest_textual_snapshot: a pytest plugin that imports textual
LEFT_OUT = ("textual", "platformdirs", "ffterm", "__editable__", "pytest_textual_snapshot")


def bare_python(tmp_path: Path) -> Path:
    """A venv without pip whose packages are this one's minus textual, platformdirs and any installed ffterm.

    Its one .pth names a folder of links to the kept entries of this interpreter's site-packages (a
    .pth of the whole folder would bring the left-out ones back)."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    kept = tmp_path / "kept-site"
    kept.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not entry.name.lower().startswith(LEFT_OUT) and entry.suffix != ".pth":
            (kept / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "kept.pth").write_text(f"{kept}\n")
    return python


@pytest.mark.slow
def test_gpu_check_smoke_in_a_bare_python_writes_every_figure(tmp_path):
    python = bare_python(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for module in ("textual", "platformdirs", "ffterm_core"):
        probe = subprocess.run([python, "-c", f"import {module}"], env=env, capture_output=True)
        assert probe.returncode != 0, f"{module} is importable in the bare Python"
    out = tmp_path / "out"
    env["OUT"] = str(out)
    proc = subprocess.run([python, str(SCRIPT), "--smoke"], env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # only the small files come to OUT: runs, checkpoints and full logs stay in the scratch folder
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "gpu-check.json", "gpu-check.log"]
    assert sum(p.stat().st_size for p in out.iterdir()) < 2**20
    result = json.loads((out / "gpu-check.json").read_text())
    assert result["smoke"] is True
    steps = result["steps"]
    assert list(steps) == [
        "gpu-tests",
        "bench",
        "ff-paper",
        "width-rates",
        "ff-batched-suite",
        "bpff-paper",
        "bp-paper",
    ]
    assert all(step["returncode"] == 0 and 0 < step["seconds"] <= step["budget_s"] for step in steps.values())
    for model in ("ff", "bpff", "bp"):
        run = result["runs"][model]
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["process_seconds"] > 0
    assert result["batched_suite"]["seeds"] == 2 and result["batched_suite"]["seeds_per_hour_ratio"] > 0
    assert result["bench"]["trainers"]["ff"]["seconds_per_epoch"] > 0
    # the projection carries the 784-wide rates to 3072 wide by the measured ratio of each model
    projection = result["targets"]["projection"]
    assert set(projection["width_ratio_3072_over_784"]) == {"ff", "bpff", "bp"}
    assert all(hours > 0 for hours in projection["gpu_hours_by_width"].values())
    assert projection["paper_suite_projected_gpu_hours"] == pytest.approx(
        sum(projection["gpu_hours_by_width"].values())
    )
    assert result["ffterm_from"] == str(ROOT / "ffterm")  # the source tree, not an installed copy
    log = (out / "gpu-check.log").read_text()
    assert "==> gpu-tests: ok" in log and ("skipped" in log or "passed" in log)
