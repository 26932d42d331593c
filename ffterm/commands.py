"""Headless commands: run, resume, runs, presets, analyze, probe, compare, prune, report, bench, serve. No textual here."""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ffterm_core.device import resolve_device
from ffterm_core.formatting import fmt, printable
from ffterm_core.store import rundir
from ffterm_core.store.lock import RunDirBusy, live_runs, read_holder
from ffterm_core.store.presets import list_presets, load_preset
from ffterm_core.training.session import Session

from .errors import UsageError
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
    from ffterm_core.suites.plan import PLAN as suite_plan

    if preset is not None:
        resolve_device(load_preset(preset, overrides).device)  # e.g. cuda asked for on a machine without it
    if out is not None:
        check_free(out)
        rundir.check_target(out, force)
    for path in watch or []:
        if (Path(path) / suite_plan).is_file():  # a suite folder: the app opens its Suite view
            continue
        if not (Path(path) / rundir.CONFIG).exists():
            raise rundir.RunDirError(
                f"{path}: not an ffterm run directory (no {rundir.CONFIG}) nor a suite folder (no {suite_plan}); "
                "start one with `ffterm run PRESET --headless` or `ffterm suite NAME`"
            )
        rundir.read_config(path)  # a config.yaml that is a folder, not UTF-8, not readable: one line now


def check_free(run_dir: Path) -> None:
    """RunDirBusy naming the process that trains `run_dir` now, if one does."""
    holder = read_holder(run_dir)
    if holder is not None:
        raise RunDirBusy(
            f"{run_dir}: in use by pid {holder.get('pid', '?')} ({holder.get('command', '?')}); "
            f"wait for it to end, or `ffterm attach {run_dir}`"
        )


def attach_instead_of_watch(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`watch` on one run training in the background attaches to it (full control); `attach`
    on a run that is not training in the background is one line."""
    from ffterm_core.running.control import ControlError

    target = kwargs.get("attach")
    if target is not None:
        holder = read_holder(target)
        if holder is None or not holder.get("control"):
            busy = f" by {holder.get('command', '?')}, which takes no commands" if holder else " in the background"
            raise ControlError(f"{target}: not training{busy}; `ffterm watch {target}` follows its files")
        return {}
    watch = kwargs.get("watch") or []
    if len(watch) == 1 and (read_holder(watch[0]) or {}).get("control"):
        return {"watch": None, "attach": watch[0]}
    return {}


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{name} must be at least 1 (got {value})")


def _drive(session: Session) -> int:
    """Run a session to its end with a console progress bar; Ctrl-C stops it with a checkpoint."""
    progress = ConsoleProgress(session.config, console)
    session.subscribe(progress.update)
    session.subscribe_notices(lambda line: print(f"ffterm: note: {line}", file=sys.stderr))
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
        print(f"ffterm: run failed: {printable(session.error)}", file=sys.stderr)
        return 1
    if session.state == "stopped":
        console.print(f"stopped; continue with [bold]ffterm resume {session.run_dir}[/]")
        return 130
    final: Mapping[str, Any] = session.final or {}
    if session.state != "finished" or not final:
        print(f"ffterm: run ended without a result ({session.state}); see {session.run_dir}", file=sys.stderr)
        return 1
    console.print(
        f"finished after {fmt(final.get('wall_seconds'), 1)} s of training: test accuracy "
        f"[bold]{fmt(final.get('test_accuracy'), 4)}[/]; run directory {session.run_dir}"
    )
    return 0


def cmd_run(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    cfg = load_preset(args.preset, overrides)
    if args.detach:
        from ffterm_core.running.detached import start_detached

        resolve_device(cfg.device)
        return _detached(start_detached(cfg, args.out or rundir.new_run_dir(cfg.name), force=args.force))
    return _drive(Session(cfg, args.out, force=args.force))


def cmd_resume(args: argparse.Namespace, _: Any = None) -> int:
    if args.detach:
        from ffterm_core.running.detached import start_detached

        remote = start_detached(None, args.run_dir, resume=True, previous=args.previous, device=args.device)
        return _detached(remote)
    return _drive(Session.resume_from(args.run_dir, device=args.device, previous=args.previous))


def _detached(remote: Any) -> int:
    console.print(
        f"training in the background (pid {remote.pid}) in {remote.run_dir}; log {remote.run_dir / rundir.TRAIN_LOG}\n"
        f"`ffterm attach {remote.run_dir}` controls it, `ffterm runs` lists what is training"
    )
    return 0


def cmd_runs(args: argparse.Namespace, _: Any = None) -> int:
    """One line per run training now: where, which process, for how long, and how to reach it."""
    runs = live_runs()
    if not runs:
        print("nothing is training now")
    for info in runs:
        minutes = _minutes_since(info.get("started"))
        run_dir, pid, host, command = (printable(info.get(k)) for k in ("run_dir", "pid", "host", "command"))
        how = f"ffterm attach {run_dir}" if info.get("control") else "watch only"
        print(f"{run_dir}  pid {pid} on {host}, {minutes} min, {command}; {how}")
    return 0


def _minutes_since(started: Any) -> str:
    """Whole minutes since a lock record's `started` (a file: "?" unless it is a real time)."""
    import time

    if isinstance(started, bool) or not isinstance(started, (int, float)) or not math.isfinite(started):
        return "?"
    return f"{(time.time() - started) / 60:.0f}"


def cmd_suite(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from ffterm_core.reports.suite_summary import write_summary
    from ffterm_core.reports.suite_tables import to_markdown
    from ffterm_core.suites import spec as suite_spec
    from ffterm_core.suites.runner import run_suite

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
        states = run_suite(spec, suite_dir, executor, batched=args.batched, log=log)
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
    from ffterm_core.suites import runner as suite

    if args.backend == "ray":
        from ffterm_core.suites.ray_backend import RayExecutor

        return RayExecutor(args.address, args.cpus_per_run)
    resolve_device(spec.runs[0].config.device)  # e.g. --device cuda on a machine without: one line, now
    if args.batched:
        if args.jobs > 1:
            raise UsageError("--batched trains a setting's seeds in this process; leave out --jobs")
        return suite.BatchedExecutor(log=_plain_log)
    if args.jobs > 1:
        return suite.ProcessPoolExecutor(args.jobs)
    return suite.InProcessExecutor(watch=_progress_of)


def _progress_of(session: Session) -> ConsoleProgress:
    """A progress bar following one run of a suite (entered and left around its training)."""
    progress = ConsoleProgress(session.config, console)
    session.subscribe(progress.update)
    return progress


def cmd_summary(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm_core.suites import pooling
    from ffterm_core.suites.plan import PLAN

    if len(args.run_dirs) == 1 and (args.run_dirs[0] / PLAN).exists():
        from ffterm_core.reports.suite_summary import write_summary
        from ffterm_core.reports.suite_tables import to_json, to_markdown

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
    from ffterm_core.suites.spec import list_suites

    suites = Table(box=None, show_header=True, header_style="bold")
    suites.add_column("suite (ffterm suite NAME)")
    suites.add_column("description")
    for name, description in list_suites():
        suites.add_row(name, description)
    console.print(suites)
    return 0


def cmd_bench(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm_core.bench.benchmark import run_bench

    if args.repeats < 1 or (args.seeds is not None and args.seeds < 1):
        raise UsageError("--repeats and --seeds must be at least 1")
    results = run_bench(
        device=args.device,
        dataset=args.dataset,
        data_dir=args.data_dir,
        repeats=args.repeats,
        quick=args.quick,
        seeds=args.seeds,
        log=console.print,
        compile_step=args.compile_step,
    )
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
        results["ui"] = run_ui_bench(cfg, log=console.print)
        ratios = list(results["ui"]["app_over_headless"].values())
        results["app_throughput_ratio"] = sum(ratios) / len(ratios) if ratios else None
    if args.json:
        rundir.write_json(args.json, results)
    return 0


def cmd_analyze(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm_core.beyond.offline import analyze_run

    _positive("--samples", args.samples)
    result = analyze_run(
        args.run_dir,
        samples=args.samples,
        device=args.device,
        pvalues=not args.no_pvalues,
        ensemble_factor=args.ensemble_factor,
        microstructure=args.microstructure,
    )
    factor = result["layers"][0]["ensemble_factor"] if result["layers"] else None
    table = Table(
        title=f"analysis of {args.run_dir} ({result['eval_samples']} test images, ensemble factor {fmt(factor, 2)})"
    )
    for col in ("layer", "sparsity", "ignored rows", "ensemble size %", "units p>0.05", "ρ⁺ mean", "bias mean"):
        table.add_column(col, justify="right")
    for i, layer in enumerate(result["layers"], 1):
        table.add_row(
            str(i),
            fmt(layer["sparsity"]),
            str(layer["sparsity_ignored_rows"]),
            fmt(layer["ensemble_size_pct"], 2),
            fmt(layer["n_units_p_gt_0_05"]),
            fmt(layer["rho_plus"]["mean"] if layer["rho_plus"] else None),
            fmt(layer["bias"]["mean"] if layer["bias"] else None),
        )
    console.print(table)
    if args.microstructure:
        for i, layer in enumerate(result["layers"], 1):
            counts = " ".join(str(len(entry["patterns"])) for entry in layer["microstructure"])
            console.print(f"layer {i}: activation patterns per class (0–9): {counts}")
    console.print(f"test accuracy {result['test_accuracy']:.4f}; written to {args.run_dir / rundir.ANALYSIS}")
    return 0


def cmd_probe(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm_core.beyond.offline import probe_run

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
    from ffterm_core.beyond.offline import compare_runs

    _positive("--samples", args.samples)
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
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be in 1..65535 (got {args.port})")
    _positive("--max-visitors", args.max_visitors)
    if args.run_dir is not None:
        check_app_inputs(None, None, [args.run_dir])
    try:
        from .app.serve import check_port_free, is_loopback, serve
    except ImportError:
        raise UsageError("`ffterm serve` needs textual-serve; install it with `pip install 'ffterm[serve]'`") from None
    if args.no_token and not is_loopback(args.host):
        raise UsageError("--no-token is allowed only with --host 127.0.0.1 (anyone who can reach the port gets in)")
    try:
        check_port_free(args.host, args.port)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {args.host} port {args.port}: "
            + ("it is in use; choose another with --port" if exc.errno == errno.EADDRINUSE else str(exc.strerror))
        ) from None
    if not is_loopback(args.host):
        print(
            f"ffterm: warning: serving on {args.host}, reachable from other machines: anyone with the token "
            "can watch" + (" and start runs" if args.allow_runs else "") + "; use --host 127.0.0.1 to keep it local",
            file=sys.stderr,
        )
    serve(
        args.run_dir,
        host=args.host,
        port=args.port,
        token=None if args.no_token else "",
        max_visitors=args.max_visitors,
        allow_runs=args.allow_runs,
        public_url=args.public_url,
    )
    return 0


def cmd_report(args: argparse.Namespace, _: Any = None) -> int:
    from ffterm_core.reports.suite_report import report_path

    paths = report_path(args.path, args.out, on_bad=lambda line: print(f"ffterm: {line}", file=sys.stderr))
    out = paths[0].parent
    figures = sorted((out / "figures").glob("*.png"))
    console.print(f"report of {args.path}: {', '.join(p.name for p in paths)} and {len(figures)} figures in {out}")
    return 0


def cmd_prune(args: argparse.Namespace, _: Any = None) -> int:
    import time

    from ffterm_core.beyond import prune, prune_pool
    from ffterm_core.reports.run_report_beyond import prune_rows

    _positive("--draws", args.draws)
    _positive("--samples", args.samples)
    if args.seed < 0 or args.finetune < 0:
        raise UsageError(f"--seed and --finetune must be at least 0 (got {args.seed} and {args.finetune})")
    strategies, notes = prune.current_names(prune.parse_names(args.strategies) if args.strategies else prune.STRATEGIES)
    for note in notes:
        print(f"ffterm: note: {note}", file=sys.stderr)
    spec = prune.PruneSpec(
        targets=prune.parse_targets(args.layers),
        strategies=strategies,
        keep=prune.parse_fractions(args.keep) if args.keep else prune.DEFAULT_KEEP,
        finetune=args.finetune,
        draws=args.draws,
        seed=args.seed,
        samples=args.samples,
    )
    run_dirs: list[Path] = list(args.run_dir)
    prune_pool.check_runs(run_dirs, spec)
    started = time.monotonic()
    results = []
    for run_dir in run_dirs:
        results.append(_prune_one(run_dir, spec, args.device))
        console.print("written: " + ", ".join(str(p) for p in prune.write_outputs(run_dir, results[-1])))
    if len(results) == 1:
        result, title = results[0], f"pruning {run_dirs[0]}"
    else:
        result = prune_pool.pool(results)
        out = args.out or run_dirs[0].parent / "prune-pooled"
        out.mkdir(parents=True, exist_ok=True)
        console.print("pooled: " + ", ".join(str(p) for p in prune.write_outputs(out, result)))
        title = f"pruning {len(results)} runs pooled (mean ± std over runs)"
    seconds = time.monotonic() - started
    table = Table(title=f"{title}: unpruned accuracy {result['baseline']:.4f}, measured in {seconds:.0f} s")
    for col in ("strategy", "target", "readout", "1% kept", "10% kept", "smallest kept within 1 point"):
        table.add_column(col, justify="right")
    for row in prune_rows(result, [0.01, 0.1]):
        table.add_row(*row)
    console.print(table)
    return 0


def _prune_one(run_dir: Path, spec: Any, device: str | None) -> dict[str, Any]:
    """One run's sweep with a progress bar (a line per finished point when not on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ffterm_core.beyond import prune

    bar = Progress(
        TextColumn(f"[bold]{run_dir.name}" + " {task.fields[strategy]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    task = bar.add_task("prune", total=None, strategy="loading")

    def on_progress(p: prune.PruneProgress) -> None:
        bar.update(task, completed=p.done, total=p.total, strategy=p.strategy)
        if p.entry is not None and not console.is_terminal:
            e = p.entry
            own = f" (the layer's own readout {e['own_accuracy']:.4f})" if e.get("own_accuracy") is not None else ""
            console.print(f"{p.strategy} {e['layer']} keep {e['keep']:g}: {e['accuracy']:.4f}{own}")

    with bar:
        result: dict[str, Any] = prune.prune_run(run_dir, spec, device=device, progress=on_progress)
    return result
