"""Data prepared for training: normalised, flattened, label pixels cleared, on the training device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ffterm_core.config import RunConfig
from ffterm_core.data.datasets import DATASETS, DatasetInfo, load_raw, normalize_images
from ffterm_core.data.embedding import NUM_LABELS, clear_label_pixels


@dataclass
class PreparedData:
    info: DatasetInfo
    train_x: torch.Tensor  # (N, D) float32; label pixels cleared for ff/bpff, plain for bp
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    v_train: float  # max of the normalised train split: the label pixel value
    v_test: float
    seen_labels: list[int]  # labels that training uses (all but a held-out class)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.info.shape

    @property
    def in_features(self) -> int:
        return self.train_x.shape[1]


def prepare(cfg: RunConfig, device: torch.device) -> PreparedData:
    """Load the run's dataset, apply docs/algorithms.md#data (normalisation, v, held-out filtering), move to device."""
    info = DATASETS[cfg.dataset]
    splits = {}
    for split, limit in (("train", cfg.train_limit), ("test", cfg.test_limit)):
        images, labels = load_raw(cfg.dataset, split, cfg.data_dir)
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        x = normalize_images(images, info)
        v = float(x.max())  # computed over the whole (limited) split, before any filtering
        if cfg.kind.goodness:
            x = clear_label_pixels(x, info.shape)
        splits[split] = (x, labels.long(), v)
    train_x, train_y, v_train = splits["train"]
    test_x, test_y, v_test = splits["test"]
    seen = [c for c in range(NUM_LABELS) if c != cfg.heldout_class]
    if cfg.heldout_class is not None:
        keep = train_y != cfg.heldout_class
        train_x, train_y = train_x[keep], train_y[keep]
    return PreparedData(
        info=info,
        train_x=train_x.contiguous().to(device),
        train_y=train_y.to(device),
        test_x=test_x.contiguous().to(device),
        test_y=test_y.to(device),
        v_train=v_train,
        v_test=v_test,
        seen_labels=seen,
    )
