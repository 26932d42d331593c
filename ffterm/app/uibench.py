"""`ffterm bench --ui`: what the open app costs training, and how fast it answers keys.

Trains the same short run twice in one process, headless and with the app open (Textual's
headless driver at 120×40), and compares the samples/s the runs record. During the app run it
sends layer/class/view keys and times each from the key event until the screen update that shows
it has been composed (the first display after the status header, which is redrawn last). Pilot.press is not used: it waits for the process to be idle,
which never happens while training runs.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ffterm_core.config import RunConfig
from ffterm_core.store.rundir import read_snapshots
from ffterm_core.training.session import Session

KEYS = [
    ("right_square_bracket", "]"),
    ("full_stop", "."),
    ("left_square_bracket", "["),
    ("comma", ","),
    ("tab", "\t"),
    ("shift+tab", None),
]


def _stage_speeds(run_dir: Path) -> dict[int, float]:
    """Median samples/s of each training stage (layer), from the run's snapshots."""
    by_stage: dict[int, list[float]] = {}
    for snap in read_snapshots(run_dir):
        if snap.kind == "live" and snap.samples_per_s:
            by_stage.setdefault(snap.stage, []).append(snap.samples_per_s)
    return {stage: statistics.median(v) for stage, v in by_stage.items()}


def _headless(cfg: RunConfig, run_dir: Path) -> dict[int, float]:
    session = Session(cfg, run_dir)
    session.start()
    session.join()
    return _stage_speeds(run_dir)


async def _with_app(cfg: RunConfig, run_dir: Path) -> tuple[dict[int, float], list[float]]:
    from textual import events

    from .header import StatusHeader
    from .main import FFTermApp

    redrawn = [0.0]
    original_show = StatusHeader.show

    def timed_show(self: StatusHeader, *args: Any, **kwargs: Any) -> Any:
        result = original_show(self, *args, **kwargs)
        redrawn[0] = time.perf_counter()
        return result

    StatusHeader.show = timed_show  # type: ignore[method-assign]
    app = FFTermApp(session_factory=lambda c, d: Session(c, run_dir), open_picker=False)
    displayed = [0.0]
    original_display = app._display

    def timed_display(*args: Any) -> None:
        original_display(*args)
        displayed[0] = time.perf_counter()

    app._display = timed_display  # type: ignore[method-assign,assignment]
    latencies: list[float] = []
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            app.runs.start(cfg)
            while app.runs.primary is None or app.runs.primary.history.count < 2:
                await pilot.pause(0.1)
            session = app.runs.primary.session
            driver = app._driver
            assert driver is not None  # run_test's headless driver
            # keys during layer 1 only
            while session.alive and (latest := app.runs.primary.history.latest) is not None and latest.stage == 0:
                for key, char in KEYS:
                    start = time.perf_counter()
                    driver.send_message(events.Key(key, char))
                    while not start < redrawn[0] < displayed[0] and time.perf_counter() - start < 5:
                        await asyncio.sleep(0.001)
                    latencies.append(displayed[0] - start)
                    await asyncio.sleep(0.5)
            while session.alive:  # the other layers: watched, no keys
                await asyncio.sleep(0.2)
    finally:
        StatusHeader.show = original_show  # type: ignore[method-assign]
    return _stage_speeds(run_dir), latencies


def run_ui_bench(cfg: RunConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Samples/s per layer headless vs with the app open (keys pressed twice a second during layer
    1, only watched after), and the key-to-redraw latency."""
    with tempfile.TemporaryDirectory() as tmp:
        headless = _headless(cfg, Path(tmp) / "headless")
        with_app, lat = asyncio.run(_with_app(cfg, Path(tmp) / "app"))
    lat_ms = sorted(1000 * x for x in lat)
    ratios = {stage: with_app[stage] / headless[stage] for stage in headless if stage in with_app}
    result: dict[str, Any] = {
        "headless_samples_per_s": headless,
        "app_samples_per_s": with_app,
        "app_over_headless": ratios,
        "key_latency_ms": {
            "median": statistics.median(lat_ms),
            "p95": lat_ms[int(0.95 * (len(lat_ms) - 1))],
            "max": lat_ms[-1],
            "presses": len(lat_ms),
        },
    }
    for stage, ratio in ratios.items():
        doing = "keys twice a second" if stage == 0 else "watching"
        log(
            f"layer {stage + 1} ({doing}): headless {headless[stage]:,.0f} samples/s, "
            f"app open {with_app[stage]:,.0f} samples/s ({ratio:.3f} of headless)"
        )
    k = result["key_latency_ms"]
    log(
        f"key presses while training ({k['presses']}): median {k['median']:.0f} ms, "
        f"95th percentile {k['p95']:.0f} ms, max {k['max']:.0f} ms"
    )
    return result
