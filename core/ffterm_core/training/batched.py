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
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ffterm_core.config import ConfigError, RunConfig, to_dict
from ffterm_core.data.prepare import PreparedData
from ffterm_core.store.checkpoint import CheckpointError
from ffterm_core.store.snapshot import Snapshot
from ffterm_core.training.loop import run_training
from ffterm_core.training.networks import BPNet, FFNet, affine_layers, stacked
from ffterm_core.training.session import Session
from ffterm_core.training.trainers import BaseTrainer, ReadsNetwork, TrainerView

# settings that may differ between the runs of one batch: they do not change what is trained
PER_RUN_KEYS = frozenset(
    {"seed", "name", "description", "eval_every", "analysis_samples", "checkpoint_minutes", "final_pvalues"}
)


class BatchedTrainer(BaseTrainer):
    """N seeds of one configuration. The position (stage, epoch, batch) is shared; `end_epoch()`
    returns one EpochMetrics per seed. `self.net` holds the stacked weights, `self.nets[i]` seed i's
    network: it holds the stacked weights' slice after `sync_nets()` (for evaluation and checkpoints)."""

    def __init__(
        self, cfgs: Sequence[RunConfig], data: PreparedData, device: torch.device, cuda_graph: bool | None = None
    ) -> None:
        super().__init__(cfgs, data, device, cuda_graph)
        self._views = [SeedView(self, i) for i in range(len(cfgs))]

    def _network(self, nets: list[FFNet | BPNet]) -> FFNet | BPNet:
        return stacked(nets)

    def _seeded(self, per_seed: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
        return torch.stack(per_seed, dim=dim)

    def _per_seed(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(self.num_seeds, -1, -1) if x.dim() == 2 else x

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    @property
    def weights(self) -> list[torch.Tensor]:
        """Each layer's stacked weights (N, out, in), the BP head last."""
        return [lin.weight for lin in affine_layers(self.net)]

    @property
    def biases(self) -> list[torch.Tensor]:
        return [lin.bias for lin in affine_layers(self.net)]

    # ---- per-seed views -------------------------------------------------------------------
    @torch.no_grad()
    def sync_nets(self) -> None:
        """Copy every seed's slice of the stacked weights into its own network."""
        for i, net in enumerate(self.nets):
            for own, both in zip(affine_layers(net), affine_layers(self.net)):
                own.weight.copy_(both.weight[i])
                own.bias.copy_(both.bias[i])

    def views(self) -> list[TrainerView]:
        return list(self._views)

    def view(self, i: int) -> SeedView:
        return self._views[i]

    def load_states(self, states: Sequence[dict[str, Any]]) -> None:
        self.load_seed_states(states)

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
            for layer, lins in enumerate(zip(*(affine_layers(net) for net in self.nets))):
                both = affine_layers(self.net)[layer]
                both.weight.copy_(torch.stack([lin.weight for lin in lins]))
                both.bias.copy_(torch.stack([lin.bias for lin in lins]))
        self._load_optimizers(
            [_stacked_optimizer_state([s["optimizers"][k] for s in states]) for k in range(len(self.optimizers))]
        )
        sums = torch.stack([s["sums"] for s in states]) if all("sums" in s for s in states) else None
        self._restore_position(positions.pop(), sums, int(states[0].get("samples", 0)), int(states[0].get("seen", 0)))


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
    stacked_state = {
        key: {
            name: value if name == "step" else torch.stack([s["state"][key][name] for s in states])
            for name, value in per_param.items()
        }
        for key, per_param in first["state"].items()
    }
    return {"state": stacked_state, "param_groups": copy.deepcopy(first["param_groups"])}


class SeedView(ReadsNetwork):
    """Seed i of a batched trainer, as a session sees a run: position, evaluation, checkpoint state."""

    def __init__(self, batched: BatchedTrainer, i: int) -> None:
        self.batched, self.i = batched, i
        self.algorithm, self.cfg, self.data = batched.algorithm, batched.cfgs[i], batched.data
        self.net = batched.nets[i]

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
        run_training(
            sessions,
            sessions[0].device,
            lambda data: BatchedTrainer([s.config for s in sessions], data, sessions[0].device),
            resume=resume,
        )
    finally:  # these sessions never run a thread of their own, which would let go of their run directories
        for session in sessions:
            session.release()
    return sessions
