"""The engine's import contract: no module of ffterm_core loads textual or the app (`make lint` checks the
same statically with import-linter; this checks what really loads).

Checked in a fresh interpreter (this test process has the app loaded already). An engine module that
fails to import fails the test too.
"""

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
import ffterm_core

names = ["ffterm_core"] + [m.name for m in pkgutil.walk_packages(ffterm_core.__path__, "ffterm_core.")]
for name in names:
    importlib.import_module(name)
loaded = [m for m in sys.modules if m.split(".")[0] in ("textual", "textual_plotext", "ffterm")]
print(json.dumps({"imported": names, "forbidden": sorted(loaded)}))
"""


def _probe() -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"importing the engine failed:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_engine_modules_never_load_textual_or_the_app():
    result = _probe()
    # the walk reached the engine's modules and its subpackage, not just the package itself
    assert {"ffterm_core.training.session", "ffterm_core.records", "ffterm_core.analysis.layer"} <= set(
        result["imported"]
    )
    assert result["forbidden"] == []
