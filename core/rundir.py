"""The run directory: config.yaml, snapshots.jsonl, checkpoint.pt, final.json.

Files are written atomically (temporary name, then rename) so a kill never leaves a torn file;
snapshots.jsonl is append-only, one complete line per snapshot.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .snapshot import Snapshot

CONFIG = "config.yaml"
SNAPSHOTS = "snapshots.jsonl"
CHECKPOINT = "checkpoint.pt"
FINAL = "final.json"


class RunDirError(ValueError):
    """A run directory that cannot be used as asked; one line naming the path and the fix."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def new_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{name}-{stamp}-{n}"
    return path


def append_snapshot(run_dir: Path, snapshot: Snapshot) -> None:
    with open(run_dir / SNAPSHOTS, "a", encoding="utf-8") as fh:
        fh.write(snapshot.to_json() + "\n")
        fh.flush()


def read_snapshots(run_dir: Path) -> list[Snapshot]:
    """Every complete snapshot line of a run (a torn last line is skipped)."""
    path = Path(run_dir) / SNAPSHOTS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(Snapshot.from_json(line))
        except (json.JSONDecodeError, TypeError):
            continue
    return out


def truncate_snapshots(run_dir: Path, epoch: int) -> None:
    """Keep only snapshots up to `epoch` (used on resume, so the file matches the checkpoint)."""
    keep = [s for s in read_snapshots(run_dir) if s.epoch <= epoch and s.kind == "live"]
    atomic_write_text(Path(run_dir) / SNAPSHOTS, "".join(s.to_json() + "\n" for s in keep))


def follow_snapshots(run_dir: Path, stop: threading.Event, poll_s: float = 0.5) -> Iterator[Snapshot]:
    """Yield snapshots of a run as they are appended (as `tail -f`), until `stop` is set.

    Yields the existing ones first. Survives the file being rewritten (resume truncation).
    """
    path = Path(run_dir) / SNAPSHOTS
    offset = 0
    buffer = ""
    while not stop.is_set():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:  # rewritten: start over
            offset, buffer = 0, ""
        if size > offset:
            with open(path, encoding="utf-8") as fh:
                fh.seek(offset)
                buffer += fh.read()
                offset = fh.tell()
            *lines, buffer = buffer.split("\n")
            for line in lines:
                if line.strip():
                    try:
                        yield Snapshot.from_json(line)
                    except (json.JSONDecodeError, TypeError):
                        continue
            continue
        stop.wait(poll_s)


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / FINAL).exists()


def check_reusable(run_dir: Path, force: bool) -> None:
    """Refuse (unless forced) a directory that holds a run's results: a finished run or a checkpoint."""
    if force:
        return
    if is_finished(run_dir):
        raise RunDirError(f"{run_dir}: holds a finished run; choose another --out or pass --force to overwrite it")
    if (Path(run_dir) / CHECKPOINT).exists():
        raise RunDirError(
            f"{run_dir}: holds an unfinished run; continue it with `ffterm resume {run_dir}` or pass --force"
        )
