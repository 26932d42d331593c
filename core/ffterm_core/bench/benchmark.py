"""`ffterm bench`: training, evaluation and analysis speed against the device's limit and typical code.

Everything is measured in one process on one device: the peak matmul FLOP/s (square float32
matmuls, and the matmuls of each trainer's own step at its shapes), one epoch of each trainer as
achieved FLOP/s (`efficiency` against the square peak, `efficiency_at_shapes` against its own
shapes') and against the typical form of the same work (`ffterm_core.bench.typical`), the 10-label
evaluation against ten full passes, the live and final analysis, precisions and batched seeds.

Each configuration first runs one untimed warm-up epoch; then ours and the typical form are timed in
turn, `repeats` times (3 by default), and each figure is the best of them. A CUDA graph's warm-up and
capture (its first epoch) is timed apart from the epoch that replays it. The real dataset is used when
it is on disk, else random images of its shape (the speed is the same; the numbers learned are not).
`quick` uses subsets (3000 training, 1000 test images) and a small square peak: a smoke figure that
the code runs, not a measurement to quote.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from ffterm_core.bench import typical
from ffterm_core.config import RunConfig, from_dict
from ffterm_core.data.datasets import DATASETS, DatasetError, load_raw, normalize_images
from ffterm_core.data.embedding import clear_label_pixels
from ffterm_core.data.prepare import PreparedData
from ffterm_core.device import (
    DeviceError,
    check_precision,
    describe,
    effective_precision,
    fp32_matmul_precision,
    resolve_device,
    synchronize,
)
from ffterm_core.training.algorithms import ALGORITHMS
from ffterm_core.training.algorithms.base import fans as hidden_fans
from ffterm_core.training.batched import BatchedTrainer
from ffterm_core.training.evaluate import evaluate, live_subset
from ffterm_core.training.networks import FFNet
from ffterm_core.training.predict import label_goodness
from ffterm_core.training.trainers import BaseTrainer, Trainer, build_net, make_trainer

FULL = {"train": 60000, "test": 10000}
QUICK = {"train": 3000, "test": 1000}
REPEATS = 3
QUICK_LABEL = "smoke figure: data subsets and a 1024² peak; it checks that the code runs, not how fast"
Log = Callable[[str], None]


def _bench_data(
    dataset: str, data_dir: str | None, device: torch.device, sizes: dict[str, int]
) -> tuple[PreparedData, str]:
    info = DATASETS[dataset]
    splits = {}
    source = "real"
    for split, n in sizes.items():
        try:
            images, labels = load_raw(dataset, split, data_dir, download=False)
        except DatasetError:
            source = "random (dataset not on disk)"
            gen = torch.Generator().manual_seed(0)
            images = torch.randint(0, 256, (n, *info.shape), dtype=torch.uint8, generator=gen)
            labels = torch.arange(n) % 10
        images, labels = images[:n], labels[:n]
        x = normalize_images(images, info)
        splits[split] = (clear_label_pixels(x, info.shape).to(device), labels.long().to(device), float(x.max()))
    (tx, ty, tv), (ex, ey, ev) = splits["train"], splits["test"]
    return PreparedData(info, tx, ty, ex, ey, tv, ev, list(range(10))), source


def _time(fn: Callable[[], Any], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def peak_matmul_flops(device: torch.device, n: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """The best FLOP/s of an n×n by n×n matmul (2n³ FLOPs) in `dtype`, after a warm-up."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up: kernels chosen, clocks up
    reps = max(1, repeats)
    seconds = min(_time(lambda: [a @ b for _ in range(reps)], device) for _ in range(3)) / reps
    return 2 * n**3 / seconds


# ---- FLOPs of one training epoch ---------------------------------------------------------------
# Counted: matmuls only. A Linear layer of fan-in D and width H costs, per row, 2·D·H FLOPs forward,
# 2·D·H for its weight gradient and 2·D·H for its input gradient, which is needed only when an
# earlier layer trains through it. Elementwise work (normalisation, ReLU, goodness, Adam) is left
# out: it is memory-bound and small next to the matmuls at these widths. Per epoch of M examples:
#   FF layer l (sequential), P = 2M rows (positives and negatives):  4·P·D_l·H
#   FF simultaneous:                                                Σ_l 4·P·D_l·H
#   BP/FF (one loss through all layers), P = 2M:                    Σ_l 4·P·D_l·H + Σ_{l≥2} 2·P·D_l·H
#   BP, P = M rows, the 10-way head as a last layer:                 Σ_layers+head 4·P·D·H + Σ_{all but first} 2·P·D·H
def epoch_flops(cfg: RunConfig, examples: int, in_features: int, hidden: int, layer: int | None = None) -> float:
    """Matmul FLOPs of one epoch (of `layer` only, for sequential FF): the algorithm's own count."""
    return ALGORITHMS[cfg.model].epoch_flops(cfg, examples, in_features, hidden, layer)


def shapes_peak_flops(
    cfg: RunConfig, in_features: int, hidden: int, device: torch.device, repeats: int, layer: int | None = None
) -> float:
    """The best FLOP/s of the matmuls of one training step of `cfg` (of `layer` only, for sequential FF)
    at the trainer's own shapes, as bare float32 matmuls: per layer the forward pass, the weight
    gradient and, where `epoch_flops` counts it, the input gradient. The limit the trainer could reach."""
    batch = cfg.effective_batch_size
    rows = 2 * batch if cfg.kind.goodness else batch
    head = [] if cfg.kind.goodness else [(hidden, 10)]  # a classifier's 10-way output layer
    fans = list(enumerate(hidden_fans(cfg, in_features, hidden) + head))
    chosen = fans if layer is None else [fans[layer]]
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device)

    mats = [(i, randn(rows, d), randn(h, d), randn(rows, h)) for i, (d, h) in chosen]  # inputs, weight, gradient

    def steps(n: int) -> None:
        for _ in range(n):
            for i, x, w, g in mats:
                x @ w.T  # forward
                g.T @ x  # weight gradient
                if not cfg.kind.layerwise and i > 0:
                    g @ w  # input gradient, for the layers trained through

    steps(1)  # warm-up: kernels chosen, clocks up
    reps = max(1, repeats)
    seconds = min(_time(partial(steps, reps), device) for _ in range(3)) / reps
    return epoch_flops(cfg, batch, in_features, hidden, layer) / seconds


def _epoch(trainer: BaseTrainer) -> None:
    while not trainer.step():
        pass


def _epoch_seconds(make: Callable[[], BaseTrainer], dev: torch.device) -> float:
    """Seconds of one epoch of a fresh trainer (made outside the timing)."""
    trainer = make()
    return _time(lambda: _epoch(trainer), dev)


def _typical_seconds(
    run: Callable[..., float], cfg: RunConfig, data: PreparedData, inputs: Any, dev: torch.device
) -> float:
    """Seconds of the typical form's epoch with a fresh network (made outside the timing)."""
    net = build_net(cfg, data, dev)
    return _time(lambda: run(cfg, net, inputs, dev), dev)


def _paired(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[float, float]:
    """The best of `repeats` of two measurements taken in turn (a, b, a, b, …), so that a change of
    load on a shared machine hits both alike and their ratio stays meaningful; each is run once first,
    untimed (the warm-up epoch: allocator, kernel choice, caches)."""
    a(), b()
    best_a = best_b = float("inf")
    for _ in range(repeats):
        best_a, best_b = min(best_a, a()), min(best_b, b())
    return best_a, best_b


def _layer_epochs(cfg: RunConfig, data: PreparedData, dev: torch.device) -> tuple[list[float], Trainer]:
    """Seconds of one epoch of each sequential FF layer of a fresh run, and its trainer."""
    ff = Trainer(cfg, data, dev)
    seconds = []
    for _ in range(ff.num_stages):
        seconds.append(_time(lambda: _epoch(ff), dev))
        ff.end_epoch()  # builds the next layer's inputs, not timed
    return seconds, ff


def _trainer_figures(
    seconds: float, typical_s: float, flops: float, samples: int, peak: float, shapes_peak: float
) -> dict[str, float]:
    return {
        "samples_per_s": samples / seconds,
        "seconds_per_epoch": seconds,
        "efficiency": flops / seconds / peak,
        "efficiency_at_shapes": flops / seconds / shapes_peak,
        "shapes_peak_flops": shapes_peak,
        "speedup_vs_typical": typical_s / seconds,
        "typical_seconds_per_epoch": typical_s,
    }


def run_bench(
    device: str = "auto",
    dataset: str = "fashionmnist",
    data_dir: str | None = None,
    repeats: int = REPEATS,
    quick: bool = False,
    seeds: int | None = None,
    log: Log = print,
    compile_step: bool = False,
) -> dict[str, Any]:
    """The figures of docs/speed.md; `compile_step` adds the torch.compile row (its compiling takes minutes)."""
    dev = resolve_device(device)
    # FF, one epoch, on this device: the runs measured below are this one or small changes of it; the config's
    # loader checks the dataset's name once
    ff_cfg = from_dict({"model": "ff", "dataset": dataset, "epochs": 1, "device": dev.type})
    sizes = QUICK if quick else FULL
    data, source = _bench_data(ff_cfg.dataset, data_dir, dev, sizes)
    m, d_in, hidden = data.train_y.shape[0], data.in_features, data.info.hidden
    log(
        f"data: {ff_cfg.dataset} ({source}), {m} training and {data.test_y.shape[0]} test images; device {describe(dev)}"
    )
    peak_size = 1024 if quick else (8192 if dev.type == "cuda" else 2048)
    peak_reps = 10 if dev.type == "cuda" else 2
    peak = peak_matmul_flops(dev, peak_size, peak_reps)
    precision = fp32_matmul_precision(dev)
    log(f"peak matmul (float32 as {precision}, {peak_size}² square): {peak / 1e9:,.1f} GFLOP/s")
    if quick:
        log(f"--quick: {QUICK_LABEL}")
    results: dict[str, Any] = {
        "device": describe(dev),
        "dataset": ff_cfg.dataset,
        "data": source,
        "quick": quick,
        "label": QUICK_LABEL if quick else "full data",
        "repeats": repeats,
        "warmup": "one untimed epoch per configuration",
        "matmul_precision": precision,  # what float32 matmuls ran in (the trainers' precision: fp32)
        "peak_matmul_size": peak_size,
        "train_samples": m,
        "test_samples": data.test_y.shape[0],
        "peak_matmul_flops": peak,
        "trainers": {},
        "app_throughput_ratio": None,  # measured by `ffterm bench --ui`
    }
    trainers = results["trainers"]

    # FF, sequential: one epoch of each layer; the typical form: layer 1's epoch, in turn with ours
    pairs = typical.pairs(ff_cfg, data)
    layer_s, typical_s = [float("inf")] * ff_cfg.layers, float("inf")
    _layer_epochs(ff_cfg, data, dev)  # the warm-up, untimed, of each
    _typical_seconds(partial(typical.ff_epoch, layers=[0]), ff_cfg, data, pairs, dev)
    for _ in range(repeats):
        seconds, ff = _layer_epochs(ff_cfg, data, dev)
        layer_s = [min(a, b) for a, b in zip(layer_s, seconds)]
        layer_1 = _typical_seconds(partial(typical.ff_epoch, layers=[0]), ff_cfg, data, pairs, dev)
        typical_s = min(typical_s, layer_1)
    flops = [epoch_flops(ff_cfg, m, d_in, hidden, layer) for layer in range(ff_cfg.layers)]
    layer_peaks = [shapes_peak_flops(ff_cfg, d_in, hidden, dev, peak_reps, layer) for layer in range(ff_cfg.layers)]
    ideal_s = sum(f / p for f, p in zip(flops, layer_peaks))  # every layer-epoch at its shapes' peak
    mean_s = sum(layer_s) / len(layer_s)
    trainers["ff"] = {
        "samples_per_s": 2 * m / mean_s,
        "seconds_per_epoch": mean_s,  # the mean layer-epoch
        "efficiency": sum(flops) / sum(layer_s) / peak,
        "efficiency_at_shapes": ideal_s / sum(layer_s),
        "shapes_peak_flops": sum(flops) / ideal_s,
        "layer_shapes_peak_flops": layer_peaks,
        "speedup_vs_typical": typical_s / layer_s[0],
        "layer_epoch_s": layer_s,
        "typical_layer_epoch_s": typical_s,
    }
    _log_trainer(
        log,
        "FF layer-epoch (sequential)",
        trainers["ff"],
        " (layers " + " / ".join(f"{s:.2f}" for s in layer_s) + " s; vs typical: layer 1)",
    )

    sim_cfg = ff_cfg.replace(schedule="simultaneous")
    every_layer = list(range(sim_cfg.layers))
    s, t = _paired(
        lambda: _epoch_seconds(lambda: make_trainer(sim_cfg, data, dev), dev),
        lambda: _typical_seconds(partial(typical.ff_epoch, layers=every_layer), sim_cfg, data, pairs, dev),
        repeats,
    )
    sim_peak = shapes_peak_flops(sim_cfg, d_in, hidden, dev, peak_reps)
    trainers["ff_simultaneous"] = _trainer_figures(s, t, epoch_flops(sim_cfg, m, d_in, hidden), 2 * m, peak, sim_peak)
    _log_trainer(log, "FF epoch (simultaneous)", trainers["ff_simultaneous"])

    for model, run_typical in (("bpff", typical.bpff_epoch), ("bp", typical.bp_epoch)):
        cfg = ff_cfg.replace(model=model, lr=1e-4)
        inputs = pairs if cfg.kind.goodness else (data.train_x, data.train_y)
        s, t = _paired(
            partial(_epoch_seconds, partial(make_trainer, cfg, data, dev), dev),
            partial(_typical_seconds, run_typical, cfg, data, inputs, dev),
            repeats,
        )
        samples = 2 * m if cfg.kind.goodness else m  # BP's plain images cost the same as cleared-label ones
        model_peak = shapes_peak_flops(cfg, d_in, hidden, dev, peak_reps)
        trainers[model] = _trainer_figures(s, t, epoch_flops(cfg, m, d_in, hidden), samples, peak, model_peak)
        _log_trainer(log, f"{model.upper()} epoch", trainers[model])

    ff_net = ff.net
    if not isinstance(ff_net, FFNet):
        raise TypeError("FF trains an FFNet")
    # the 10-label evaluation of the test images: the shared first layer vs ten full passes per batch
    fast, slow = _paired(
        lambda: _time(lambda: label_goodness(ff_net, data.test_x, data.v_test, data.shape, "l2"), dev),
        lambda: _time(lambda: typical.ten_pass_accuracy(ff_net, data, dev, "l2"), dev),
        repeats,
    )
    results["eval"] = {"seconds": fast, "ten_pass_seconds": slow, "speedup_vs_10pass": slow / fast}
    log(
        f"10-label evaluation of {data.test_y.shape[0]} test images: {fast:.2f} s (typical ten passes {slow:.2f} s: {slow / fast:.2f}×)"
    )

    # analysis: a live snapshot (the default subset) and the final one (whole test set, p-values)
    subset = live_subset(data.test_y.shape[0], ff_cfg.analysis_samples, 0)
    live = _time(lambda: evaluate(ff, ff_cfg, subset, final=False), dev)
    final = _time(lambda: evaluate(ff, ff_cfg, None, final=True), dev)
    results["analysis"] = {"live_seconds": live, "final_seconds": final, "live_samples": int(subset.numel())}
    log(
        f"live snapshot (accuracy + analysis of {subset.numel()} test images): {live:.2f} s; final analysis (200-shuffle p-values): {final:.2f} s"
    )

    results["precision"] = _precisions(ff_cfg, data, dev, repeats, log)
    results["options"] = _options(ff_cfg, data, dev, repeats, log)
    results["options"]["compile"] = (
        _compiled(ff_cfg, data, dev, repeats, log)
        if compile_step
        else {"skipped": "compiling takes minutes: `ffterm bench --compile` measures it"}
    )
    n_seeds = seeds or (10 if dev.type == "cuda" else 3)
    results["batched"] = _batched(ff_cfg, data, dev, n_seeds, repeats, flops[0], peak, log)
    _recheck_peak(results, peak_matmul_flops(dev, peak_size, peak_reps), log)
    results["peak_memory_bytes"] = {
        "host": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024),
        "device": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
    }
    return results


def _recheck_peak(results: dict[str, Any], again: float, log: Log) -> None:
    """The peak measured again at the end: on a shared machine the first one may have met a burst of
    load, so efficiencies are taken against the higher of the two."""
    first = results["peak_matmul_flops"]
    results["peak_matmul_flops_measured"] = [first, again]
    if again <= first:
        return
    results["peak_matmul_flops"] = again
    for figures in (*results["trainers"].values(), results["batched"]):
        figures["efficiency"] *= first / again
    log(f"peak matmul again at the end: {again / 1e9:,.1f} GFLOP/s; efficiencies are against this one")


def _log_trainer(log: Log, what: str, r: dict[str, float], extra: str = "") -> None:
    log(
        f"{what}: {r['seconds_per_epoch']:.2f} s, {r['samples_per_s']:,.0f} samples/s, "
        f"{r['efficiency_at_shapes']:.0%} of the peak at its shapes ({r['efficiency']:.0%} of the square one), "
        f"{r['speedup_vs_typical']:.2f}× the typical form{extra}"
    )


def _precisions(fp32: RunConfig, data: PreparedData, dev: torch.device, repeats: int, log: Log) -> dict[str, Any]:
    """FF layer-1 epoch in each lower precision the device does natively, in turn with float32 (`fp32`)."""
    out: dict[str, Any] = {}
    for precision in ("tf32", "bf16"):
        try:
            check_precision(precision, dev)
        except DeviceError as exc:
            out[precision] = {"skipped": str(exc)}
            continue
        cfg = fp32.replace(precision=precision)
        s, f = _paired(
            partial(_epoch_seconds, partial(make_trainer, cfg, data, dev), dev),
            lambda: _epoch_seconds(lambda: make_trainer(fp32, data, dev), dev),
            repeats,
        )
        out[precision] = {
            "seconds_per_epoch": s,
            "fp32_seconds_per_epoch": f,
            "speedup_vs_fp32": f / s,
            "matmul_precision": effective_precision(precision, dev),
        }
        log(f"FF layer-1 epoch with precision {precision}: {s:.2f} s vs float32 {f:.2f} s ({f / s:.2f}×)")
    return out


def _options(cfg: RunConfig, data: PreparedData, dev: torch.device, repeats: int, log: Log) -> dict[str, Any]:
    """Each fast-path step on and off, in turn (FF layer-1 epoch of `cfg`)."""
    # positives and negatives as one matmul (the trainer's form) against two, one per half
    one, two = _paired(
        lambda: _epoch_seconds(lambda: make_trainer(cfg, data, dev), dev),
        lambda: _epoch_seconds(lambda: typical.two_matmul_trainer(cfg, data, dev), dev),
        repeats,
    )
    log(f"positives + negatives as one matmul: {one:.2f} s vs two matmuls {two:.2f} s ({two / one:.2f}×)")
    options: dict[str, Any] = {"pos_neg_one_matmul": {"on_s": one, "off_s": two, "speedup": two / one}}
    if dev.type != "cuda":
        options["cuda_graph"] = {"skipped": "CUDA graphs need a CUDA device"}
        return options
    two_epochs = cfg.replace(epochs=2)  # the second epoch of layer 1 replays the graph the first captured
    capture: list[float] = []
    graphed, eager = _paired(
        lambda: _replay_seconds(lambda: BatchedTrainer([two_epochs], data, dev, cuda_graph=True), dev, capture),
        lambda: _replay_seconds(lambda: BatchedTrainer([two_epochs], data, dev, cuda_graph=False), dev, []),
        repeats,
    )
    options["cuda_graph"] = {"on_s": graphed, "off_s": eager, "speedup": eager / graphed, "capture_s": min(capture)}
    log(
        f"training step as a CUDA graph: {graphed:.2f} s vs eager {eager:.2f} s ({eager / graphed:.2f}×); "
        f"its first epoch (warm-up steps and capture) {min(capture):.2f} s"
    )
    return options


def _next_epoch(trainer: BaseTrainer, dev: torch.device) -> float:
    """Seconds of the trainer's next epoch (its end, which may build a layer's inputs, not timed)."""
    seconds = _time(lambda: _epoch(trainer), dev)
    trainer.end_epoch()
    return seconds


def _compiled(ff: RunConfig, data: PreparedData, dev: torch.device, repeats: int, log: Log) -> dict[str, Any]:
    """Each single-run step (FF layer 1, BP/FF, BP) eager and through torch.compile (`compile: true`), in turn,
    each trainer going on from epoch to epoch; the compiled one's first epoch, which compiles, is timed apart."""
    out: dict[str, Any] = {}
    for model, lr in (("ff", ff.lr), ("bpff", 1e-4), ("bp", 1e-4)):
        cfg = ff.replace(model=model, lr=lr, epochs=repeats + 2)  # compiling, the warm-up, the timed epochs
        compiled = make_trainer(cfg.replace(compile=True), data, dev)
        compile_s = _next_epoch(compiled, dev)
        eager = make_trainer(cfg, data, dev)
        on, off = _paired(partial(_next_epoch, compiled, dev), partial(_next_epoch, eager, dev), repeats)
        out[model] = {"on_s": on, "off_s": off, "speedup": off / on, "compile_s": compile_s}
        log(
            f"{model.upper()} step through torch.compile: {on:.2f} s an epoch vs eager {off:.2f} s ({off / on:.2f}×); "
            f"its first epoch, compiling, {compile_s:.2f} s"
        )
    return out


def _replay_seconds(make: Callable[[], BatchedTrainer], dev: torch.device, first: list[float]) -> float:
    """Seconds of the second epoch of a layer (a CUDA graph's replays only); the first epoch, with the
    warm-up steps and the capture, is timed apart into `first`. `make` gives a 2-epoch trainer."""
    trainer = make()
    first.append(_time(lambda: _epoch(trainer), dev))
    trainer.end_epoch()
    return _time(lambda: _epoch(trainer), dev)


def _batched(
    ff: RunConfig, data: PreparedData, dev: torch.device, n: int, repeats: int, flops: float, peak: float, log: Log
) -> dict[str, Any]:
    """N seeds' FF layer-1 epoch as one batched model, in turn with one seed's (N one after another: N × that)."""
    cfgs = [ff.replace(seed=s) for s in range(n)]
    s, one_s = _paired(
        lambda: _epoch_seconds(lambda: BatchedTrainer(cfgs, data, dev), dev),
        lambda: _epoch_seconds(lambda: make_trainer(cfgs[0], data, dev), dev),
        repeats,
    )
    ratio = n * one_s / s
    log(
        f"{n} seeds batched: FF layer-1 epoch {s:.2f} s vs {n} × {one_s:.2f} s one after another: {ratio:.2f}× the seeds per hour"
    )
    out = {"seeds": n, "seconds_per_epoch": s, "one_seed_seconds_per_epoch": one_s, "sequential_seconds": n * one_s}
    out["seeds_per_hour_ratio"] = ratio
    out["efficiency"] = n * flops / s / peak
    if dev.type == "cuda":
        twos = [c.replace(epochs=2) for c in cfgs]
        capture: list[float] = []
        g = min(
            _replay_seconds(lambda: BatchedTrainer(twos, data, dev, cuda_graph=True), dev, capture)
            for _ in range(repeats)
        )
        out.update(
            cuda_graph_seconds_per_epoch=g,
            cuda_graph_seeds_per_hour_ratio=n * one_s / g,
            cuda_graph_capture_s=min(capture),
        )
        log(
            f"{n} seeds batched, the step as a CUDA graph: {g:.2f} s ({n * one_s / g:.2f}× the seeds per hour); "
            f"its first epoch (warm-up and capture) {min(capture):.2f} s"
        )
    return out
