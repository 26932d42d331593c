"""The run directory, and the one door to it: every file name, and how each file is read, validated
and written.

  config.yaml        the run's settings                        read_config
  snapshots.jsonl    one snapshot a line, appended             append_snapshot, read_snapshots, follow_snapshots
  checkpoint.pt      the trainer's state (and .prev.pt)        store.checkpoint (a checksummed format)
  final.json         the finished run                          read_final, read_final_if_any
  analysis.json      `ffterm analyze` (with microstructure)    write_analysis, read_analysis
  probes.json        `ffterm probe`                            write_probes, read_probes
  prune.json, .csv   `ffterm prune`                            write_prune, read_prune
  failed.json        a suite's run that failed: why            write_failure, read_failure
  train.log, error.log, .lock, control.sock, reports/<stamp>/  (logs, the lock, the control socket, reports)

Files are written atomically (a `.NAME.XXXX.tmp` file, then rename) so a kill never leaves a torn
file; the owner removes such leftovers when it opens the directory (`clean_temp_files`).
snapshots.jsonl is append-only, one complete line per snapshot; every line read back is checked
against the run's schema (`validation.SnapshotSchema`) and a bad one is skipped with a notice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ffterm_core.config import ConfigError, RunConfig, from_dict, load_yaml_text
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.store.validation import (
    Notice,
    SnapshotSchema,
    UnreadableFile,
    check_analysis,
    check_final,
    check_prune,
    parse_lines,
    read_text,
)

CONFIG = "config.yaml"
SNAPSHOTS = "snapshots.jsonl"
CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
FINAL = "final.json"
TRAIN_LOG = "train.log"
ERROR_LOG = "error.log"
ANALYSIS = "analysis.json"
PROBES = "probes.json"
PRUNE = "prune.json"
PRUNE_CSV = "prune.csv"
PRUNE_FIGURE = "prune"  # prune.png and prune.svg
FAILED = "failed.json"
LOCK = ".lock"
CONTROL_SOCKET = "control.sock"
REPORTS = "reports"
# what a run leaves in its directory; --force clears these and nothing else
RUN_OUTPUTS = (SNAPSHOTS, CHECKPOINT, PREVIOUS_CHECKPOINT, FINAL, ERROR_LOG, TRAIN_LOG, ANALYSIS, PROBES)
RUN_OUTPUT_DIRS = (REPORTS,)
_OWN_NAMES = {CONFIG, LOCK, CONTROL_SOCKET, *RUN_OUTPUTS, *RUN_OUTPUT_DIRS}


class RunDirError(ValueError):
    """A run directory that cannot be used as asked; one line naming the path and the fix."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def safe_name(name: str, limit: int = 80) -> str:
    """`name` as one safe path component: letters, digits, `.`, `_`, `-` (no `..`, `/` or control
    characters); anything else becomes `-`. Used for the folder of a run named by a preset."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:limit]
    return cleaned or "run"


def new_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = safe_name(name)
    path = root / f"{base}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{base}-{stamp}-{n}"
    return path


def _warn(line: str) -> None:
    logging.getLogger("ffterm").warning("ffterm: note: %s", line)


def read_config(run_dir: Path) -> RunConfig:
    """The validated config.yaml of a run directory; one-line errors for anything else."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir}: not an ffterm run directory (no such folder)")
    if not path.exists() and not path.is_symlink():
        raise RunDirError(f"{run_dir}: not an ffterm run directory (no {CONFIG})")
    try:
        text = read_text(path, "run config", "restore it from a copy or start a new run")
    except UnreadableFile as exc:
        raise RunDirError(str(exc)) from None
    return from_dict(load_yaml_text(text, str(path)))


def read_final(run_dir: Path) -> dict[str, Any]:
    """final.json of a finished run, checked for the keys and types summaries rely on."""
    path = Path(run_dir) / FINAL
    fix = f"remove it and recompute the run (`ffterm run` with --out {run_dir} --force)"
    try:
        data: dict[str, Any] = json.loads(read_text(path, "result file", fix))  # check_final checks the shape
    except UnreadableFile as exc:
        raise RunDirError(str(exc)) from None
    except (ValueError, RecursionError):
        raise RunDirError(f"{path}: not valid JSON; {fix}") from None
    problem = check_final(data)
    if problem:
        raise RunDirError(f"{path}: {problem}; {fix}")
    return data


def read_final_if_any(run_dir: Path) -> dict[str, Any] | None:
    """final.json when the run has finished and the file is usable, else None (for status lines)."""
    try:
        return read_final(run_dir) if is_finished(run_dir) else None
    except RunDirError:
        return None


def _optional_json(path: Path, check: Callable[[Any], str | None], on_bad: Notice | None) -> Any:
    """The content of an optional JSON file that `check` accepts; None when it is absent, and when
    it is unreadable or damaged (then said through `on_bad`, with the fix)."""
    if not path.exists():
        return None
    fix = "remove it, or write it again with the command that made it"
    try:
        data = json.loads(read_text(path, "file", fix))
    except UnreadableFile as exc:
        problem = str(exc)
    except (ValueError, RecursionError):
        problem = f"{path}: not valid JSON; {fix}"
    else:
        wrong = check(data)
        if wrong is None:
            return data
        problem = f"{path}: {wrong}; {fix}"
    if on_bad is not None:
        on_bad(problem)
    return None


def read_analysis(run_dir: Path, on_bad: Notice | None = _warn) -> dict[str, Any] | None:
    """analysis.json (`ffterm analyze`), checked as a snapshot's layers are; None when absent or damaged."""
    config = _config_or_none(run_dir)
    data: dict[str, Any] | None = _optional_json(Path(run_dir) / ANALYSIS, lambda d: check_analysis(d, config), on_bad)
    return data


def write_analysis(run_dir: Path, result: Mapping[str, object]) -> Path:
    write_json(Path(run_dir) / ANALYSIS, result)
    return Path(run_dir) / ANALYSIS


def read_prune(run_dir: Path, on_bad: Notice | None = _warn) -> dict[str, Any] | None:
    """prune.json (`ffterm prune`), checked for what the report reads; None when absent or damaged."""
    data: dict[str, Any] | None = _optional_json(Path(run_dir) / PRUNE, check_prune, on_bad)
    return data


def write_prune(run_dir: Path, result: Mapping[str, object], csv_text: str) -> list[Path]:
    """prune.json and prune.csv; returns their paths (the figure is written with the figures' own writer)."""
    write_json(Path(run_dir) / PRUNE, result)
    atomic_write_text(Path(run_dir) / PRUNE_CSV, csv_text)
    return [Path(run_dir) / PRUNE, Path(run_dir) / PRUNE_CSV]


def read_probes(run_dir: Path, on_bad: Notice | None = None) -> dict[str, Any] | None:
    """probes.json (`ffterm probe`) when it holds an object; None when absent or damaged."""
    data: dict[str, Any] | None = _optional_json(
        Path(run_dir) / PROBES, lambda d: None if isinstance(d, dict) else "expected a JSON object", on_bad
    )
    return data


def write_probes(run_dir: Path, result: Mapping[str, object]) -> Path:
    write_json(Path(run_dir) / PROBES, result)
    return Path(run_dir) / PROBES


def read_failure(run_dir: Path) -> str | None:
    """Why a suite's run failed (failed.json), or None when it did not."""
    path = Path(run_dir) / FAILED
    if not path.exists():
        return None
    data = _optional_json(path, lambda d: None if isinstance(d, dict) else "expected a JSON object", None)
    return "failed (unreadable failed.json)" if data is None else str(data.get("error"))


def write_failure(run_dir: Path, error: str, when: str) -> None:
    write_json(Path(run_dir) / FAILED, {"error": error, "time": when})


def _config_or_none(run_dir: Path) -> RunConfig | None:
    try:
        return read_config(run_dir)
    except (RunDirError, ConfigError):
        return None


def _schema(run_dir: Path) -> SnapshotSchema:
    return SnapshotSchema.for_config(_config_or_none(run_dir))


def append_snapshot(run_dir: Path, snapshot: Snapshot) -> None:
    with open(run_dir / SNAPSHOTS, "a", encoding="utf-8") as fh:
        fh.write(snapshot.to_json() + "\n")
        fh.flush()


def read_snapshots(run_dir: Path, on_bad: Notice | None = _warn) -> list[Snapshot]:
    """Every valid snapshot line of a run; each bad line (torn, edited, out of the run's bounds) is
    skipped and reported through `on_bad` with its file and line number (default: a logged warning,
    which reaches stderr when nothing else is set up)."""
    return [snap for _, snap in read_numbered_snapshots(run_dir, on_bad)]


def read_numbered_snapshots(
    run_dir: Path, on_bad: Notice | None = None, *, writer_gone: bool = False
) -> list[tuple[int, Snapshot]]:
    """(line number, Snapshot) of the valid lines. An unterminated last line is a write in
    progress and left alone, unless `writer_gone` (then it is torn, and reported)."""
    path = Path(run_dir) / SNAPSHOTS
    if not path.exists():
        return []
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = list(enumerate(raw.split("\n"), 1))
    if not writer_gone and not raw.endswith("\n"):
        lines = lines[:-1]
    return parse_lines(lines, path, _schema(run_dir), on_bad)


def truncate_snapshots(run_dir: Path, epoch: int) -> list[str]:
    """Keep only live snapshots up to `epoch` (used on resume, so the file matches the checkpoint).

    Returns one line per line dropped other than the ones after the checkpoint (bad lines, with
    their number and reason), so a resume can say what it left out.
    """
    notices: list[str] = []
    numbered = read_numbered_snapshots(run_dir, notices.append, writer_gone=True)
    keep = [s for _, s in numbered if s.epoch <= epoch and s.kind == "live"]
    atomic_write_text(Path(run_dir) / SNAPSHOTS, "".join(s.to_json() + "\n" for s in keep))
    return notices


def follow_snapshots(
    run_dir: Path, stop: threading.Event, poll_s: float = 0.5, on_bad: Notice | None = None
) -> Iterator[Snapshot]:
    """Yield snapshots of a run as they are appended (as `tail -f`), until `stop` is set.

    Yields the existing ones first. Survives the file being rewritten (resume truncation). A bad
    line is reported through `on_bad` (file and line number) and following goes on.
    """
    path = Path(run_dir) / SNAPSHOTS
    schema = _schema(run_dir)
    offset = 0
    number = 0
    buffer = b""
    while not stop.is_set():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < offset:  # rewritten: start over
            offset, number, buffer = 0, 0, b""
        if size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                buffer += fh.read(min(size - offset, 16 * 1024 * 1024))
                offset = fh.tell()
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > schema.max_line_bytes:  # a line that never ends: drop it, keep following
                lines.append(buffer)
                buffer = b""
            numbered = [(number + i, line.decode("utf-8", errors="replace")) for i, line in enumerate(lines, 1)]
            number += len(lines)
            for _, snap in parse_lines(numbered, path, schema, on_bad):
                yield snap
            continue
        stop.wait(poll_s)


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / FINAL).exists()


def check_target(run_dir: Path, force: bool) -> None:
    """Refuse (one line) a run directory that cannot be used for a new run.

    Not a folder, or under a file: always refused. A folder holding files that are not an ffterm
    run, or holding a run's results (finished, or with a checkpoint): refused unless `force`.
    """
    d = Path(run_dir)
    for parent in (d, *d.parents):
        if parent.exists() and not parent.is_dir():
            what = "is" if parent == d else f"is under {parent}, which is"
            raise RunDirError(f"{d}: {what} not a folder; give --out a folder path (new or empty)")
        if parent.exists():
            break
    if not d.is_dir():
        return
    try:
        names = {p.name for p in d.iterdir()}
    except PermissionError:
        raise RunDirError(f"{d}: cannot be listed (permission denied); choose a folder you can write") from None
    if force:
        _check_clearable(d)
        return
    if not names:
        return
    foreign = sorted(n for n in names if n not in _OWN_NAMES and not _is_temp_file(n))
    if foreign or (CONFIG in names and not _is_our_config(d)):
        example = foreign[0] if foreign else CONFIG
        raise RunDirError(
            f"{d}: holds files that are not an ffterm run (e.g. {example}); "
            "choose a new or empty folder, or pass --force to use it anyway"
        )
    check_reusable(d, force)


def _is_our_config(run_dir: Path) -> bool:
    try:
        read_config(run_dir)
    except (RunDirError, ConfigError):
        return False
    return True


def _check_clearable(run_dir: Path) -> None:
    """RunDirError, before anything is removed, when an earlier run's output is not what a run leaves
    (a folder named like a file, a symlink or file named like reports/): nothing is deleted by guess."""
    d = Path(run_dir)
    for name in (*RUN_OUTPUTS, *RUN_OUTPUT_DIRS):
        path = d / name
        if not os.path.lexists(path):
            continue
        ok = path.is_dir() if name in RUN_OUTPUT_DIRS else path.is_file()
        if path.is_symlink() or not ok:
            kind = "a symlink" if path.is_symlink() else "a folder" if path.is_dir() else "not a folder"
            raise RunDirError(f"{path}: is {kind}, not what a run leaves; move it away yourself, then run again")


def clear_outputs(run_dir: Path) -> None:
    """Remove what an earlier run left (snapshots, checkpoints, results, logs, reports/); other files stay.
    Everything is checked first: a refusal leaves the folder as it was."""
    import shutil

    d = Path(run_dir)
    _check_clearable(d)
    for name in RUN_OUTPUTS:
        (d / name).unlink(missing_ok=True)
    for name in RUN_OUTPUT_DIRS:
        if (d / name).is_dir():
            shutil.rmtree(d / name)


_TEMP_FILE = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.tmp")  # what atomic_write_bytes's mkstemp makes


def _is_temp_file(name: str) -> bool:
    """A temp file of our atomic writes: `.NAME.XXXX.tmp` of a file a run writes, or mkstemp's shape
    `.NAME.XXXXXXXX.tmp` (a user's own `.notes.tmp` is neither)."""
    own = name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in (CONFIG, *RUN_OUTPUTS))
    return own or _TEMP_FILE.fullmatch(name) is not None


def clean_temp_files(run_dir: Path) -> list[str]:
    """Remove temp files left by atomic writes a kill interrupted; call with the run's lock held."""
    removed = []
    for path in Path(run_dir).glob(".*.tmp"):
        if _is_temp_file(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


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
