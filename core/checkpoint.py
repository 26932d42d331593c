"""Checkpoints: trainer state + training time, loaded without executing code (weights_only)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, to_dict
from .rundir import atomic_write_bytes

FORMAT = "ffterm-checkpoint"
VERSION = 1
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
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(
    path: Path, cfg: RunConfig | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load and check a checkpoint; with `cfg`, also check it belongs to that run's settings."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint here; was the run started with ffterm?")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
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
