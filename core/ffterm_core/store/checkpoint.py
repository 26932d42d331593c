"""Checkpoints: trainer state + training time, loaded without executing code (weights_only).

The file is a header line `ffterm-checkpoint sha256 HEX` followed by torch.save's bytes; the
digest is checked before torch reads anything, so a flipped bit is refused instead of resuming
from damaged weights. A checkpoint of an earlier ffterm (torch.save's zip, no header) still loads,
unverified, so runs started before checksums can be resumed; their next save carries one. Each save keeps the one before as checkpoint.prev.pt (a hard link, so
checkpoint.pt exists at every instant), which `ffterm resume --previous` falls back to.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ffterm_core.config import RunConfig, to_dict
from ffterm_core.store.rundir import CHECKPOINT, PREVIOUS_CHECKPOINT, atomic_write_bytes

FORMAT = "ffterm-checkpoint"
VERSION = 1
_MAGIC = b"ffterm-checkpoint sha256 "
_HEADER_LEN = len(_MAGIC) + 64 + 1  # magic, hex digest, newline
_LEGACY_ZIP = b"PK\x03\x04"  # torch.save's own format: what checkpoints were before the header
# settings that change what is trained; the others (device, eval cadence, …) may differ on resume
_IDENTITY_KEYS = (
    "model",
    "dataset",
    "layers",
    "hidden",
    "epochs",
    "lr",
    "batch_size",
    "threshold",
    "loss",
    "schedule",
    "goodness",
    "normalize",
    "negatives",
    "act_l1",
    "heldout_class",
    "train_limit",
    "seed",
    "precision",
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; one line naming the file and the fix."""


def save_checkpoint(path: Path, cfg: RunConfig, trainer_state: dict[str, Any], wall_time: float) -> None:
    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "config": to_dict(cfg),
            "trainer": trainer_state,
            "wall_time": wall_time,
        },
        buffer,
    )
    payload = buffer.getvalue()
    path = Path(path)
    _keep_previous(path)
    atomic_write_bytes(path, _MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def previous_of(path: Path) -> Path:
    return Path(path).with_name(PREVIOUS_CHECKPOINT)


def _keep_previous(path: Path) -> None:
    """checkpoint.pt → checkpoint.prev.pt without a moment where checkpoint.pt is missing."""
    if not path.exists():
        return
    tmp = path.with_name(f".{PREVIOUS_CHECKPOINT}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # a filesystem without hard links: copy
        atomic_write_bytes(previous_of(path), path.read_bytes())
        return
    os.replace(tmp, previous_of(path))


def _verified_payload(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from None
    if data.startswith(_LEGACY_ZIP):
        return data  # no digest to check; torch's zip still guards its records with CRC-32
    if not data.startswith(_MAGIC) or len(data) < _HEADER_LEN or data[_HEADER_LEN - 1 : _HEADER_LEN] != b"\n":
        raise CheckpointError(f"{path}: not an ffterm checkpoint; point at a run directory made by ffterm")
    digest, payload = data[len(_MAGIC) : _HEADER_LEN - 1].decode("ascii", "replace"), data[_HEADER_LEN:]
    if hashlib.sha256(payload).hexdigest() != digest:
        previous = previous_of(path)
        fix = "delete it and start the run again"
        with contextlib.suppress(CheckpointError):
            if previous.exists() and path.name != previous.name and _verified_payload(previous):
                fix = f"the previous one ({previous.name}) is intact: `ffterm resume {path.parent} --previous`"
        raise CheckpointError(f"{path}: checksum mismatch, the file is damaged; {fix}")
    return payload


def load_checkpoint(
    path: Path, cfg: RunConfig | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load and check a checkpoint; with `cfg`, also check it belongs to that run's settings."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint here; was the run started with ffterm?")
    payload = _verified_payload(path)
    try:
        ckpt = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: unreadable checkpoint (torch.load failed: {type(exc).__name__}); "
            "the file is truncated or not a checkpoint; delete it and start the run again"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an ffterm checkpoint; point at a run directory made by ffterm")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})")
    if cfg is not None:
        saved = ckpt["config"]
        current = to_dict(cfg)
        diff = [k for k in _IDENTITY_KEYS if saved.get(k) != current.get(k)]
        if diff:
            raise CheckpointError(
                f"{path}: checkpoint was made with other settings ({', '.join(diff)}); "
                "restore config.yaml or start a new run"
            )
    return ckpt


def restore_previous(run_dir: Path) -> None:
    """Make the kept previous checkpoint the current one (after checking its digest)."""
    path = Path(run_dir) / CHECKPOINT
    previous = previous_of(path)
    if not previous.exists():
        raise CheckpointError(f"{run_dir}: no previous checkpoint ({previous.name}) is kept; start the run again")
    _verified_payload(previous)
    os.replace(previous, path)
