"""`ffterm serve [RUN_DIR]`: the same app in a browser, through textual-serve (optional extra).

Each visitor gets their own app process running `python -m ffterm.app`; with a RUN_DIR every
visitor watches that run (follows its snapshots.jsonl), so a training started headless on a GPU box
can be watched from a browser without SSH. Without one, each visitor gets the preset picker.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


class ServeUnavailable(ImportError):
    """textual-serve is not installed, or the run directory cannot be served; one line."""


def serve_command(run_dir: Path | None = None, run_root: Path = Path("runs")) -> str:
    """The shell command textual-serve runs for each visitor."""
    parts = [sys.executable, "-m", "ffterm.app", "--run-root", str(Path(run_root).resolve())]
    if run_dir is not None:
        parts += ["--watch", str(Path(run_dir).resolve())]
    return " ".join(shlex.quote(p) for p in parts)


def serve(
    run_dir: Path | None = None,
    host: str = "localhost",
    port: int = 8000,
    *,
    run_root: Path = Path("runs"),
    public_url: str | None = None,
) -> None:
    """Serve the app over HTTP until interrupted (blocks)."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ServeUnavailable(
            "ffterm serve needs textual-serve; install it with: pip install 'ffterm[serve]'"
        ) from None
    if run_dir is not None and not (Path(run_dir) / "snapshots.jsonl").exists() and not Path(run_dir).is_dir():
        raise ServeUnavailable(f"{run_dir}: not a run directory (no snapshots.jsonl); pass a directory under runs/")
    title = f"ffterm · {Path(run_dir).name}" if run_dir is not None else "ffterm"
    server = Server(serve_command(run_dir, run_root), host=host, port=port, title=title, public_url=public_url)
    server.serve()
