"""`python -m ffterm.app [--watch RUN_DIR ...] [PRESET] [--set key=value ...]`: the app alone.

Used by `ffterm serve` (textual-serve runs this command per browser visitor), and handy for
development: `--demo` plays synthetic runs (no torch, no datasets) through the same app.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffterm.app", description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", help="preset to start at once (default: open the picker)")
    parser.add_argument(
        "--watch",
        action="append",
        type=Path,
        default=[],
        metavar="RUN_DIR",
        help="follow a run started elsewhere (repeat to compare runs)",
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset setting")
    parser.add_argument("--run-root", type=Path, default=Path("runs"), help="where new runs are created")
    parser.add_argument("--demo", action="store_true", help="play synthetic runs (no torch, no data)")
    parser.add_argument("--read-only", action="store_true", help="watch only: no runs started, stopped or opened")
    args = parser.parse_args(argv)
    from ffterm_core.config import ConfigError, parse_override

    try:
        overrides = dict(parse_override(s) for s in args.set)
    except ConfigError as exc:
        print(f"ffterm: {exc}", file=sys.stderr)
        return 2
    if args.demo:
        from .demo import DemoPresets, DemoSession
        from .main import FFTermApp

        app = FFTermApp(
            preset=args.preset,
            overrides=overrides,
            watch=args.watch or None,
            run_root=args.run_root,
            presets=DemoPresets(),
            session_factory=lambda cfg, d: DemoSession(cfg, d, interval=0.4),
            read_only=args.read_only,
        )
        try:
            app.run()
        finally:
            app.shutdown(timeout=10)
        return 0
    from . import run_app

    return run_app(args.preset, overrides, args.watch or None, args.run_root, read_only=args.read_only)


if __name__ == "__main__":
    sys.exit(main())
