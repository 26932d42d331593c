"""The `ffterm` command line. The terminal app is imported only when it is launched, so headless
commands (run --headless, bench, analyze…) work where textual is not installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ffterm.core.config import ConfigError, parse_override

COMMANDS = ("run", "resume", "presets", "watch", "serve", "bench", "analyze", "probe", "compare", "suite", "summary")


class UsageError(Exception):
    """A command-line problem; printed as one line, exit status 2."""


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = dict(parse_override(item) for item in (args.set or []))
    for key in ("seed", "device", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. --set epochs=5")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--data-dir", dest="data_dir", help="where datasets are looked for (default $FFTERM_DATA or a user cache dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ffterm", description="Watch Forward-Forward networks learn.")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("run", help="start a preset (in the app, or --headless with a progress bar)")
    p.add_argument("preset", help="a preset name (see `ffterm presets`) or a YAML file")
    _add_run_options(p)
    p.add_argument("--out", type=Path, help="the run directory (default: a new folder under runs/)")
    p.add_argument("--force", action="store_true", help="overwrite a run directory that holds a run")
    p.add_argument("--headless", action="store_true", help="no app: console progress only")

    p = sub.add_parser("suite", help="run a preset over several seeds (headless) and summarise as mean ± std")
    p.add_argument("preset")
    _add_run_options(p)
    p.add_argument("--seeds", type=int, default=10, help="how many seeds (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="the suite directory (default: runs/PRESET-suite)")
    p.add_argument(
        "--batched", action="store_true", help="train the seeds together as one batched model (fast on GPUs)"
    )

    p = sub.add_parser("summary", help="mean ± std over finished runs (a suite directory or run directories)")
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("resume", help="continue a stopped run from its checkpoint (headless)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])

    sub.add_parser("presets", help="list the presets")

    p = sub.add_parser("watch", help="open the app on a run started elsewhere (follows snapshots.jsonl)")
    p.add_argument("run_dirs", type=Path, nargs="+")

    p = sub.add_parser("serve", help="offer the app in a browser (needs the `serve` extra)")
    p.add_argument("run_dir", type=Path, nargs="?")
    p.add_argument("--host", default="localhost")
    p.add_argument("--port", type=int, default=8000)

    p = sub.add_parser("bench", help="measure training and evaluation speed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="subsets of the data: about a minute on a 2-core CPU")
    p.add_argument("--seeds", type=int, help="seeds in the batched figure (default 10 on CUDA, 3 on a CPU)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument(
        "--ui",
        action="store_true",
        help="also: training speed with the app open vs headless, and key latency (needs textual)",
    )
    p.add_argument(
        "--preset",
        default="quick-ff-fashionmnist",
        help="with --ui: the run to train (default: %(default)s, 2 epochs per layer)",
    )

    p = sub.add_parser("analyze", help="recompute the full analysis of a run from its checkpoint")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--samples", type=int, help="test images to analyse (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--no-pvalues", action="store_true")

    p = sub.add_parser("probe", help="linear probes on a run's layer representations")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--layer", type=int, help="1-based layer (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("compare", help="representation similarity (CKA, SVCCA, dCor) of two runs")
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        # `ffterm` or `ffterm PRESET [options]`: the app
        app_parser = argparse.ArgumentParser(prog="ffterm")
        app_parser.add_argument("preset", nargs="?")
        _add_run_options(app_parser)
        args = app_parser.parse_args(argv)
        return _guard(lambda: _launch_app(args.preset, _overrides(args)))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "run" and not args.headless:
        return _guard(lambda: _launch_app(args.preset, _overrides(args), out=args.out, force=args.force))
    if args.command == "watch":
        return _guard(lambda: _launch_app(None, None, watch=args.run_dirs))
    from . import commands  # headless commands: no textual import

    handler = getattr(commands, f"cmd_{args.command}")
    return _guard(lambda: handler(args, _overrides(args) if args.command in ("run", "suite") else None))


def _launch_app(preset: str | None, overrides: dict[str, Any] | None, **kwargs: Any) -> int:
    from .commands import check_app_inputs

    check_app_inputs(preset, overrides, kwargs.get("watch"), kwargs.get("out"), kwargs.get("force", False))
    try:
        from .app import run_app
    except ImportError as exc:
        raise UsageError(
            f"the terminal app needs textual and textual-plotext ({exc}); "
            "install ffterm with its dependencies, or use `ffterm run PRESET --headless`"
        ) from None
    return run_app(preset=preset, overrides=overrides, **kwargs) or 0


def _guard(fn) -> int:
    """Run a command; known problems become one line on stderr and a non-zero exit."""
    from ffterm.core.checkpoint import CheckpointError
    from ffterm.core.datasets import DatasetError
    from ffterm.core.device import DeviceError
    from ffterm.core.offline import OfflineError
    from ffterm.core.rundir import RunDirError
    from ffterm.core.suite import SuiteError

    try:
        return fn() or 0
    except (
        ConfigError,
        UsageError,
        CheckpointError,
        DatasetError,
        DeviceError,
        RunDirError,
        OfflineError,
        SuiteError,
    ) as exc:
        print(f"ffterm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
