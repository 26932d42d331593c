"""`ffterm bench`: training, evaluation and analysis speed, measured in one run.

Each figure is the best of `repeats` runs. Uses the real dataset when it is on disk, else random
images of the same shape and size (the speed is the same; the numbers learned are not). The ratio
of the fast 10-label evaluation to the plain 10-pass one is measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from .config import RunConfig
from .datasets import DATASETS, DatasetError, load_raw, normalize_images
from .device import describe, resolve_device, synchronize
from .embedding import clear_label_pixels
from .evaluate import evaluate, live_subset
from .predict import label_goodness, label_goodness_reference
from .prepare import PreparedData
from .trainers import FFTrainer, Trainer, make_trainer

# The published training code on a 2-core CPU (FashionMNIST, 60k+60k samples, batch 1024+1024).
PUBLISHED_CPU_S: dict[str, Any] = {"ff_layer_epoch": [3.5, 4.2, 3.9], "eval_10_labels": 4.0}


def _bench_data(
    dataset: str, data_dir: str | None, device: torch.device, log: Callable[[str], None]
) -> tuple[PreparedData, str]:
    info = DATASETS[dataset]
    splits = {}
    source = "real"
    for split, n in (("train", 60000), ("test", 10000)):
        try:
            images, labels = load_raw(dataset, split, data_dir, download=False)
        except DatasetError:
            source = "random (dataset not on disk)"
            gen = torch.Generator().manual_seed(0)
            images = torch.randint(0, 256, (n, *info.shape), dtype=torch.uint8, generator=gen)
            labels = torch.arange(n) % 10
        x = normalize_images(images, info)
        splits[split] = (x, labels.long(), float(x.max()))
    log(f"data: {dataset}, {source}; device {describe(device)}")
    (tx, ty, tv), (ex, ey, ev) = splits["train"], splits["test"]
    data = PreparedData(
        info,
        clear_label_pixels(tx, info.shape).to(device),
        ty.to(device),
        clear_label_pixels(ex, info.shape).to(device),
        ey.to(device),
        tv,
        ev,
        list(range(10)),
    )
    return data, source


def _time(fn: Callable[[], Any], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def _train_epoch(trainer: Trainer) -> None:
    while not trainer.step():
        pass


def _ff_layer_epochs(
    cfg: RunConfig, data: PreparedData, dev: torch.device, repeats: int
) -> tuple[list[float], list[float], FFTrainer]:
    """Seconds of one epoch of each FF layer, and of building the next layer's inputs (best of repeats)."""
    layer_s = [float("inf")] * cfg.layers
    stage_inputs_s = [float("inf")] * cfg.layers
    for _ in range(repeats):
        ff = FFTrainer(cfg, data, dev)
        for stage in range(ff.num_stages):
            layer_s[stage] = min(layer_s[stage], _time(partial(_train_epoch, ff), dev))
            stage_inputs_s[stage] = min(stage_inputs_s[stage], _time(ff.end_epoch, dev))
    return layer_s, stage_inputs_s, ff


def run_bench(
    device: str = "auto",
    dataset: str = "fashionmnist",
    data_dir: str | None = None,
    repeats: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    dev = resolve_device(device)
    ff_cfg = RunConfig(model="ff", epochs=1).replace(dataset=dataset)  # ConfigError for an unknown dataset
    data, source = _bench_data(ff_cfg.dataset, data_dir, dev, log)
    n_train = data.train_y.shape[0]
    results: dict[str, Any] = {
        "device": describe(dev),
        "dataset": dataset,
        "data": source,
        "train_samples": n_train,
        "test_samples": data.test_y.shape[0],
    }

    # FF: one epoch of each layer (sequential schedule); the best of `repeats` fresh runs
    layer_s, stage_inputs_s, ff = _ff_layer_epochs(ff_cfg, data, dev, repeats)
    results["ff_layer_epoch_s"] = layer_s
    results["ff_samples_per_s"] = [2 * n_train / s for s in layer_s]
    results["ff_next_layer_inputs_s"] = stage_inputs_s[:-1]
    log(
        "FF layer-epoch (s): "
        + ", ".join(f"L{i + 1} {s:.2f}" for i, s in enumerate(layer_s))
        + f"  ({', '.join(f'{2 * n_train / s:,.0f}' for s in layer_s)} samples/s)"
    )
    bf16_s, _, _ = _ff_layer_epochs(ff_cfg.replace(precision="bf16"), data, dev, repeats)
    results["ff_bf16_layer_epoch_s"] = bf16_s
    results["bf16_speedup"] = [a / b for a, b in zip(layer_s, bf16_s)]
    log(
        "FF layer-epoch with precision bf16 (s): "
        + ", ".join(f"L{i + 1} {s:.2f}" for i, s in enumerate(bf16_s))
        + "  ("
        + ", ".join(f"{r:.2f}×" for r in results["bf16_speedup"])
        + " the float32 speed)"
    )

    # 10-label evaluation of the whole test set: batched (shared first layer) vs 10 full passes
    x, y = data.test_x, data.test_y
    fast = min(_time(lambda: label_goodness(ff.net, x, data.v_test, data.shape, "l2"), dev) for _ in range(repeats))
    slow = min(
        _time(lambda: label_goodness_reference(ff.net, x, data.v_test, data.shape, "l2"), dev) for _ in range(repeats)
    )
    results.update(eval_10_labels_s=fast, eval_10_labels_reference_s=slow, eval_speedup=slow / fast)
    log(
        f"10-label evaluation of {x.shape[0]} test images: {fast:.2f} s (10 full passes: {slow:.2f} s, {slow / fast:.2f}× faster)"
    )

    # BP/FF and BP: one epoch each
    for model in ("bpff", "bp"):
        trainer = make_trainer(ff_cfg.replace(model=model, lr=1e-4), data, dev)  # BP's plain images cost as much
        s = _time(partial(_train_epoch, trainer), dev)
        per_epoch = (2 if model == "bpff" else 1) * n_train
        results[f"{model}_epoch_s"] = s
        results[f"{model}_samples_per_s"] = per_epoch / s
        log(f"{model.upper()} epoch: {s:.2f} s ({per_epoch / s:,.0f} samples/s)")

    # analysis: a live snapshot (default subset) and the final one (whole test set, p-values)
    subset = live_subset(y.shape[0], ff_cfg.analysis_samples, 0)
    live = _time(lambda: evaluate(ff, ff_cfg, subset, final=False), dev)
    final = _time(lambda: evaluate(ff, ff_cfg, None, final=True), dev)
    results.update(live_snapshot_s=live, final_analysis_s=final, analysis_samples=ff_cfg.analysis_samples)
    log(f"live snapshot (accuracy + analysis of {ff_cfg.analysis_samples} test images, 3 layers): {live:.2f} s")
    log(f"final analysis (all {y.shape[0]} test images, 200-shuffle p-values): {final:.2f} s")

    if dev.type == "cpu" and dataset == "fashionmnist":
        pub = PUBLISHED_CPU_S
        results["vs_published_cpu"] = {
            "ff_layer_epoch": [p / s for p, s in zip(pub["ff_layer_epoch"], layer_s)],
            "eval_10_labels": pub["eval_10_labels"] / fast,
        }
        log(
            "vs the published code's 2-core CPU figures (×, higher is faster): layer-epochs "
            + ", ".join(f"{r:.2f}" for r in results["vs_published_cpu"]["ff_layer_epoch"])
            + f"; evaluation {results['vs_published_cpu']['eval_10_labels']:.2f}"
        )
    return results
