"""The CUDA path (skipped without CUDA; scripts/gpu-check runs them on a GPU machine)."""

import pytest
import torch

from ffterm_core.config import RunConfig
from ffterm_core.data.prepare import prepare
from ffterm_core.training.batched import BatchedTrainer
from ffterm_core.training.session import Session
from ffterm_core.training.trainers import Trainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = torch.device("cuda")


def tiny(**kw) -> RunConfig:
    base = dict(dataset="synthetic", epochs=2, batch_size=100, hidden=64, device="cuda", analysis_samples=200)
    base.update(kw)
    return RunConfig(final_pvalues=False, **base)


@pytest.mark.parametrize(
    "kw",
    [
        dict(model="ff"),
        dict(model="ff", schedule="simultaneous", negatives="resample"),
        dict(model="bpff"),
        dict(model="bp"),
    ],
    ids=["ff", "ff-simultaneous-resample", "bpff", "bp"],
)
@pytest.mark.parametrize("batched", [False, True], ids=["one-seed", "batched"])
def test_batches_inside_an_epoch_never_wait_for_the_host(kw, batched):
    """Data resident on the GPU, metrics accumulated there: no host synchronisation between epoch ends."""
    cfg = tiny(**kw)
    data = prepare(cfg, CUDA)
    assert data.train_x.is_cuda and data.test_x.is_cuda
    seeds = [cfg, cfg.replace(seed=1)]  # eager: a captured step's capture synchronises once, by design
    trainer = (
        BatchedTrainer(seeds, data, CUDA, cuda_graph=False) if batched else Trainer(cfg, data, CUDA, cuda_graph=False)
    )
    trainer.step()  # the epoch's permutation and negatives are drawn on the host, once an epoch
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            assert not trainer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_lower_precisions_train_on_cuda(tmp_path, precision):
    if precision == "tf32" and torch.cuda.get_device_capability()[0] < 8:
        pytest.skip("TF32 needs an Ampere or newer GPU")
    s = Session(tiny(epochs=6, precision=precision), tmp_path / precision)
    s.start()
    s.join(120)
    assert s.state == "finished", s.error
    assert s.final["test_accuracy"] > 0.8
    assert s.final["matmul_precision"] == precision
    assert torch.backends.cuda.matmul.fp32_precision != "tf32"  # the setting was scoped to training


def test_cuda_run_matches_the_cpu_run(tmp_path):
    """The same seed on both devices: the same learning curve to float rounding."""
    finals = {}
    for device in ("cpu", "cuda"):
        s = Session(tiny(device=device, layers=2), tmp_path / device)
        s.start()
        s.join(120)
        assert s.state == "finished", s.error
        finals[device] = s.final
    assert finals["cuda"]["test_accuracy"] == pytest.approx(finals["cpu"]["test_accuracy"], abs=0.02)


@pytest.mark.parametrize(
    "kw",
    [
        dict(model="ff"),
        dict(model="ff", schedule="simultaneous", negatives="resample"),
        dict(model="bpff"),
        dict(model="bp"),
    ],
    ids=["ff", "ff-simultaneous-resample", "bpff", "bp"],
)
@pytest.mark.parametrize("batched", [False, True], ids=["one-seed", "batched"])
def test_cuda_graph_step_equals_the_eager_step(kw, batched):
    """The captured step (on by default on CUDA) trains as the eager one does."""
    cfgs = [tiny(**kw), tiny(seed=1, **kw)]
    data = prepare(cfgs[0], CUDA)
    assert Trainer(cfgs[0], data, CUDA).graph is not None  # the default
    runs = {}
    for graphed in (False, True):
        if batched:
            trainer = BatchedTrainer(cfgs, data, CUDA, cuda_graph=graphed)
        else:
            trainer = Trainer(cfgs[0], data, CUDA, cuda_graph=graphed)
        assert (trainer.graph is not None) is graphed
        metrics = []
        while not trainer.done:
            if trainer.step():
                metrics.append(trainer.end_epoch())
        runs[graphed] = (trainer, metrics)
    (eager, m_eager), (graph, m_graph) = runs[False], runs[True]
    assert graph.graph.graph is not None  # the step really was captured and replayed
    for a, b in zip(eager.net.parameters(), graph.net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for epoch_a, epoch_b in zip(m_eager, m_graph):
        for a, b in zip(epoch_a, epoch_b):
            assert a.loss == pytest.approx(b.loss, abs=1e-4)
