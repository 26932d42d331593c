"""Training rates of the paper presets at each input width: one epoch of each trainer, timed.

`scripts/gpu-check` projects the paper suite from whole runs at FashionMNIST's width (784 inputs,
1000 units) and, for SVHN and CIFAR10 (3072 inputs, 3072 units), scales them by these rates: the
matmul FLOP/s a trainer reaches at 3072 wide over what it reaches at 784 wide, both measured here in
one process. Images are the real dataset's when it is on disk, else random ones of its shape (the
speed is the same).

    python -m ffterm_core.bench.rates --device cuda --json rates.json [--train N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from ffterm_core.bench.benchmark import Log, _bench_data, _epoch_seconds, _layer_epochs, epoch_flops
from ffterm_core.config import RunConfig
from ffterm_core.device import DeviceError, describe, fp32_matmul_precision, resolve_device
from ffterm_core.store.presets import PresetError, load_preset
from ffterm_core.training.trainers import make_trainer

# one dataset of each width: the others of that width (MNIST, SVHN) have the same networks
WIDTHS = {784: "fashionmnist", 3072: "cifar10"}
MODELS = ("ff", "bpff", "bp")


def _seconds(cfg: RunConfig, train: int, device: torch.device, repeats: int) -> tuple[float, int, int]:
    """The best of `repeats` epochs after one untimed (FF: one epoch of every layer); and the inputs and units."""
    data, _ = _bench_data(cfg.dataset, None, device, {"train": train, "test": 10})

    def run() -> float:
        if cfg.kind.layerwise:  # a layer at a time: every layer's epoch
            return sum(_layer_epochs(cfg, data, device)[0])
        return _epoch_seconds(lambda: make_trainer(cfg, data, device), device)

    run()  # the warm-up
    return min(run() for _ in range(repeats)), data.in_features, data.info.hidden


def width_rates(
    device: str = "auto", train: int = 60000, batch_size: int | None = None, repeats: int = 2, log: Log = print
) -> dict[str, Any]:
    """Seconds and matmul FLOP/s of one epoch of each paper preset of :data:`WIDTHS`' datasets."""
    dev = resolve_device(device)
    presets: dict[str, Any] = {}
    for width, dataset in WIDTHS.items():
        for model in MODELS:
            name = f"{model}-{dataset}"
            overrides: dict[str, Any] = {"epochs": 1, "device": dev.type}
            if batch_size is not None:
                overrides["batch_size"] = batch_size
            cfg = load_preset(name, overrides)
            seconds, d_in, hidden = _seconds(cfg, train, dev, repeats)
            flops = epoch_flops(cfg, train, d_in, hidden)
            presets[name] = {"width": width, "train_samples": train, "seconds_per_epoch": seconds}
            presets[name]["flops_per_s"] = flops / seconds
            log(
                f"{name} ({d_in} inputs, {hidden} units): {seconds:.3f} s an epoch, {flops / seconds / 1e9:,.1f} GFLOP/s"
            )
    ratios = {
        m: presets[f"{m}-{WIDTHS[3072]}"]["flops_per_s"] / presets[f"{m}-{WIDTHS[784]}"]["flops_per_s"] for m in MODELS
    }
    return {
        "device": describe(dev),
        "matmul_precision": fp32_matmul_precision(dev),
        "presets": presets,
        "flops_per_s_ratio_3072_over_784": ratios,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", required=True, help="where to write the rates")
    parser.add_argument("--train", type=int, default=60000, help="training images an epoch")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of each preset's")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        result = width_rates(args.device, args.train, args.batch_size, max(1, args.repeats))
    except (DeviceError, PresetError) as exc:
        print(f"ffterm: error: {exc}", file=sys.stderr)
        return 2
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
