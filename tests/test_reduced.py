"""A layer reduced where its representations live gives the analysis the host reduction gives."""

import numpy as np
import pytest
import torch

from ffterm_core.analysis import analyze_layer
from ffterm_core.analysis.reduced import reduce_on_device


def layer(seed: int, rows: int = 90, units: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse class-structured ReLU activations (some all-zero rows, one class absent), weights and bias."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 9, (rows,), generator=gen)  # class 9 absent
    x = torch.relu(torch.randn(rows, units, generator=gen) - 1.0)
    x[torch.arange(rows), (y * 4) % units] += 3.0  # each class its own strong unit
    x[:3] = 0.0
    w, b = torch.randn(units, 20, generator=gen), torch.randn(units, generator=gen)
    return x, y, w, b


def approx_equal(a, b) -> None:
    """Equal JSON-ready records, floats to 1e-12 (the device sums in another order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            approx_equal(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            approx_equal(u, v)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12)
    else:
        assert a == b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_device_reduction_gives_the_host_analysis(seed):
    x, y, w, b = layer(seed)
    host = analyze_layer(x, y, 10, w, b, rows_per_class=4)
    reduced = reduce_on_device(x, y, 10, 4)
    assert reduced.ignored_rows == 3 and reduced.counts[9] == 0 and np.isnan(reduced.means[9]).all()
    assert reduced.map_rows.shape == (len(reduced.map_index), 40) and len(reduced.map_index) <= 4 * 9
    approx_equal(host, analyze_layer(x, y, 10, w, b, rows_per_class=4, reduced=reduced))
    assert host["ensembles"] is not None  # the case compared has ensembles, not only undefined ones


def test_device_reduction_hand_computed():
    # rows: one-hot (Hoyer 1), constant (Hoyer 0), zero (left out); classes 0, 1, 1
    x = torch.tensor([[2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    r = reduce_on_device(x, torch.tensor([0, 1, 1]), 3, 8)
    assert r.sparsity == pytest.approx(0.5) and r.ignored_rows == 1 and r.active_units == 4
    assert r.means[0].tolist() == [2.0, 0.0, 0.0, 0.0] and r.means[1].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert r.counts.tolist() == [1, 2, 0] and r.map_index.tolist() == [0, 1, 2]


def test_device_reduction_refuses_non_finite_values():
    x = torch.ones(4, 3)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        reduce_on_device(x, torch.zeros(4, dtype=torch.long), 10, 8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reduction_on_the_gpu_gives_the_host_analysis():
    x, y, w, b = layer(3)
    host = analyze_layer(x, y, 10, w, b)
    on_gpu = analyze_layer(x.cuda(), y.cuda(), 10, w, b, reduced=reduce_on_device(x.cuda(), y.cuda(), 10, 8))
    approx_equal(host, on_gpu)
