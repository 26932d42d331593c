"""The networks: FF layers (normalise → Linear → ReLU), goodness, and the BP classifier.

See docs/algorithms.md#networks and #goodness-and-loss.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-12


def normalize(x: torch.Tensor, norm: str) -> torch.Tensor:
    """Divide each row (the last dimension) by its ℓ2 (or ℓ1) norm, as F.normalize (eps 1e-12)."""
    return F.normalize(x, p=2.0 if norm == "l2" else 1.0, dim=-1, eps=NORM_EPS)


def goodness(h: torch.Tensor, kind: str) -> torch.Tensor:
    """G = ‖h‖₂ (not squared, not averaged), or ‖h‖₁ for ℓ1 goodness, over the last dimension: (…, n) → (…).

    Always in float32, also when h comes from a bfloat16 layer (precision: bf16).
    """
    h = h.float()
    return h.norm(dim=-1) if kind == "l2" else h.abs().sum(dim=-1)


def _linear_stack(sizes: list[int]) -> Sequence[nn.Linear]:
    """Linear layers between consecutive sizes, registered as submodules (a ModuleList)."""
    return _module_list([nn.Linear(a, b) for a, b in itertools.pairwise(sizes)])


def _module_list(layers: list[nn.Linear]) -> Sequence[nn.Linear]:
    # a ModuleList is typed as holding any Module; this one holds only Linear layers
    return nn.ModuleList(layers)  # type: ignore[return-value]


class FFNet(nn.Module):
    """A stack of FF layers: h_l = ReLU(W_l · normalize(h_{l-1}) + b_l); each layer passes raw h on."""

    def __init__(self, in_features: int, hidden: int, layers: int, norm: str) -> None:
        super().__init__()
        self.linears = _linear_stack([in_features] + [hidden] * layers)
        self.norm = norm

    def layer(self, index: int, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linears[index](normalize(x, self.norm)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All layers' raw outputs."""
        outs = []
        for i in range(len(self.linears)):
            x = self.layer(i, x)
            outs.append(x)
        return outs


class BPNet(nn.Module):
    """Plain MLP: L × (Linear + ReLU) and a Linear head to the classes."""

    def __init__(self, in_features: int, hidden: int, layers: int, classes: int = 10) -> None:
        super().__init__()
        self.linears = _linear_stack([in_features] + [hidden] * layers)
        self.head = nn.Linear(hidden, classes)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for lin in self.linears:
            x = F.relu(lin(x))
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hs = self.hidden(x)
        return self.head(hs[-1]), hs


class StackedLinear(nn.Linear):
    """N seeds' copies of one Linear layer as one: weight (N, out, in), bias (N, out); x (N, B, in) → (N, B, out)
    in one batched matmul (`torch.baddbmm`). Seed i's layer is slice i."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        nn.Module.__init__(self)  # not nn.Linear's: its parameters are the stacked ones below
        self.in_features, self.out_features = layers[0].in_features, layers[0].out_features
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in layers]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def affine_layers(net: FFNet | BPNet) -> list[nn.Linear]:
    """Every Linear of a network in the order of its parameters (BP: the hidden layers, then the head)."""
    return list(net.linears) + ([net.head] if isinstance(net, BPNet) else [])


def stacked(nets: Sequence[FFNet | BPNet]) -> FFNet | BPNet:
    """One network of the same kind whose layers hold every net's layers stacked (`StackedLinear`): its
    `layer`, `hidden` and `forward` take and give (N, B, …) for N seeds, with the code the single network runs."""
    out = copy.copy(nets[0])
    out._modules = dict(out._modules)  # a shallow copy shares its submodules' table; these are replaced
    out.linears = _module_list([StackedLinear(layer) for layer in zip(*(n.linears for n in nets))])
    if isinstance(out, BPNet):
        out.head = StackedLinear([n.head for n in nets if isinstance(n, BPNet)])
    return out
