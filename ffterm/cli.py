"""The `ffterm` command line. The terminal app is imported only when it is launched, so headless
commands (run --headless, bench, analyze…) work where textual is not installed."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Any

from ffterm_core.config import ConfigError, parse_override
from ffterm_core.formatting import printable

from .errors import UsageError

COMMANDS = (
    "run",
    "resume",
    "presets",
    "watch",
    "serve",
    "bench",
    "analyze",
    "probe",
    "compare",
    "suite",
    "summary",
    "report",
    "prune",
    "runs",
    "attach",
)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = dict(parse_override(item) for item in (args.set or []))
    for key in ("seed", "device", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    return out


def whole_number(text: str) -> int:
    """An argument that counts (seeds): an integer, also written as 1e6 (a plan's size is checked later)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


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
    p.add_argument(
        "--detach", action="store_true", help="train in the background (outlives the terminal); see `ffterm runs`"
    )

    p = sub.add_parser(
        "suite", help="run a study suite (or a preset over seeds) headless; summary beside the study's tables"
    )
    p.add_argument(
        "target", metavar="NAME|PRESET", help="a suite (see `ffterm presets`), a suite YAML file, or a preset"
    )
    _add_run_options(p)
    p.add_argument("--seeds", type=whole_number, help="seeds per setting (default: the suite's; 10 for a preset)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="the suite folder (default: runs/NAME-suite)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once on this machine, spread over its GPUs")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", help="with --backend ray: the cluster's head, HOST:PORT or ray://HOST:PORT")
    p.add_argument("--cpus-per-run", type=int, help="with --backend ray: CPUs per run instead of one GPU")
    p.add_argument(
        "--batched", action="store_true", help="train each setting's seeds together as one batched model (fast on GPUs)"
    )

    p = sub.add_parser("summary", help="a suite folder's tables beside the study's, or mean ± std over run directories")
    p.add_argument("run_dirs", type=Path, nargs="+")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="figures, report.html, report.md and curves.csv of a run or a suite")
    p.add_argument("path", type=Path, help="a run directory or a suite directory")
    p.add_argument("--out", type=Path, help="where to write (default: PATH/reports/<date-time>/)")

    p = sub.add_parser("resume", help="continue a stopped run from its checkpoint (headless)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--previous", action="store_true", help="from the checkpoint kept before the last one")
    p.add_argument("--detach", action="store_true", help="train in the background (outlives the terminal)")

    sub.add_parser("runs", help="list the runs training now, and where")

    p = sub.add_parser("attach", help="open the app on a run training in the background, with full control")
    p.add_argument("run_dir", type=Path)

    sub.add_parser("presets", help="list the presets")

    p = sub.add_parser("watch", help="open the app on a run started elsewhere (follows snapshots.jsonl)")
    p.add_argument("run_dirs", type=Path, nargs="+")

    p = sub.add_parser("serve", help="offer the app in a browser (needs the `serve` extra)")
    p.add_argument("run_dir", type=Path, nargs="?")
    p.add_argument("--host", default="localhost", help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-token", action="store_true", help="no access token (only with --host 127.0.0.1)")
    p.add_argument("--max-visitors", type=int, default=3, help="concurrent browser sessions (default %(default)s)")
    p.add_argument(
        "--allow-runs", action="store_true", help="let visitors start runs and open run directories (default: watch)"
    )
    p.add_argument("--public-url", help="the URL browsers use (needed with --host 0.0.0.0 or behind a proxy)")

    p = sub.add_parser("bench", help="measure training and evaluation speed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed epochs of each configuration, in turn with the typical form; the best counts",
    )
    p.add_argument("--quick", action="store_true", help="subsets of the data: about a minute on a 2-core CPU")
    p.add_argument("--seeds", type=int, help="seeds in the batched figure (default 10 on CUDA, 3 on a CPU)")
    p.add_argument(
        "--compile",
        dest="compile_step",
        action="store_true",
        help="also: each step through torch.compile against eager (compiling takes minutes on a CPU)",
    )
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
    p.add_argument(
        "--ensemble-factor",
        type=float,
        help="ensemble rule: class mean > F × leave-one-out mean (default: the run's, 2; 3 is the notebook's)",
    )
    p.add_argument(
        "--microstructure", action="store_true", help="also cluster each class's activation patterns per layer"
    )

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
    _add_prune_parser(sub)
    return parser


def _add_prune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove units of trained runs; accuracy vs fraction kept → prune.json/csv/png")
    p.add_argument("run_dir", type=Path, nargs="+", help="one run, or several (seeds) to pool: mean ± std over runs")
    p.add_argument(
        "--layers",
        default="all,global,each",
        help="targets: 'all' (every layer to the same fraction), 'global' (one fraction of all units, ranked across "
        "layers), 'each' (every layer on its own) and/or 1-based layers (default %(default)s)",
    )
    p.add_argument(
        "--strategies",
        help="comma-separated (default: ensemble-balanced,largest-margin,magnitude,activity,random,random-ensemble)",
    )
    p.add_argument("--keep", help="comma-separated fractions of units kept, in (0, 1] (default: 0.01 … 1)")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS", help="retrain the kept units per point")
    p.add_argument("--draws", type=int, default=3, help="random strategies: seeded draws (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, help="test images to measure on (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", type=Path, help="several runs: where the pooled result goes (default: ../prune-pooled)")


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
    if args.command == "run" and not (args.headless or args.detach):
        return _guard(lambda: _launch_app(args.preset, _overrides(args), out=args.out, force=args.force))
    if args.command == "watch":
        return _guard(lambda: _launch_app(None, None, watch=args.run_dirs))
    if args.command == "attach":
        return _guard(lambda: _launch_app(None, None, attach=args.run_dir))
    from . import commands  # headless commands: no textual import

    handler = getattr(commands, f"cmd_{args.command}")
    return _guard(lambda: handler(args, _overrides(args) if args.command in ("run", "suite") else None))


def _launch_app(preset: str | None, overrides: dict[str, Any] | None, **kwargs: Any) -> int:
    from .commands import attach_instead_of_watch, check_app_inputs

    check_app_inputs(preset, overrides, kwargs.get("watch"), kwargs.get("out"), kwargs.get("force", False))
    kwargs = {**kwargs, **attach_instead_of_watch(kwargs)}
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
    from ffterm_core.beyond.offline import OfflineError
    from ffterm_core.data.datasets import DatasetError
    from ffterm_core.device import DeviceError
    from ffterm_core.store.checkpoint import CheckpointError
    from ffterm_core.store.rundir import RunDirError
    from ffterm_core.store.validation import UnreadableFile
    from ffterm_core.suites.spec import SuiteError

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
        UnreadableFile,
    ) as exc:
        print(f"ffterm: error: {printable(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command reads or writes: permissions, a full disk, a read-only mount
        print(f"ffterm: error: {printable(describe_os_error(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


_OS_ERROR_FIXES = {
    errno.EACCES: "check its permissions, or run as its owner",
    errno.EPERM: "check its permissions, or run as its owner",
    errno.EROFS: "choose a place on a writable file system",
    errno.ENOSPC: "free some space and run the command again",
    errno.EDQUOT: "free some space and run the command again",
}


def describe_os_error(exc: OSError) -> str:
    """An OSError as one line: the file, what went wrong, and the fix when there is a known one."""
    where = f"{exc.filename}: " if exc.filename else ""
    fix = _OS_ERROR_FIXES.get(exc.errno or 0)
    return f"{where}{exc.strerror or exc}" + (f"; {fix}" if fix else "")


if __name__ == "__main__":
    sys.exit(main())
