"""Permutation test for ensemble membership (docs/algorithms.md#permutation-test).

For class ``c`` with rows ``X_c`` (M_c, n): ``n_shuffles`` times, the entries of
every row of ``X_c`` are shuffled by an independent uniformly random
permutation, and ``delta_i = m_i - 2 LOO_i`` is recomputed; the p-value of unit
``i`` is the fraction of shuffles whose ``delta_i`` is ``>=`` the observed one.

Implementation notes (all exact reformulations, no approximation of the test):

* A within-row shuffle keeps every row sum, so ``sum_j m_j`` is the same in
  every shuffle and ``delta_i = m_i (1 + f/(n-1)) - f sum_j m_j/(n-1)`` is an
  increasing function of ``m_i`` (for any factor ``f > -(n-1)``, in particular
  the paper's 2).  Hence ``delta_i^shuffled >= delta_i`` exactly when the
  shuffled column sum of unit ``i`` is ``>=`` its observed column sum, and the
  p-values do not depend on the factor.
* Only the units whose p-values are wanted are simulated.  In a shuffle, unit
  ``i`` of row ``r`` receives entry ``pi_r(i)``; for a set of ``k`` units the
  values ``pi_r(i)`` form a uniformly random *injection* of the ``k`` units into
  the ``n`` positions, which is sampled directly (draw ``k`` positions, redraw
  the ones that repeat an earlier slot until none do; the rule depends only on
  equalities, so the result is invariant under relabelling positions and hence
  uniform over injections).  This is the marginal of the full permutation on
  those units, jointly across units, so the test is unchanged; the cost is
  ``O(n_shuffles · M_c · k)`` instead of ``O(n_shuffles · M_c · n log n)``.
  When ``k > n/4`` full permutations are drawn instead (sorting random keys
  that carry the position in their low bits; rows with tied random parts are
  redrawn, so the permutations are exactly uniform).
* Shuffles are processed in chunks of at most ``chunk_elements`` gathered
  entries (or one shuffle, if a single shuffle is larger), so memory stays
  bounded (10k x 1000 with 200 shuffles never allocates 200 x 10k x 1000).
* On the numpy backend classes run in a few threads (``workers``); each class
  has its own random stream, so the result does not depend on the threading.
* A shuffled column sum that equals the observed sum up to floating-point
  rounding (``1e-10`` for float64, ``1e-5`` for float32, relative to
  ``sum_r max_i |x_ri|``) counts as ``>=`` (a tie), which errs on the side of
  larger p-values.
* numpy input and CPU tensors run on the CPU with numpy; CUDA tensors run on
  their device with torch.  Results are reproducible for the same input, seed,
  ``chunk_elements`` and backend; the two backends draw different random
  numbers.  Each class has its own random stream derived from ``(seed, c)``.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ffterm_core.analysis._checks import as_ensembles, as_labels, as_matrix, check_num_classes, is_tensor

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

__all__ = ["ensemble_pvalues", "ensemble_pvalues_all"]

_DEFAULT_CHUNK = 1 << 21  # gathered entries per chunk (16 MB of float64 per array)


# ---------------------------------------------------------------- numpy backend
def _np_injections(R: int, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(R, k) int64: each row a uniformly random injection of k slots into range(n)."""
    sb = int(k - 1).bit_length()  # slot bits
    dt = np.int32 if int(n - 1).bit_length() + sb <= 31 else np.int64  # 32-bit keys halve the traffic
    v = rng.integers(0, n, size=(R, k), dtype=dt)
    if k < 2:
        return v.astype(np.int64)
    slot = np.arange(k, dtype=dt)
    active: np.ndarray | None = None  # None = every row
    while True:
        sub = v if active is None else v[active]
        key = sub << sb
        key |= slot  # position in the high bits, slot in the low bits
        key.sort(axis=1)  # = a stable argsort by position
        # a slot repeats an earlier slot's position iff the high bits match its predecessor's
        dup = (key[:, 1:] ^ key[:, :-1]) < (1 << sb)
        flat = np.flatnonzero(dup)
        if flat.size == 0:
            return v.astype(np.int64)
        rr = flat // (k - 1)
        slots = key[rr, flat - rr * (k - 1) + 1] & ((1 << sb) - 1)
        rows = rr if active is None else active[rr]
        v[rows, slots] = rng.integers(0, n, size=rows.size, dtype=dt)
        again = np.zeros(sub.shape[0], dtype=bool)
        again[rr] = True
        active = np.flatnonzero(again) if active is None else active[again]


def _perm_shift(n: int) -> int:
    """Number of low key bits that carry the position (0..n-1)."""
    return max(1, int(n - 1).bit_length())


def _np_permutations(R: int, n: int, rng: np.random.Generator, cols: np.ndarray | None) -> np.ndarray:
    """(R, n) int64 uniformly random permutations (optionally only columns ``cols``).

    Sorts random unsigned keys whose low bits are replaced by the position (a
    stable argsort at the price of a plain sort).  Rows whose random parts tie
    would be ordered by position, so they are redrawn: the result is exactly
    uniform.  32-bit keys are used while ties stay rare (n <= 1024), 64-bit
    keys otherwise.
    """
    dt = np.uint32 if n <= 1024 else np.uint64
    shift = _perm_shift(n)
    low = dt((1 << shift) - 1)
    high = dt(~int(low) & int(np.iinfo(dt).max))
    pos = np.arange(n, dtype=dt)

    def draw(rows: int) -> tuple[np.ndarray, np.ndarray]:
        words = (rows * n * np.dtype(dt).itemsize + 7) // 8
        raw = rng.integers(0, 2**64, size=words, dtype=np.uint64, endpoint=False)
        key = raw.view(dt)[: rows * n].reshape(rows, n)
        key &= high
        key |= pos
        key.sort(axis=1)
        tie = ((key[:, 1:] ^ key[:, :-1]) <= low).any(axis=1)
        return key, tie

    key, tie = draw(R)
    todo = np.flatnonzero(tie)
    while todo.size:
        sub, sub_tie = draw(todo.size)
        key[todo[~sub_tie]] = sub[~sub_tie]
        todo = todo[sub_tie]
    key &= low
    if cols is not None:
        key = key[:, cols]
    return key.astype(np.int64)


def _np_counts(Xc: np.ndarray, units: np.ndarray | None, K: int, rng: np.random.Generator, chunk: int) -> np.ndarray:
    M, n = Xc.shape
    cols = units
    k = n if units is None else units.size
    obs = (Xc if units is None else Xc[:, units]).sum(axis=0)
    tol = 1e-10 * float(np.abs(Xc).max(axis=1).sum())
    inject = units is not None and 4 * k <= n
    width = k if inject else n
    per = max(1, chunk // max(1, M * width))
    offsets = (np.arange(M, dtype=np.int64) * n)[None, :, None]
    flat_X = Xc.ravel()
    counts = np.zeros(k, dtype=np.int64)
    done = 0
    while done < K:
        kc = min(per, K - done)
        if inject:
            idx = _np_injections(kc * M, k, n, rng)
        else:
            idx = _np_permutations(kc * M, n, rng, cols)
        idx = idx.reshape(kc, M, k)
        idx += offsets
        sums = flat_X.take(idx).sum(axis=1)  # (kc, k) shuffled column sums
        counts += (sums >= obs - tol).sum(axis=0)
        done += kc
    return counts


# ---------------------------------------------------------------- torch backend
def _t_injections(R: int, k: int, n: int, gen: torch.Generator, device: Any) -> torch.Tensor:
    """Torch twin of :func:`_np_injections` (runs on ``device``)."""
    v = torch.randint(0, n, (R, k), generator=gen, device=device, dtype=torch.int64)
    if k < 2:
        return v
    sb = int(k - 1).bit_length()
    slot = torch.arange(k, device=device, dtype=torch.int64)
    active = torch.arange(R, device=device)
    while active.numel():
        sub = v[active]
        key = torch.sort((sub << sb) | slot, dim=1).values
        dup = (key[:, 1:] ^ key[:, :-1]) < (1 << sb)
        rr, cc = torch.nonzero(dup, as_tuple=True)
        if rr.numel() == 0:
            break
        slots = key[:, 1:][rr, cc] & ((1 << sb) - 1)
        rows = active[rr]
        v[rows, slots] = torch.randint(0, n, (rows.numel(),), generator=gen, device=device, dtype=torch.int64)
        again = torch.zeros(active.numel(), dtype=torch.bool, device=device)
        again[rr] = True
        active = active[again]
    return v


def _t_permutations(R: int, n: int, gen: torch.Generator, device: Any, cols: torch.Tensor | None) -> torch.Tensor:
    """Torch twin of :func:`_np_permutations` (63-bit keys, tied rows redrawn)."""
    shift = _perm_shift(n)
    rbits = 63 - shift
    pos = torch.arange(n, device=device, dtype=torch.int64)

    def draw(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = torch.randint(0, 1 << rbits, (rows, n), generator=gen, device=device, dtype=torch.int64)
        key = torch.sort((key << shift) | pos, dim=1).values
        tie = ((key[:, 1:] ^ key[:, :-1]) < (1 << shift)).any(dim=1)
        return key, tie

    key, tie = draw(R)
    todo = torch.nonzero(tie).flatten()
    while todo.numel():
        sub, sub_tie = draw(todo.numel())
        key[todo[~sub_tie]] = sub[~sub_tie]
        todo = todo[sub_tie]
    key = key & ((1 << shift) - 1)
    return key if cols is None else key[:, cols]


def _t_counts(Xc: torch.Tensor, units: np.ndarray | None, K: int, gen: torch.Generator, chunk: int) -> np.ndarray:
    M, n = Xc.shape
    device = Xc.device
    cols = None if units is None else torch.as_tensor(units, device=device, dtype=torch.int64)
    k = n if units is None else units.size
    obs = (Xc if cols is None else Xc[:, cols]).sum(dim=0)
    rtol = 1e-10 if Xc.dtype == torch.float64 else 1e-5
    tol = rtol * float(Xc.abs().amax(dim=1).sum())
    inject = units is not None and 4 * k <= n
    width = k if inject else n
    per = max(1, chunk // max(1, M * width))
    counts = torch.zeros(k, dtype=torch.int64, device=device)
    done = 0
    while done < K:
        kc = min(per, K - done)
        if inject:
            idx = _t_injections(kc * M, k, n, gen, device)
        else:
            idx = _t_permutations(kc * M, n, gen, device, cols)
        idx = idx.reshape(kc, M, k)
        sums = torch.gather(Xc.unsqueeze(0).expand(kc, M, n), 2, idx).sum(dim=1)
        counts += (sums >= obs - tol).sum(dim=0)
        done += kc
    return counts.cpu().numpy()


# ---------------------------------------------------------------- driver
def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _class_seed(seed: int, c: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, c])


def _prepare(X: Any, backend: str) -> tuple[Any, bool]:
    """Validated data for the chosen backend; returns (data, use_torch)."""
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    use_torch = backend == "torch" or (backend == "auto" and is_tensor(X) and X.device.type != "cpu")
    if not use_torch:
        return as_matrix(X, "X", min_cols=2), False
    if torch is None:  # pragma: no cover
        raise ValueError("backend='torch' needs torch installed")
    if is_tensor(X):
        t = X.detach()
        if t.ndim != 2 or t.shape[1] < 2:
            raise ValueError(f"X must be 2-D (samples, units) with >= 2 units; got shape {tuple(t.shape)}")
        if not torch.is_floating_point(t) or t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise ValueError(f"X contains {bad} non-finite value(s) (NaN or inf)")
        return t, True
    return torch.from_numpy(as_matrix(X, "X", min_cols=2)), True


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _pvalues(
    X: Any,
    y: Any,
    num_classes: int,
    ensembles: list[np.ndarray] | None,
    n_shuffles: int,
    seed: int,
    chunk_elements: int,
    backend: str,
    workers: int | None,
) -> list[np.ndarray]:
    K = _check_int(n_shuffles, "n_shuffles", 1)
    seed = _check_int(seed, "seed", 0)
    chunk = _check_int(chunk_elements, "chunk_elements", 1)
    workers = _default_workers() if workers is None else _check_int(workers, "workers", 1)
    data, use_torch = _prepare(X, backend)
    M, n = data.shape
    labels = as_labels(y, M, num_classes)
    if ensembles is not None:
        ensembles = as_ensembles(ensembles, n, num_classes)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(num_classes + 1))

    def one_class(c: int) -> np.ndarray:
        units = None if ensembles is None else ensembles[c]
        k = n if units is None else units.size
        rows = order[bounds[c] : bounds[c + 1]]
        if k == 0:
            return np.zeros(0, dtype=np.float64)
        if rows.size == 0:
            return np.full(k, np.nan)  # no rows: the test is undefined
        ss = _class_seed(seed, c)
        if use_torch:
            gen = torch.Generator(device=data.device)
            gen.manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
            Xc = data[torch.as_tensor(rows, device=data.device)]
            counts = _t_counts(Xc, units, K, gen, chunk)
        else:
            counts = _np_counts(data[rows], units, K, np.random.default_rng(ss), chunk)
        return counts.astype(np.float64) / K

    # Classes are independent (each has its own random stream), so running them in
    # threads (numpy releases the GIL in its sorts and gathers) changes nothing but speed.
    if use_torch or workers == 1 or num_classes == 1:
        return [one_class(c) for c in range(num_classes)]  # loop over classes only
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one_class, range(num_classes)))


def ensemble_pvalues(
    X: Any,
    y: Any,
    ensembles: Sequence[Any],
    n_shuffles: int = 200,
    seed: int = 0,
    *,
    num_classes: int | None = None,
    chunk_elements: int = _DEFAULT_CHUNK,
    backend: str = "auto",
    workers: int | None = None,
) -> list[np.ndarray]:
    """Permutation-test p-values of every ensemble assignment.

    Parameters
    ----------
    X : (M, n) activations (numpy, or a torch tensor: CUDA tensors are
        processed on their device).
    y : (M,) labels in ``[0, num_classes)``.
    ensembles : one array of unit indices per class (e.g. from
        :func:`find_ensembles`); ``num_classes`` defaults to ``len(ensembles)``.
    n_shuffles : number of within-row shuffles (200 in the paper).
    seed : non-negative integer seed.
    chunk_elements : upper bound on entries gathered at once (memory bound).
    backend : ``"auto"`` (numpy on CPU, torch for CUDA tensors), ``"numpy"`` or ``"torch"``.
    workers : threads for the numpy backend, one class per task (default
        ``min(4, cpu_count)``); the result does not depend on it.

    Returns
    -------
    list of C float64 arrays; entry ``c`` holds the p-values of the units of
    ``ensembles[c]`` in the same order.  The p-value is the fraction of the
    ``n_shuffles`` shuffles whose ``delta_i`` is ``>=`` the observed one (so it
    is a multiple of ``1/n_shuffles``, possibly 0).  A non-empty ensemble of a
    class without rows gets NaN.
    """
    if num_classes is None:
        try:
            num_classes = len(ensembles)
        except TypeError:
            raise ValueError("ensembles must be a list with one array of unit indices per class") from None
    C = check_num_classes(num_classes)
    return _pvalues(X, y, C, list(ensembles), n_shuffles, seed, chunk_elements, backend, workers)


def ensemble_pvalues_all(
    X: Any,
    y: Any,
    num_classes: int,
    n_shuffles: int = 200,
    seed: int = 0,
    *,
    chunk_elements: int = _DEFAULT_CHUNK,
    backend: str = "auto",
    workers: int | None = None,
) -> np.ndarray:
    """Permutation-test p-value of *every* unit for every class.

    Same test as :func:`ensemble_pvalues`, with full row permutations (cost
    ``O(n_shuffles · M · n log n)``, several times slower than testing only the
    ensemble units).

    Returns
    -------
    numpy.ndarray (C, n) float64; rows of classes without samples are NaN.
    """
    C = check_num_classes(num_classes)
    rows = _pvalues(X, y, C, None, n_shuffles, seed, chunk_elements, backend, workers)
    return np.stack(rows) if rows else np.zeros((0, 0))
