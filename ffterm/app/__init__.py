"""The ffterm terminal app (Textual).

Import-light on purpose: textual, the views and the engine load only when `run_app` or `serve`
is called, so `ffterm --help` and headless runs stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_app"]


def run_app(
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    watch: Path | Sequence[Path] | None = None,
    run_root: Path = Path("runs"),
    out: Path | None = None,
    force: bool = False,
    read_only: bool = False,
    attach: Path | None = None,
) -> int:
    """Open the dashboard and block until it is quit; return the exit code.

    preset: start this preset at once (`overrides` apply to it); None opens the preset picker with
    the default highlighted. watch: a run directory (or several, to compare) started elsewhere,
    followed as its snapshots.jsonl grows. run_root: where new runs are created. out: the run
    directory of the preset started at once (default: a fresh one under run_root); force: let it
    overwrite a run already there. read_only: watch only (what `ffterm serve` gives visitors by
    default). attach: a run training in its own process, taken control of.
    Runs started here train in their own process and go on after the app ends (it says where); an
    in-process training thread is stopped and joined before this returns.
    """
    from .main import FFTermApp

    app = FFTermApp(
        preset=preset,
        overrides=overrides,
        watch=watch,
        run_root=run_root,
        out=out,
        force=force,
        read_only=read_only,
        attach=attach,
    )
    try:
        result = app.run()
    finally:
        app.shutdown(timeout=120)
        for feed in app.runs.feeds:  # say where interrupted runs are, once the screen is back
            if getattr(feed.session, "detached", False) and feed.session.alive:
                print(f"ffterm: {feed.name} goes on training in {feed.run_dir}; `ffterm attach {feed.run_dir}`")
            elif feed.session is not None and feed.session.state == "stopped":
                print(f"ffterm: {feed.name} stopped with a checkpoint; continue with `ffterm resume {feed.run_dir}`")
    return int(result or 0) if app.return_code in (None, 0) else int(app.return_code)
