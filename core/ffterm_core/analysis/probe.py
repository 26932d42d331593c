"""Linear probes: multinomial logistic regression on layer representations (docs/algorithms.md#linear-probes)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ffterm_core.analysis._checks import as_labels, as_matrix, check_num_classes, is_tensor

__all__ = ["linear_probe"]


def _features(X: Any, name: str, device: torch.device) -> torch.Tensor:
    """Finite 2-D float32 tensor on ``device``."""
    if is_tensor(X):
        t: torch.Tensor = X.detach()
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D (samples, features); got shape {tuple(t.shape)}")
        if t.is_complex():
            raise ValueError(f"{name} must be real-valued")
        t = t.to(device=device, dtype=torch.float32)
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
        return t
    return torch.from_numpy(as_matrix(X, name, dtype=np.float32)).to(device)


def _accuracies(pred: np.ndarray, y: np.ndarray, C: int) -> tuple[float, list[float | None]]:
    correct = pred == y
    total = np.bincount(y, minlength=C)
    hits = np.bincount(y, weights=correct.astype(np.float64), minlength=C)
    per = [float(hits[c] / total[c]) if total[c] else None for c in range(C)]
    return float(correct.mean()), per


def linear_probe(
    train_X: Any,
    train_y: Any,
    test_X: Any,
    test_y: Any,
    num_classes: int = 10,
    heldout_class: int | None = None,
    epochs: int = 100,
    lr: float | None = None,
    device: str | torch.device | None = None,
    *,
    optimizer: str = "lbfgs",
    weight_decay: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a multinomial logistic regression on ``train_X`` and test it on ``test_X``.

    Features are standardised with the training mean and (population) standard
    deviation; features that are constant on the training set (std <= 1e-6 of
    their magnitude) are only centred.  The model is ``softmax(x W + b)`` with
    zero initialisation, trained on the mean cross-entropy plus
    ``weight_decay / 2 · ||W||²`` (a small ridge keeps the optimum finite on
    separable data).

    Parameters
    ----------
    train_X, test_X : (M, d) representations (numpy or torch); d must match.
    train_y, test_y : integer labels in ``[0, num_classes)``.
    heldout_class : class whose test accuracy is reported separately (the probe
        is trained on every class present in ``train_y``, including this one).
    epochs : ``"lbfgs"``: maximum LBFGS iterations (full batch, strong-Wolfe
        line search); ``"adam"``: passes over the training set.
    lr : step size; default 1.0 for LBFGS, 1e-2 for Adam.
    device : torch device (default: ``train_X``'s device if it is a tensor, else CPU).
    optimizer : ``"lbfgs"`` (deterministic) or ``"adam"`` (minibatches of
        ``batch_size``, shuffled with ``seed``).

    Returns
    -------
    dict with ``accuracy`` (test), ``per_class_accuracy`` (list of C, None for
    classes absent from the test set), ``heldout_accuracy`` (None without
    ``heldout_class``), ``seen_accuracy`` (test accuracy on the other classes,
    None without ``heldout_class``) and ``train_accuracy``.
    """
    C = check_num_classes(num_classes)
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    for name, val in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < 1:
            raise ValueError(f"{name} must be a positive integer, got {val!r}")
    if heldout_class is not None and (
        isinstance(heldout_class, bool) or not isinstance(heldout_class, numbers.Integral) or not 0 <= heldout_class < C
    ):
        raise ValueError(f"heldout_class must be an integer in [0, {C}) or None, got {heldout_class!r}")
    if lr is None:
        lr = 1.0 if optimizer == "lbfgs" else 1e-2
    if not (isinstance(lr, numbers.Real) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(weight_decay, numbers.Real) and np.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    if device is None:
        device = train_X.device if is_tensor(train_X) else torch.device("cpu")
    device = torch.device(device)

    Xtr = _features(train_X, "train_X", device)
    Xte = _features(test_X, "test_X", device)
    if Xtr.shape[0] == 0:
        raise ValueError("train_X has no rows")
    if Xte.shape[0] == 0:
        raise ValueError("test_X has no rows")
    if Xte.shape[1] != Xtr.shape[1]:
        raise ValueError(f"train_X has {Xtr.shape[1]} features but test_X has {Xte.shape[1]}")
    ytr_np = as_labels(train_y, Xtr.shape[0], C, "train_y")
    yte_np = as_labels(test_y, Xte.shape[0], C, "test_y")
    ytr = torch.from_numpy(ytr_np).to(device)

    var, mean = torch.var_mean(Xtr, dim=0, unbiased=False)
    std = var.sqrt()
    std = torch.where(std <= 1e-6 * mean.abs().clamp_min(1e-30), torch.ones_like(std), std)
    Xs = (Xtr - mean) / std

    d = Xs.shape[1]
    W = torch.zeros(d, C, device=device, requires_grad=True)
    b = torch.zeros(C, device=device, requires_grad=True)

    def objective(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(xb @ W + b, yb)
        if weight_decay:
            loss = loss + 0.5 * weight_decay * (W * W).sum()
        return loss

    with torch.enable_grad():
        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS(
                [W, b],
                lr=float(lr),
                max_iter=int(epochs),
                history_size=20,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-7,
                tolerance_change=1e-10,
            )

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = objective(Xs, ytr)
                loss.backward()
                return loss

            opt.step(closure)
        else:
            opt = torch.optim.Adam([W, b], lr=float(lr))
            gen = torch.Generator(device="cpu").manual_seed(int(seed))
            M = Xs.shape[0]
            for _ in range(int(epochs)):
                perm = torch.randperm(M, generator=gen).to(device)
                for start in range(0, M, int(batch_size)):
                    idx = perm[start : start + int(batch_size)]
                    opt.zero_grad()
                    objective(Xs[idx], ytr[idx]).backward()
                    opt.step()

    with torch.no_grad():
        train_pred = (Xs @ W + b).argmax(dim=1).cpu().numpy()
        test_pred = (((Xte - mean) / std) @ W + b).argmax(dim=1).cpu().numpy()
    acc, per = _accuracies(test_pred, yte_np, C)
    heldout = seen = None
    if heldout_class is not None:
        heldout = per[heldout_class]
        mask = yte_np != heldout_class
        seen = float((test_pred[mask] == yte_np[mask]).mean()) if mask.any() else None
    return {
        "accuracy": acc,
        "per_class_accuracy": per,
        "heldout_accuracy": heldout,
        "seen_accuracy": seen,
        "train_accuracy": float((train_pred == ytr_np).mean()),
    }
