"""Regenerate screenshots/*.svg from the real app, fed a run directory.

    python -m ffterm.app.screenshots RUN_DIR [OUT_DIR] [--sizes 80x24,200x60]
                                     [--compare OTHER_RUN_DIR ...] [--layer N] [--class C]

Writes dashboard-<view>-<W>x<H>.svg for every view and size, plus the preset picker and help at
the smallest size. Works on any run directory (its snapshots.jsonl is read once, not followed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from ffterm_core.store.rundir import read_snapshots


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


async def _shoot(
    run_dirs: list[Path], out: Path, size: tuple[int, int], layer: int, cls: int, extras: bool
) -> list[Path]:
    from .main import FFTermApp
    from .views import VIEWS

    runs = {}
    for d in run_dirs:
        snaps = read_snapshots(d)
        if not snaps:
            raise SystemExit(f"{d}: no snapshots.jsonl lines; is this a run directory?")
        runs[d.name] = snaps
    written = []
    app = FFTermApp(snapshots=runs, open_picker=False, run_root=run_dirs[0].parent)
    w, h = size
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        dash = app.dashboard
        dash.options = replace(dash.options, layer=min(layer, dash.n_layers() - 1), cls=cls)
        for spec in VIEWS:
            dash.action_show_view(spec.name)
            await pilot.pause()
            dash.redraw(True)
            await pilot.pause()
            written.append(Path(app.save_screenshot(f"dashboard-{spec.name}-{w}x{h}.svg", str(out))))
        if extras:
            app.action_help()
            await pilot.pause(0.2)
            written.append(Path(app.save_screenshot(f"help-{w}x{h}.svg", str(out))))
            app.pop_screen()
            await pilot.pause()
            try:
                app.action_new_run()
                await pilot.pause(0.3)
                written.append(Path(app.save_screenshot(f"preset-picker-{w}x{h}.svg", str(out))))
            except Exception:
                pass
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffterm.app.screenshots", description=__doc__.splitlines()[1])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="more run dirs for the Compare view")
    parser.add_argument("out_dir", type=Path, nargs="?", default=None, help="where to write (default screenshots/)")
    parser.add_argument("--out", type=Path, default=None, help="same as OUT_DIR")
    parser.add_argument("--sizes", default="80x24,200x60")
    parser.add_argument("--layer", type=int, default=1, help="layer shown (1-based)")
    parser.add_argument("--class", dest="cls", type=int, default=0, help="class shown")
    args = parser.parse_args(argv)
    args.out = args.out or args.out_dir or Path("screenshots")
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    written: list[Path] = []
    for i, size in enumerate(sizes):
        written += asyncio.run(_shoot([args.run_dir, *args.compare], args.out, size, args.layer - 1, args.cls, i == 0))
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
