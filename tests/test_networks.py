"""Normalisation, goodness, losses and prediction on hand-computed tensors (docs/algorithms.md#networks on)."""

import math

import pytest
import torch
import torch.nn.functional as F

from ffterm_core.training.losses import symmetric_loss, threshold_loss
from ffterm_core.training.networks import FFNet, goodness, normalize
from ffterm_core.training.predict import aggregate, label_goodness, label_goodness_reference


def test_normalize_l2_and_l1():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.allclose(normalize(x, "l2"), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.allclose(normalize(x, "l1"), torch.tensor([[3 / 7, 4 / 7], [0.0, 0.0]]))


def test_goodness_is_the_norm_not_squared():
    h = torch.tensor([[3.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    assert torch.allclose(goodness(h, "l2"), torch.tensor([5.0, math.sqrt(3)]))
    assert torch.allclose(goodness(h, "l1"), torch.tensor([7.0, 3.0]))


def test_threshold_loss_hand_value():
    g_pos = torch.tensor([5.0, 3.0])
    g_neg = torch.tensor([1.0, 4.0])

    def sp(v):
        return math.log1p(math.exp(v))

    expected = (sp(3 - 5) + sp(3 - 3) + sp(1 - 3) + sp(4 - 3)) / 4
    assert threshold_loss(g_pos, g_neg, 3.0).item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_loss_hand_value():
    g_pos = torch.tensor([5.0, 3.0])
    g_neg = torch.tensor([1.0, 4.0])
    expected = (math.log1p(math.exp(-4)) + math.log1p(math.exp(1))) / 2
    assert symmetric_loss(g_pos, g_neg).item() == pytest.approx(expected, rel=1e-6)


def test_ff_layer_normalises_every_input_including_the_first():
    torch.manual_seed(0)
    net = FFNet(6, 4, 2, "l2")
    x = torch.randn(3, 6)
    outs = net(x * 7.0)  # scaling an input does not change anything: it is normalised first
    ref = net(x)
    for a, b in zip(outs, ref):
        assert torch.allclose(a, b, atol=1e-6)
    lin = net.linears[0]
    assert torch.allclose(outs[0], F.relu(lin(x / x.norm(dim=1, keepdim=True))), atol=1e-6)


def test_aggregate_softmax_per_layer_then_sum():
    # 1 sample, 10 labels, 2 layers: layer 1 prefers label 2 mildly, layer 2 prefers label 5 strongly
    g = torch.zeros(1, 10, 2)
    g[0, 2, 0] = 1.0
    g[0, 5, 1] = 5.0
    pred, layer_pred = aggregate(g)
    assert layer_pred.tolist() == [[2, 5]]
    assert pred.item() == 5
    # hand check of the summed softmax
    s = torch.softmax(g[0], dim=0).sum(dim=1)
    assert s.argmax().item() == 5


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("shape", [(1, 12, 12), (3, 12, 12)])
def test_batched_prediction_equals_ten_passes(norm, shape):
    torch.manual_seed(1)
    d = shape[0] * shape[1] * shape[2]
    net = FFNet(d, 32, 3, norm)
    from ffterm_core.data.embedding import clear_label_pixels

    base = clear_label_pixels(torch.randn(50, d), shape)
    fast = label_goodness(net, base, 2.8, shape, norm, chunk=7)
    slow = label_goodness_reference(net, base, 2.8, shape, norm)
    assert fast.shape == (50, 10, 3)
    assert torch.allclose(fast, slow, rtol=1e-4, atol=1e-5)
