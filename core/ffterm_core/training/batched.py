"""Many seeds of one setting trained in lockstep as one batched model (docs/algorithms.md).

Seed i's network is slice i of stacked weights (N, out, in) and every layer is one batched matmul
(`torch.baddbmm`) for all seeds, positives and negatives together. Each seed keeps exactly what its
separate run would have: the initial weights from the same code path (`build_net` with its seed),
the permutation and negatives of every epoch from the same (seed, stage, epoch) generators, and its
own Adam state: Adam is elementwise, so one Adam over the stacked parameters is N separate Adams.
Only the matmuls' summation order differs, so the numbers agree to float rounding.

Each seed writes an ordinary run directory through its own `Session` (snapshots, checkpoints in a
separate run's format, final.json), so `ffterm resume` can continue any one seed on its own.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ffterm_core.config import ConfigError, RunConfig, to_dict
from ffterm_core.data.datasets import DatasetError
from ffterm_core.data.embedding import embed_labels, fixed_negative_pairs, resampled_negative_labels
from ffterm_core.data.prepare import PreparedData, prepare
from ffterm_core.device import matmul_precision, synchronize
from ffterm_core.store.checkpoint import CheckpointError
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.training.evaluate import live_subset
from ffterm_core.training.losses import goodness_loss
from ffterm_core.training.networks import BPNet, FFNet, goodness, normalize
from ffterm_core.training.session import Session, TrainingFailed, _first_line
from ffterm_core.training.trainers import (
    INPUT_CHUNK,
    EpochMetrics,
    Evaluation,
    Trainer,
    _adam,
    _generator,
    bp_evaluation,
    bp_representations,
    build_net,
    goodness_evaluation,
    goodness_representations,
)

# settings that may differ between the runs of one batch: they do not change what is trained
PER_RUN_KEYS = frozenset(
    {"seed", "name", "description", "eval_every", "analysis_samples", "checkpoint_every", "final_pvalues"}
)


def _linears(net: FFNet | BPNet) -> list[nn.Linear]:
    return list(net.linears) + ([net.head] if isinstance(net, BPNet) else [])


class BatchedTrainer(Trainer):
    """N seeds of one configuration. The position (stage, epoch, batch) is shared; `end_epoch()`
    returns one EpochMetrics per seed. `self.net` is seed 0's network, `self.nets[i]` seed i's: they
    hold the stacked weights' slices after `sync_nets()` (for evaluation and checkpoints)."""

    def __init__(
        self, cfgs: Sequence[RunConfig], data: PreparedData, device: torch.device, cuda_graph: bool = False
    ) -> None:
        super().__init__(cfgs[0], data, device)
        self.graph = _GraphedStep(self) if cuda_graph and device.type == "cuda" else None
        self.cfgs = list(cfgs)
        self.seeds = [c.seed for c in cfgs]
        self.nets = [self.net] + [build_net(c, data, device) for c in cfgs[1:]]
        stacks = list(zip(*(_linears(net) for net in self.nets)))  # per layer: that layer of every seed
        self.weights = [nn.Parameter(torch.stack([lin.weight.detach() for lin in layer])) for layer in stacks]
        self.biases = [nn.Parameter(torch.stack([lin.bias.detach() for lin in layer])) for layer in stacks]
        cfg = self.cfg
        self.sequential = cfg.model == "ff" and cfg.schedule == "sequential"
        if cfg.model == "ff":  # one Adam per layer, as a separate FF run
            groups = [[w, b] for w, b in zip(self.weights, self.biases)]
        else:  # one Adam over the parameters in the order of net.parameters()
            groups = [[p for wb in zip(self.weights, self.biases) for p in wb]]
        self.optimizers = [_adam(params, cfg.lr, capturable=self.graph is not None) for params in groups]
        self.metric_width = 1 if cfg.model == "bp" else cfg.layers
        self._seed_rows = torch.arange(len(cfgs), device=device)[:, None]
        self._sums_buffer: torch.Tensor | None = None
        if cfg.model != "bp":
            self.pos_in = embed_labels(data.train_x, data.train_y, data.v_train, data.shape)  # one for all seeds
            self.neg_in = self._fixed_negatives() if cfg.negatives == "fixed" else None  # (N, M, D)
            self.stage_pos, self.stage_neg = self.pos_in, self.neg_in

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    # ---- data ------------------------------------------------------------------------------
    def _fixed_negatives(self) -> torch.Tensor:
        data, parts = self.data, []
        for seed in self.seeds:
            image, wrong = fixed_negative_pairs(data.train_y.cpu(), data.seen_labels, _generator(seed, -1))
            parts.append(
                embed_labels(data.train_x[image.to(self.device)], wrong.to(self.device), data.v_train, data.shape)
            )
        return torch.stack(parts)

    def _rows(self, inputs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each seed's batch (N, B, D) from inputs shared by all seeds (M, D) or per seed (N, M, D)."""
        return inputs[idx] if inputs.dim() == 2 else inputs[self._seed_rows, idx]

    def _begin_epoch(self) -> torch.Tensor:
        gens = [_generator(seed, self.stage, self.epoch) for seed in self.seeds]
        # stored (M, N) so that a row slice is a batch: column i is seed i's permutation
        perm = torch.stack([torch.randperm(self.num_examples, generator=g) for g in gens], dim=1).to(self.device)
        self._perm = perm
        if self.cfg.model != "bp" and self.cfg.negatives == "resample":  # drawn after the permutation, as separately
            data = self.data
            wrong = [resampled_negative_labels(data.train_y.cpu(), data.seen_labels, g) for g in gens]
            neg = torch.stack([embed_labels(data.train_x, w.to(self.device), data.v_train, data.shape) for w in wrong])
            self.neg_in = self._refill(self.neg_in, neg)
            stage_neg = self._layer_inputs(self.neg_in, self.stage) if self.sequential else self.neg_in
            self.stage_neg = self._refill(self.stage_neg, stage_neg)
        if self._sums is None:
            sums = torch.zeros(self.num_seeds, 3, self.metric_width, device=self.device)
            self._sums = self._sums_buffer = self._refill(self._sums_buffer, sums)
            self._samples, self._seen = 0, 0
        return perm

    def _refill(self, old: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
        """With a CUDA graph, new values go into the tensor the graph reads (same shape); else the new one."""
        if self.graph is None or old is None or old is new or old.shape != new.shape:
            return new
        return old.copy_(new)

    def _begin_stage(self) -> None:
        if self.sequential:
            self.stage_pos = self._layer_inputs(self.pos_in, self.stage)
            if self.cfg.negatives == "fixed":
                self.stage_neg = self._layer_inputs(_drawn(self.neg_in), self.stage)

    @torch.no_grad()
    def _layer_inputs(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """Outputs (N, M, H) of layers 0..upto-1 on x, (M, D) or (N, M, D), in chunks; x itself if upto is 0."""
        if upto == 0:
            return x
        parts = []
        for start in range(0, x.shape[-2], INPUT_CHUNK):
            h = x[..., start : start + INPUT_CHUNK, :]
            h = h.expand(self.num_seeds, -1, -1) if h.dim() == 2 else h
            for layer in range(upto):
                h = self._ff_layer(layer, h)
            parts.append(h)
        return torch.cat(parts, dim=1)

    # ---- the batched networks --------------------------------------------------------------
    def _affine(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """x (N, B, in) → x W_iᵀ + b_i for every seed i: one batched matmul."""
        return torch.baddbmm(self.biases[layer].unsqueeze(1), x, self.weights[layer].transpose(1, 2))

    def _ff_layer(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self._affine(layer, normalize(x, self.cfg.effective_normalize)))

    # ---- training --------------------------------------------------------------------------
    def _train_batch(self, idx: torch.Tensor) -> None:
        idx = idx.T  # (N, B)
        n = idx.shape[1]
        if self.cfg.model == "ff":
            stats = self._ff_batch(idx, n)
        elif self.cfg.model == "bpff":
            stats = self._bpff_batch(idx, n)
        else:
            stats = self._bp_batch(idx, n)
        sums = self._epoch_sums  # updated in place: a captured CUDA graph keeps reading this tensor
        if self.sequential:  # only the layer in training has metrics
            sums[:, :, self.stage] += stats[:, :, 0] * n
        else:
            sums += stats * n

    def step(self) -> bool:
        """Train one batch for every seed (eagerly, or by replaying the captured CUDA graph)."""
        perm = self._perm if self._perm is not None else self._begin_epoch()
        b = self.cfg.effective_batch_size
        idx = perm[self.batch * b : (self.batch + 1) * b]
        if self.graph is None or not self.graph.run(idx):
            with matmul_precision(self.cfg.precision, self.device):
                self._train_batch(idx)
        n = idx.shape[0]
        self._seen += n
        self._samples += n if self.cfg.model == "bp" else 2 * n
        self.batch += 1
        return self.batch >= self.batches_per_epoch

    def _step(self, optimizer: torch.optim.Optimizer, losses: torch.Tensor) -> None:
        """Each seed's loss only reaches its own slice, so the sum's gradient is every seed's gradient."""
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()

    def _ff_batch(self, idx: torch.Tensor, n: int) -> torch.Tensor:
        x = torch.cat([self._rows(self.stage_pos, idx), self._rows(_drawn(self.stage_neg), idx)], dim=1)  # (N, 2B, D)
        layers = [self.stage] if self.sequential else range(self.cfg.layers)
        stats = []
        for layer in layers:
            h = self._ff_layer(layer, x)
            g = goodness(h, self.cfg.goodness)
            loss = goodness_loss(g[:, :n], g[:, n:], self.cfg.loss, self.cfg.threshold)  # (N,)
            self._step(self.optimizers[layer], loss)
            g = g.detach()
            stats.append(torch.stack([loss.detach(), g[:, :n].mean(1), g[:, n:].mean(1)], dim=1))
            x = h.detach()
        return torch.stack(stats, dim=2)  # (N, 3, layers trained)

    def _bpff_batch(self, idx: torch.Tensor, n: int) -> torch.Tensor:
        h = torch.cat([self._rows(self.pos_in, idx), self._rows(_drawn(self.neg_in), idx)], dim=1)
        gs = []
        for layer in range(self.cfg.layers):
            h = self._ff_layer(layer, h)
            gs.append(goodness(h, self.cfg.goodness))
        g = torch.stack(gs, dim=2)  # (N, 2B, L)
        loss = goodness_loss(g[:, :n].sum(2), g[:, n:].sum(2), self.cfg.loss, self.cfg.threshold)
        self._step(self.optimizers[0], loss)
        g = g.detach()
        per_layer_loss = loss.detach()[:, None].expand(-1, self.cfg.layers)  # the one loss in every layer's slot
        return torch.stack([per_layer_loss, g[:, :n].mean(1), g[:, n:].mean(1)], dim=1)

    def _bp_batch(self, idx: torch.Tensor, n: int) -> torch.Tensor:
        h, y = self.data.train_x[idx], self.data.train_y[idx]
        hs = []
        for layer in range(self.cfg.layers):
            h = F.relu(self._affine(layer, h))
            hs.append(h)
        logits = self._affine(self.cfg.layers, h)  # the head
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        loss = ce.view(self.num_seeds, n).mean(1)
        if self.cfg.act_l1:
            loss = loss + self.cfg.act_l1 * sum(a.abs().sum(dim=(1, 2)) for a in hs)
        self._step(self.optimizers[0], loss)
        zero = torch.zeros_like(loss)
        return torch.stack([loss.detach(), zero, zero], dim=1)[:, :, None]

    def end_epoch(self) -> list[EpochMetrics]:  # type: ignore[override]
        """Each seed's metrics of the epoch (one host sync), then advance the position."""
        sums = (self._epoch_sums / max(self._seen, 1)).cpu().tolist()
        metrics = [EpochMetrics(loss=s[0], g_pos=s[1], g_neg=s[2], samples=self._samples) for s in sums]
        self._advance()
        return metrics

    # ---- per-seed views -------------------------------------------------------------------
    @torch.no_grad()
    def sync_nets(self) -> None:
        """Copy every seed's slice of the stacked weights into its own network."""
        for i, net in enumerate(self.nets):
            for layer, lin in enumerate(_linears(net)):
                lin.weight.copy_(self.weights[layer][i])
                lin.bias.copy_(self.biases[layer][i])

    def seed_state(self, i: int) -> dict[str, Any]:
        """Seed i's trainer state, in the format of a separate run's checkpoint (call `sync_nets()` first)."""
        state: dict[str, Any] = {
            "position": [self.stage, self.epoch, self.batch],
            "net": self.nets[i].state_dict(),
            "optimizers": [_seed_optimizer_state(opt.state_dict(), i) for opt in self.optimizers],
            "samples": self._samples,
            "seen": self._seen,
        }
        if self._sums is not None:
            state["sums"] = self._sums[i].detach().cpu()
        return state

    def load_seed_states(self, states: Sequence[dict[str, Any]]) -> None:
        """Continue from each seed's checkpoint; they must stand at one position (as a batched run leaves them)."""
        positions = {tuple(int(v) for v in s["position"]) for s in states}
        if len(positions) != 1:
            raise CheckpointError(
                f"the seeds' checkpoints stand at different positions {sorted(positions)}; resume them one by one"
            )
        for net, state in zip(self.nets, states):
            net.load_state_dict(state["net"])
        with torch.no_grad():
            for layer, lins in enumerate(zip(*(_linears(net) for net in self.nets))):
                self.weights[layer].copy_(torch.stack([lin.weight for lin in lins]))
                self.biases[layer].copy_(torch.stack([lin.bias for lin in lins]))
        for k, opt in enumerate(self.optimizers):
            opt.load_state_dict(_stacked_optimizer_state([s["optimizers"][k] for s in states]))
            for group in opt.param_groups:
                group["capturable"] = self.graph is not None
        self.stage, self.epoch, self.batch = positions.pop()
        if not self.done and self.stage > 0:
            self._begin_stage()
        self._perm = None
        if self.batch > 0 and all("sums" in s for s in states):
            self._sums = torch.stack([s["sums"] for s in states]).to(self.device)
            self._samples, self._seen = int(states[0]["samples"]), int(states[0]["seen"])
        else:
            self._sums = None

    def view(self, i: int) -> SeedView:
        return SeedView(self, i)


class _GraphedStep:
    """The training step of full batches captured once in a CUDA graph and replayed (an option).

    A few eager steps first (on a side stream, as CUDA graphs need: Adam's state and cuBLAS's
    workspace exist before capture), then the step is captured reading a fixed index buffer and
    replayed with each batch's indices copied in. Captured again when the tensors it reads change
    (a new FF layer's inputs); the epoch's permutation, negatives and metric sums are refilled in place.
    """

    WARMUP_STEPS = 3

    def __init__(self, trainer: BatchedTrainer) -> None:
        self.trainer = trainer
        self.graph: torch.cuda.CUDAGraph | None = None
        self.key: tuple[int, ...] | None = None
        self.index = torch.empty(0)
        self.eager_steps = 0

    def _reads(self) -> tuple[int, ...]:
        t = self.trainer
        inputs = (t.stage_pos, t.stage_neg) if t.cfg.model != "bp" else ()
        return (t.stage, id(t._sums), *(id(x) for x in inputs))

    def run(self, idx: torch.Tensor) -> bool:
        """Train on batch `idx` through the graph; False when it must run eagerly (a short last batch, warm-up)."""
        t = self.trainer
        if idx.shape[0] != t.cfg.effective_batch_size:
            return False
        key = self._reads()
        if key != self.key:
            self.graph, self.key, self.eager_steps = None, key, 0
        if self.graph is None:
            if self.eager_steps < self.WARMUP_STEPS:
                self.eager_steps += 1
                side = torch.cuda.Stream()  # type: ignore[no-untyped-call]  # torch leaves Stream.__new__ unannotated
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side), matmul_precision(t.cfg.precision, t.device):
                    t._train_batch(idx)
                torch.cuda.current_stream().wait_stream(side)
                return True
            self.index = idx.clone()
            for opt in t.optimizers:
                opt.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), matmul_precision(t.cfg.precision, t.device, autocast_cache=False):
                t._train_batch(self.index)  # recorded, not run: the replay below trains on this batch
        self.index.copy_(idx)
        self.graph.replay()
        return True


def _drawn(negatives: torch.Tensor | None) -> torch.Tensor:
    """The negatives: fixed ones exist from the start, resampled ones from each epoch's first step."""
    if negatives is None:
        raise RuntimeError("no negatives drawn yet: call step() first")
    return negatives


def _seed_optimizer_state(state: dict[str, Any], i: int) -> dict[str, Any]:
    """Seed i's slice of a stacked Adam's state dict (the shared step count as it is)."""
    per_param = {
        key: {name: value.clone() if name == "step" else value[i].clone() for name, value in s.items()}
        for key, s in state["state"].items()
    }
    groups = copy.deepcopy(state["param_groups"])
    for group in groups:
        group["capturable"] = False  # as a separate run's Adam
    return {"state": per_param, "param_groups": groups}


def _stacked_optimizer_state(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    first = states[0]
    stacked = {
        key: {
            name: value if name == "step" else torch.stack([s["state"][key][name] for s in states])
            for name, value in per_param.items()
        }
        for key, per_param in first["state"].items()
    }
    return {"state": stacked, "param_groups": copy.deepcopy(first["param_groups"])}


class SeedView:
    """Seed i of a batched trainer, as a session sees a trainer: position, evaluation, checkpoint state."""

    def __init__(self, batched: BatchedTrainer, i: int) -> None:
        self.batched, self.i = batched, i
        self.cfg, self.data, self.net = batched.cfgs[i], batched.data, batched.nets[i]
        self.num_stages = batched.num_stages

    @property
    def stage(self) -> int:
        return self.batched.stage

    @property
    def epoch(self) -> int:
        return self.batched.epoch

    @property
    def batch(self) -> int:
        return self.batched.batch

    @property
    def epochs_done(self) -> int:
        return self.batched.epochs_done

    @property
    def done(self) -> bool:
        return self.batched.done

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        if isinstance(self.net, BPNet):
            return bp_evaluation(self.net, x, y)
        return goodness_evaluation(self.net, self.cfg, self.data, x, y)

    def representations(self, x: torch.Tensor, y: torch.Tensor | None) -> list[torch.Tensor]:
        if isinstance(self.net, BPNet):
            return bp_representations(self.net, x)
        return goodness_representations(self.net, self.data, x, y)

    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(lin.weight.detach(), lin.bias.detach()) for lin in self.net.linears]

    def state_dict(self) -> dict[str, Any]:
        return self.batched.seed_state(self.i)


# ---- running a batch of runs ----------------------------------------------------------------
def check_batchable(configs: Sequence[RunConfig]) -> None:
    """Runs can share one batched model when they differ only in seed (and bookkeeping); else ConfigError."""
    if not configs:
        raise ConfigError("no runs to train together")
    reference = to_dict(configs[0])
    for cfg in configs[1:]:
        current = to_dict(cfg)
        differ = sorted(k for k in reference if k not in PER_RUN_KEYS and reference[k] != current[k])
        if differ:
            raise ConfigError(f"runs trained together must differ only in seed; these differ in {', '.join(differ)}")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) < len(seeds):
        raise ConfigError(f"runs trained together need distinct seeds, got {seeds}")


def run_batched(
    configs: Sequence[RunConfig],
    run_dirs: Sequence[Path],
    *,
    force: bool = False,
    resume: bool = False,
    on_snapshot: Callable[[int, Snapshot], None] | None = None,
) -> list[Session]:
    """Train runs that differ only by seed as one batched model; each writes its own run directory.

    With `resume`, continue from the checkpoints the run directories hold (one position for all).
    `on_snapshot(i, snapshot)` is called for run i's snapshots. Returns the runs' sessions (never
    started as threads): `state`, `error` and `final` tell how each ended. A failure that concerns
    one seed (a NaN loss) ends that seed only.
    """
    check_batchable(configs)
    if len(configs) != len(run_dirs):
        raise ConfigError(f"{len(configs)} runs but {len(run_dirs)} run directories")
    if resume:
        sessions = [Session.resume_from(d, device=cfg.device) for cfg, d in zip(configs, run_dirs)]
    else:
        sessions = [Session(cfg, d, force=force) for cfg, d in zip(configs, run_dirs)]
    for i, session in enumerate(sessions):
        if on_snapshot is not None:
            session.subscribe(partial(on_snapshot, i))
    try:
        _train(sessions, resume)
    except (DatasetError, CheckpointError) as exc:  # expected: the message says the fix
        for session in sessions:
            session._fail(_first_line(exc))
    except Exception as exc:  # out of memory, a bug: one line, the traceback in each run directory
        text = traceback.format_exc()
        for session in sessions:
            (session.run_dir / "error.log").write_text(text)
            session._fail(f"{type(exc).__name__}: {_first_line(exc)} (traceback in {session.run_dir / 'error.log'})")
    finally:  # these sessions never run a thread of their own, which would let go of their run directories
        for session in sessions:
            session.release()
    return sessions


def _train(sessions: list[Session], resume: bool) -> None:
    configs = [s.config for s in sessions]
    cfg, device = configs[0], sessions[0].device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for session in sessions:
        session._publish_state("starting", f"loading data (one batched model for {len(sessions)} seeds)")
    data = prepare(cfg, device)
    trainer = BatchedTrainer(configs, data, device)
    if resume:
        trainer.load_seed_states([s._restore_state() for s in sessions])
    views = [trainer.view(i) for i in range(len(sessions))]
    subsets = [live_subset(data.test_y.shape[0], c.analysis_samples, c.seed) for c in configs]
    live = list(range(len(sessions)))  # seeds still training
    for session in sessions:
        session.state = "running"
    start, training = time.perf_counter(), True
    try:
        while not trainer.done and live:
            if not trainer.step():
                continue
            stage = trainer.stage
            metrics = trainer.end_epoch()
            synchronize(device)
            elapsed, training = time.perf_counter() - start, False  # evaluation and writing are not training time
            trainer.sync_nets()
            for i in list(live):
                try:
                    sessions[i]._record_epoch(views[i], metrics[i], stage, elapsed, subsets[i])
                except TrainingFailed as exc:
                    sessions[i]._fail(str(exc))
                    live.remove(i)
            start, training = time.perf_counter(), True
    except KeyboardInterrupt:
        trainer.sync_nets()
        for i in live:
            sessions[i]._wall += time.perf_counter() - start if training else 0.0
            sessions[i]._save(views[i])
            sessions[i]._publish_state(
                "stopped", f"checkpoint saved; continue with `ffterm resume {sessions[i].run_dir}`"
            )
        raise
    for i in live:
        sessions[i]._finish(views[i])
