"""Headless commands: run, resume, presets, analyze, probe, compare, bench, serve. No textual here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ffterm.core import rundir
from ffterm.core.device import resolve_device
from ffterm.core.formatting import fmt
from ffterm.core.presets import list_presets, load_preset
from ffterm.core.session import Session

from .cli import UsageError
from .progress import ConsoleProgress

console = Console()


def check_app_inputs(
    preset: str | None,
    overrides: dict[str, Any] | None,
    watch: list[Path] | None,
    out: Path | None = None,
    force: bool = False,
) -> None:
    """Fail fast, before the app takes the screen, on a bad preset, override or run directory."""
    if preset is not None:
        resolve_device(load_preset(preset, overrides).device)  # e.g. cuda asked for on a machine without it
    if out is not None:
        rundir.check_reusable(out, force)
    for path in watch or []:
        if not (Path(path) / rundir.CONFIG).exists():
            raise rundir.RunDirError(
                f"{path}: not an ffterm run directory (no {rundir.CONFIG}); start one with `ffterm run PRESET --headless`"
            )


def _drive(session: Session) -> int:
    """Run a session to its end with a console progress bar; Ctrl-C stops it with a checkpoint."""
    progress = ConsoleProgress(session.config, console)
    session.subscribe(progress.update)
    with progress:
        session.start()
        try:
            while session.alive:
                session.join(0.25)
        except KeyboardInterrupt:
            progress.note("stopping: saving a checkpoint…")
            session.stop()
            session.join()
    if session.state == "failed":
        print(f"ffterm: run failed: {session.error}", file=sys.stderr)
        return 1
    if session.state == "stopped":
        console.print(f"stopped; continue with [bold]ffterm resume {session.run_dir}[/]")
        return 130
    final = session.final or {}
    acc = final.get("test_accuracy")
    console.print(
        f"finished after {final.get('wall_seconds', 0):.1f} s of training: test accuracy "
        f"[bold]{acc:.4f}[/]; run directory {session.run_dir}"
    )
    return 0


def cmd_run(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    cfg = load_preset(args.preset, overrides)
    return _drive(Session(cfg, args.out, force=args.force))


def cmd_resume(args: argparse.Namespace, _: Any = None) -> int:
    return _drive(Session.resume_from(args.run_dir, device=args.device))


def cmd_suite(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from ffterm.core import suite_spec
    from ffterm.core.suite import run_suite
    from ffterm.core.summary import to_markdown, write_summary

    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.backend != "ray" and (args.address or args.cpus_per_run):
        raise UsageError("--address and --cpus-per-run are for --backend ray")
    if args.backend == "ray" and args.jobs > 1:
        raise UsageError("--jobs is for --backend local; Ray runs as many at once as the cluster has GPUs (or CPUs)")
    if args.cpus_per_run is not None and args.cpus_per_run < 1:
        raise UsageError("--cpus-per-run must be at least 1")
    overrides.pop("seed", None)  # the suite sets the seeds
    if suite_spec.is_suite(args.target):
        spec = suite_spec.load_suite(args.target, seeds=args.seeds, first_seed=args.first_seed, overrides=overrides)
    else:
        spec = suite_spec.preset_suite(
            args.target, seeds=args.seeds or 10, first_seed=args.first_seed, overrides=overrides
        )
    suite_dir = args.out or Path("runs") / f"{spec.name}-suite"
    executor = _suite_executor(args, spec)
    log = _plain_log
    log(f"suite {spec.name}: {len(spec.runs)} runs in {suite_dir}")
    try:
        states = run_suite(spec, suite_dir, executor, log=log)
    except KeyboardInterrupt:
        print(
            "suite stopped (unfinished runs keep their checkpoints); run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    summary = write_summary(suite_dir, log=log)
    print(to_markdown(summary))
    log(f"written to {suite_dir / 'summary.md'}, summary.csv and summary.json")
    failed = states.get("failed", 0)
    if failed:
        log(f"{failed} runs failed (the reason is in each run's failed.json and in the summary)")
    return 1 if failed else 0


def _plain_log(message: str) -> None:
    console.print(message, markup=False, highlight=False)


def _suite_executor(args: argparse.Namespace, spec: Any) -> Any:
    from ffterm.core import suite

    if args.backend == "ray":
        from ffterm.core.suite_ray import RayExecutor

        return RayExecutor(args.address, args.cpus_per_run)
    resolve_device(spec.runs[0].config.device)  # e.g. --device cuda on a machine without: one line, now
    if args.jobs > 1:
        return suite.ProcessPoolExecutor(args.jobs)
    return suite.InProcessExecutor(watch=_progress_of)


def _progress_of(session: Session) -> ConsoleProgress:
    """A progress bar following one run of a suite (entered and left around its training)."""
    progress = ConsoleProgress(session.config, console)
    session.subscribe(progress.update)
    return progress


def cmd_summary(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm.core import pooling
    from ffterm.core.suite import PLAN

    if len(args.run_dirs) == 1 and (args.run_dirs[0] / PLAN).exists():
        from ffterm.core.summary import to_json, to_markdown, write_summary

        summary = write_summary(args.run_dirs[0], log=lambda m: print(m, file=sys.stderr))  # stdout: the tables
        print(json.dumps(to_json(summary), indent=2) if args.json else to_markdown(summary))
        return 0
    summary = pooling.summarize(pooling.expand_run_dirs(args.run_dirs))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(pooling.to_markdown(summary))
    return 0


def cmd_presets(args: argparse.Namespace, _: Any = None) -> int:
    table = Table(box=None, show_header=True, header_style="bold")
    table.add_column("preset")
    table.add_column("description")
    for p in list_presets():
        table.add_row(p.name, p.description)
    console.print(table)
    from ffterm.core.suite_spec import list_suites

    suites = Table(box=None, show_header=True, header_style="bold")
    suites.add_column("suite (ffterm suite NAME)")
    suites.add_column("description")
    for name, description in list_suites():
        suites.add_row(name, description)
    console.print(suites)
    return 0


def cmd_bench(args: argparse.Namespace, _: Any = None) -> int:
    if args.ui:
        from .app.uibench import run_ui_bench

        cfg = load_preset(
            args.preset,
            {
                "epochs": 2,
                "eval_every": 1,
                "device": args.device,
                **({"data_dir": args.data_dir} if args.data_dir else {}),
            },
        )
        results = run_ui_bench(cfg, log=console.print)
    else:
        from ffterm.core.bench import run_bench

        results = run_bench(
            device=args.device, dataset=args.dataset, data_dir=args.data_dir, repeats=args.repeats, log=console.print
        )
    if args.json:
        rundir.write_json(args.json, results)
    return 0


def cmd_analyze(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm.core.offline import analyze_run

    result = analyze_run(args.run_dir, samples=args.samples, device=args.device, pvalues=not args.no_pvalues)
    table = Table(title=f"analysis of {args.run_dir} ({result['eval_samples']} test images)")
    for col in ("layer", "sparsity", "ignored rows", "ensemble size %", "units p>0.05", "ρ⁺ mean", "bias mean"):
        table.add_column(col, justify="right")
    for i, layer in enumerate(result["layers"], 1):
        table.add_row(
            str(i),
            fmt(layer["sparsity"]),
            str(layer["sparsity_ignored_rows"]),
            fmt(layer["ensemble_size_pct"], 2),
            fmt(layer["n_units_p_gt_0_05"]),
            fmt(layer["rho_plus"]["mean"]),
            fmt(layer["bias"]["mean"]),
        )
    console.print(table)
    console.print(f"test accuracy {result['test_accuracy']:.4f}; written to {args.run_dir / 'analysis.json'}")
    return 0


def cmd_probe(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm.core.offline import probe_run

    result = probe_run(args.run_dir, layer=args.layer, device=args.device, log=console.print)
    table = Table(title=f"linear probes of {args.run_dir}")
    table.add_column("layer", justify="right")
    table.add_column("test accuracy", justify="right")
    table.add_column("held-out class accuracy", justify="right")
    for row in result["layers"]:
        table.add_row(str(row["layer"]), fmt(row["accuracy"]), fmt(row.get("heldout_accuracy")))
    console.print(table)
    return 0


def cmd_compare(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm.core.offline import compare_runs

    result = compare_runs(args.run_a, args.run_b, samples=args.samples, device=args.device)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Table(title=f"{args.run_a.name} vs {args.run_b.name} ({result['samples']} test images)")
    for col in ("layer A", "layer B", "linear CKA", "SVCCA", "dCor"):
        table.add_column(col, justify="right")
    for row in result["pairs"]:
        table.add_row(str(row["layer_a"]), str(row["layer_b"]), fmt(row["cka"]), fmt(row["svcca"]), fmt(row["dcor"]))
    console.print(table)
    return 0


def cmd_serve(args: argparse.Namespace, _: Any = None) -> int:
    if args.run_dir is not None:
        check_app_inputs(None, None, [args.run_dir])
    try:
        from .app.serve import serve

        return serve(args.run_dir, host=args.host, port=args.port) or 0
    except ImportError:
        raise UsageError("`ffterm serve` needs textual-serve; install it with `pip install 'ffterm[serve]'`") from None
