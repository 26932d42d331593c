"""Seeds trained together as one batched model give each seed's separate run (tiny synthetic cases)."""

import json

import pytest
import torch

from ffterm_core.config import ConfigError, RunConfig
from ffterm_core.data.prepare import prepare
from ffterm_core.store import rundir
from ffterm_core.store.checkpoint import load_checkpoint
from ffterm_core.suites.pooling import summarize
from ffterm_core.training.batched import BatchedTrainer, run_batched
from ffterm_core.training.session import Session
from ffterm_core.training.trainers import make_trainer

CPU = torch.device("cpu")
SEEDS = (3, 8)

# The settings covered. Not covered on purpose: l1 goodness with resampled negatives, where a pair's
# positive and negative share the image, so most weight gradients cancel to rounding noise that Adam
# scales up to full steps; there a separate run is not reproducible across BLAS libraries either.
CASES = {
    "ff-sequential": dict(model="ff"),
    "ff-simultaneous-resample": dict(model="ff", schedule="simultaneous", negatives="resample"),
    "ff-sequential-resample-symmetric": dict(model="ff", negatives="resample", loss="symmetric"),
    "bpff": dict(model="bpff", lr=1e-3),
    "bp-l1": dict(model="bp", lr=1e-3, act_l1=1e-4),
}


def configs(device: str = "cpu", **kw) -> list[RunConfig]:
    base = dict(dataset="synthetic", train_limit=1200, test_limit=300, epochs=2, batch_size=300, hidden=24)
    base.update(device=device, analysis_samples=100)
    base.update(kw)
    return [RunConfig(seed=s, final_pvalues=False, **base) for s in SEEDS]


def train(trainer):
    """Train to the end; the per-epoch metrics (a list per seed for the batched trainer)."""
    out = []
    while not trainer.done:
        if trainer.step():
            out.append(trainer.end_epoch())
    return out


def metric_values(m):
    return [v for v in m.loss + m.g_pos + m.g_neg if v is not None]


def check_against_separate(cfgs, device):
    data = prepare(cfgs[0], device)
    batched = BatchedTrainer(cfgs, data, device)
    batched_metrics = train(batched)
    batched.sync_nets()
    for i, cfg in enumerate(cfgs):
        separate = make_trainer(cfg, data, device)
        for epoch, (m,) in enumerate(train(separate)):
            got, want = metric_values(batched_metrics[epoch][i]), metric_values(m)
            assert len(got) == len(want) > 0
            assert max(abs(a - b) for a, b in zip(got, want)) < 1e-4, (cfg.seed, epoch)
        ours = batched.view(i).evaluate(data.test_x, data.test_y)
        theirs = separate.evaluate(data.test_x, data.test_y)
        assert torch.equal(ours.predictions, theirs.predictions)
        assert ours.accuracy == theirs.accuracy
    return batched


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_batched_seeds_match_their_separate_runs(kw):
    batched = check_against_separate(configs(**kw), CPU)
    # the seeds really are different networks
    assert not torch.equal(batched.nets[0].linears[0].weight, batched.nets[1].linears[0].weight)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_batched_seeds_match_their_separate_runs_on_cuda(kw):
    check_against_separate(configs(device="cuda", **kw), torch.device("cuda"))


def test_a_seed_checkpoint_continues_as_a_separate_run():
    """Seed i's state after a batched epoch, loaded into an ordinary trainer, trains on exactly as its own run."""
    cfgs = configs(model="ff", schedule="simultaneous", epochs=3)
    data = prepare(cfgs[0], CPU)
    batched = BatchedTrainer(cfgs, data, CPU)
    while not batched.step():
        pass
    batched.end_epoch()
    batched.sync_nets()
    state = batched.seed_state(1)
    assert state["position"] == [0, 1, 0]
    assert state["optimizers"][0]["state"][0]["exp_avg"].shape == batched.nets[1].linears[0].weight.shape

    continued = make_trainer(cfgs[1], data, CPU)
    continued.load_state_dict(state)
    rest = train(continued)
    uninterrupted = make_trainer(cfgs[1], data, CPU)
    full = train(uninterrupted)
    assert len(rest) == 2
    for (a,), (b,) in zip(rest, full[1:]):
        assert max(abs(x - y) for x, y in zip(metric_values(a), metric_values(b))) < 1e-4
    x, y = data.test_x, data.test_y
    assert torch.equal(continued.evaluate(x, y).predictions, uninterrupted.evaluate(x, y).predictions)


def test_batched_resume_from_seed_states_repeats_the_uninterrupted_run():
    cfgs = configs(model="ff", epochs=2)  # sequential: the resumed run rebuilds layer 2's inputs
    data = prepare(cfgs[0], CPU)
    first = BatchedTrainer(cfgs, data, CPU)
    for _ in range(5):  # 4 batches an epoch: into the second epoch of layer 1
        first.step() and first.end_epoch()
    first.sync_nets()
    states = [first.seed_state(i) for i in range(2)]
    assert states[0]["position"] == [0, 1, 1] and "sums" in states[0]

    resumed = BatchedTrainer(cfgs, data, CPU)
    resumed.load_seed_states(states)
    train(first)
    train(resumed)
    for a, b in zip(first.weights + first.biases, resumed.weights + resumed.biases):
        assert torch.equal(a, b)


def test_run_batched_writes_ordinary_run_directories(tmp_path):
    cfgs = configs(model="ff", layers=2, epochs=1)
    dirs = [tmp_path / f"seed-{s}" for s in SEEDS]
    seen = []
    sessions = run_batched(cfgs, dirs, on_snapshot=lambda i, snap: seen.append((i, snap.kind)))
    assert [s.state for s in sessions] == ["finished", "finished"]
    assert (0, "final") in seen and (1, "final") in seen

    # the same seed run on its own: the same directory contents
    alone = Session(cfgs[1], tmp_path / "alone")
    alone.start()
    alone.join(60)
    assert alone.state == "finished"
    batched_final = json.loads((dirs[1] / rundir.FINAL).read_text())
    assert batched_final["test_accuracy"] == alone.final["test_accuracy"]
    assert batched_final["layer_accuracy"] == alone.final["layer_accuracy"]
    assert batched_final.keys() == alone.final.keys()
    ours, theirs = rundir.read_snapshots(dirs[1]), rundir.read_snapshots(tmp_path / "alone")
    assert [(s.kind, s.epoch) for s in ours] == [(s.kind, s.epoch) for s in theirs]
    assert ours[0].loss == pytest.approx(theirs[0].loss, abs=1e-4)
    ckpt = load_checkpoint(dirs[1] / rundir.CHECKPOINT, cfgs[1])
    assert ckpt["trainer"]["position"] == [2, 0, 0]

    summary = summarize(dirs)  # the suite's summary reads them as any runs
    assert summary["runs"] == 2 and summary["seeds"] == list(SEEDS)


def test_interrupted_batched_run_resumes(tmp_path, monkeypatch):
    cfgs = configs(model="bpff", lr=1e-3, epochs=3)
    dirs = [tmp_path / f"seed-{s}" for s in SEEDS]
    step = BatchedTrainer.step

    def interrupted_after_first_epoch(self):  # Ctrl-C reaches the training thread, in a step
        if self.epochs_done == 1 and self.batch == 1:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(BatchedTrainer, "step", interrupted_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_batched(cfgs, dirs)
    monkeypatch.setattr(BatchedTrainer, "step", step)
    assert all(not rundir.is_finished(d) and (d / rundir.CHECKPOINT).exists() for d in dirs)
    for d in dirs:  # the stop waited for the snapshot worker: epoch 1's line, then the stop's
        assert [(s.kind, s.epoch) for s in rundir.read_snapshots(d)] == [("live", 1), ("state", 1)]
    resumed = run_batched(cfgs, dirs, resume=True)
    assert [s.state for s in resumed] == ["finished", "finished"]

    whole = run_batched(cfgs, [tmp_path / f"whole-{s}" for s in SEEDS])
    for a, b in zip(resumed, whole):
        assert a.final["test_accuracy"] == b.final["test_accuracy"]


def test_only_runs_that_differ_by_seed_train_together(tmp_path):
    a, b = configs(model="ff")
    with pytest.raises(ConfigError, match="differ only in seed; these differ in lr"):
        run_batched([a, b.replace(lr=0.5)], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ConfigError, match="distinct seeds"):
        run_batched([a, a], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()


def test_a_seed_whose_loss_becomes_nan_fails_alone(tmp_path, monkeypatch):
    end_epoch = BatchedTrainer.end_epoch

    def nan_for_the_second_seed(self):
        metrics = end_epoch(self)
        metrics[1].loss[0] = float("nan")
        return metrics

    monkeypatch.setattr(BatchedTrainer, "end_epoch", nan_for_the_second_seed)
    cfgs = configs(model="ff", schedule="simultaneous")
    dirs = [tmp_path / f"seed-{s}" for s in SEEDS]
    first, second = run_batched(cfgs, dirs)
    assert first.state == "finished" and rundir.is_finished(dirs[0])
    assert second.state == "failed" and "NaN" in second.error and not rundir.is_finished(dirs[1])
