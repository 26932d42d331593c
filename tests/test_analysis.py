"""Tests of ffterm_core.analysis (docs/algorithms.md, from #representations on) with hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import ffterm_core.analysis as A
from ffterm_core.analysis.permutation import _np_injections, _np_permutations, _t_injections
from ffterm_core.analysis.sparsity import lifetime_sparsity


# --------------------------------------------------------------------- helpers
def planted(M=600, n=200, C=4, size=8, seed=0, density=0.05, boost=3.0):
    """Sparse noise plus, for each class c, units c*size..c*size+size-1 strongly active."""
    rng = np.random.default_rng(seed)
    y = np.arange(M) % C
    X = rng.exponential(1.0, (M, n)) * (rng.random((M, n)) < density)
    for c in range(C):
        rows = np.flatnonzero(y == c)
        X[np.ix_(rows, np.arange(c * size, (c + 1) * size))] += boost * (1 + rng.random((rows.size, size)))
    return X, y


# -------------------------------------------------------------------- sparsity
def test_hoyer_hand_values():
    X = np.array(
        [
            [0.0, 0.0, 5.0],  # one-hot -> 1
            [2.0, 2.0, 2.0],  # constant -> 0
            [1.0, 2.0, 2.0],  # l1 = 5, l2 = 3
            [0.0, 0.0, 0.0],  # undefined
            [-1.0, 2.0, -2.0],  # uses |x|: same as row 2
        ]
    )
    s = A.hoyer_sparsity(X)
    assert s[0] == pytest.approx(1.0)
    assert s[1] == pytest.approx(0.0, abs=1e-12)
    assert s[2] == pytest.approx((math.sqrt(3) - 5 / 3) / (math.sqrt(3) - 1))
    assert s[2] == pytest.approx(0.0893164, abs=1e-6)
    assert math.isnan(s[3])
    assert s[4] == pytest.approx(s[2])


def test_hoyer_scale_invariance_and_torch_input():
    rng = np.random.default_rng(1)
    X = rng.random((50, 30)) * (rng.random((50, 30)) < 0.3)
    X[X.sum(1) == 0, 0] = 1.0
    s = A.hoyer_sparsity(X)
    np.testing.assert_allclose(A.hoyer_sparsity(X * 1e-30), s, rtol=1e-10)
    np.testing.assert_allclose(A.hoyer_sparsity(X * 7.5e20), s, rtol=1e-10)
    np.testing.assert_allclose(A.hoyer_sparsity(torch.tensor(X, dtype=torch.float32)), s, rtol=1e-5)
    assert np.all((s >= 0) & (s <= 1))


def test_layer_sparsity_ignores_zero_rows():
    X = np.array([[0, 0, 0, 4.0], [1.0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    mean, ignored = A.layer_sparsity(X)
    assert mean == pytest.approx(0.5)
    assert ignored == 2
    mean, ignored = A.layer_sparsity(np.zeros((3, 5)))
    assert math.isnan(mean) and ignored == 3


def test_lifetime_sparsity_by_hand():
    # columns over M = 4 rows: a = (Σr/4)² / (Σr²/4), S = (1 - a) / (1 - 1/4)
    #   [1, 0, 0, 0]: a = (1/4)² / (1/4) = 1/4      -> S = 1   (one image only)
    #   [2, 2, 0, 0]: a = 1 / 2                       -> S = 2/3
    #   [3, 3, 3, 3]: a = 1                           -> S = 0   (alike on all)
    #   [0, 0, 0, 0]: silent                          -> NaN
    X = np.array([[1.0, 2, 3, 0], [0, 2, 3, 0], [0, 0, 3, 0], [0, 0, 3, 0]])
    s = lifetime_sparsity(X)
    np.testing.assert_allclose(s[:3], [1.0, 2 / 3, 0.0], atol=1e-12)
    assert math.isnan(s[3])
    np.testing.assert_allclose(lifetime_sparsity(-X[:, :3] * 1e-30), s[:3], atol=1e-12)  # |r|, scale invariant
    assert np.isnan(lifetime_sparsity(X[:1])).all()  # one row: undefined


def test_analyze_layer_reports_lifetime_sparsity_mean_and_std_over_responding_units():
    X = np.array([[1.0, 2, 3, 0], [0, 2, 3, 0], [0, 0, 3, 0], [0, 0, 3, 0]])
    r = A.analyze_layer(X, np.array([0, 1, 0, 1]), 2, None, None)
    life = r["lifetime_sparsity"]
    # units 0..2: S = 1, 2/3, 0 -> mean 5/9, population std sqrt((1 + 4/9)/3 - (5/9)²) = sqrt(14)/9
    assert life["mean"] == pytest.approx(5 / 9) and life["std"] == pytest.approx(math.sqrt(14) / 9)
    assert sum(life["hist"]["counts"]) == 3 and life["hist"]["edges"][0] == 0 and life["hist"]["edges"][-1] == 1
    assert A.analyze_layer(np.zeros((4, 3)), np.array([0, 1, 0, 1]), 2, None, None)["lifetime_sparsity"] is None


# ------------------------------------------------------------------- ensembles
def test_find_ensembles_constructed():
    # class 0 means: [6, 1, 1, 1] -> LOO_0 = 1, delta_0 = 4 > 0; LOO_1 = 8/3, delta_1 < 0
    # class 1 means: [0, 0, 9, 9] -> LOO_2 = 3, delta = 3 > 0 for units 2 and 3
    X = np.array([[5.0, 1, 1, 1], [7.0, 1, 1, 1], [0, 0, 8, 10], [0, 0, 10, 8]])
    y = np.array([0, 0, 1, 1])
    ens = A.find_ensembles(X, y, 2)
    assert [e.tolist() for e in ens] == [[0], [2, 3]]
    assert all(e.dtype == np.int64 for e in ens)


def test_loo_rule_edge_cases():
    # means [2, 1, 1, 1]: LOO_0 = 1, m_0 = 2 * LOO_0 exactly -> NOT in the ensemble
    X = np.array([[2.0, 1, 1, 1]])
    assert A.find_ensembles(X, [0], 1)[0].tolist() == []
    assert A.find_ensembles(X, [0], 1, factor=1.0)[0].tolist() == [0]
    assert A.find_ensembles(np.array([[2.0001, 1, 1, 1]]), [0], 1)[0].tolist() == [0]
    # all-zero class means -> empty; class 2 has no samples -> empty
    X = np.array([[0.0, 0, 0, 0], [0, 9.0, 0, 0]])
    ens = A.find_ensembles(X, [0, 1], 3)
    assert [e.tolist() for e in ens] == [[], [1], []]


def test_ensembles_equivariant_under_unit_permutation_and_row_order():
    X, y = planted(seed=3)
    ens = A.find_ensembles(X, y, 4)
    assert [len(e) for e in ens] == [8, 8, 8, 8]
    perm = np.random.default_rng(0).permutation(X.shape[1])
    inv = np.argsort(perm)  # unit u of X is column inv[u] of X[:, perm]
    ens_p = A.find_ensembles(X[:, perm], y, 4)
    for e, ep in zip(ens, ens_p):
        assert ep.tolist() == sorted(inv[e].tolist())
    rows = np.random.default_rng(1).permutation(X.shape[0])
    assert [e.tolist() for e in A.find_ensembles(X[rows] * 3.0, y[rows], 4)] == [e.tolist() for e in ens]


def test_shared_and_jaccard_hand_values():
    ens = [np.array([0, 1, 2]), np.array([2, 3]), np.array([], dtype=int)]
    S = A.shared_units(ens)
    assert S.tolist() == [[3, 1, 0], [1, 2, 0], [0, 0, 0]]
    J = A.jaccard(ens)
    np.testing.assert_allclose(J, [[1, 0.25, 0], [0.25, 1, 0], [0, 0, 0]])
    rng = np.random.default_rng(0)
    rand = [np.flatnonzero(rng.random(40) < 0.3) for _ in range(6)]
    S, J = A.shared_units(rand, n_units=40), A.jaccard(rand, n_units=40)
    assert np.array_equal(S, S.T) and np.allclose(J, J.T)
    assert np.diag(S).tolist() == [len(e) for e in rand]
    assert np.all((J >= 0) & (J <= 1))


# -------------------------------------------------------------- permutation test
def test_pvalues_planted_small_and_reproducible():
    X, y = planted(seed=4)
    ens = A.find_ensembles(X, y, 4)
    p = A.ensemble_pvalues(X, y, ens, n_shuffles=200, seed=0)
    assert [len(pc) for pc in p] == [len(e) for e in ens]
    assert max(float(pc.max()) for pc in p) < 0.01
    p2 = A.ensemble_pvalues(X, y, ens, n_shuffles=200, seed=0, chunk_elements=999)
    assert max(float(pc.max()) for pc in p2) < 0.01
    again = A.ensemble_pvalues(X, y, ens, n_shuffles=200, seed=0, workers=1)
    assert all(np.array_equal(a, b) for a, b in zip(p, again))  # threads change nothing
    other = A.ensemble_pvalues(X + 0.0, y, [np.arange(40, 50)] * 4, n_shuffles=200, seed=0)
    assert not all(
        np.array_equal(a, b) for a, b in zip(other, A.ensemble_pvalues(X, y, [np.arange(40, 50)] * 4, seed=1))
    )


def test_pvalues_noise_mostly_large():
    rng = np.random.default_rng(5)
    X = rng.exponential(1.0, (200, 100))
    y = np.arange(200) % 2
    P = A.ensemble_pvalues_all(X, y, 2, n_shuffles=200, seed=1)
    assert P.shape == (2, 100)
    assert np.mean(P > 0.05) > 0.85
    # arbitrary "ensembles" on noise (injection sampler, k <= n/4)
    ens = [np.array([5, 17, 3, 60]), np.array([99, 0])]
    p = A.ensemble_pvalues(X, y, ens, n_shuffles=200, seed=2)
    assert np.mean(np.concatenate(p) > 0.05) >= 0.8
    assert np.all(np.concatenate(p) * 200 == np.round(np.concatenate(p) * 200))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pvalues_exact_distribution_single_row(backend):
    # One row x = [n-1, ..., 1, 0]: a shuffled column holds a uniformly random entry,
    # so P(shuffled >= x_i) = (i + 1) / n exactly.
    n = 16
    X = np.arange(n - 1, -1, -1, dtype=np.float64)[None, :]
    K = 4000
    units = np.array([3, 0, 1, 2])  # k = n/4: injection sampler, order kept
    p = A.ensemble_pvalues(X, [0], [units], n_shuffles=K, seed=0, backend=backend)[0]
    np.testing.assert_allclose(p, (units + 1) / n, atol=0.03)
    full = A.ensemble_pvalues_all(X, [0], 1, n_shuffles=K, seed=0, backend=backend)[0]
    np.testing.assert_allclose(full, (np.arange(n) + 1) / n, atol=0.03)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pvalues_match_literal_row_shuffles(backend):
    # the literal procedure (docs/algorithms.md#permutation-test): permute every row independently,
    # recompute delta_i = m_i - 2 LOO_i
    rng = np.random.default_rng(11)
    X = rng.exponential(1.0, (6, 12)) * (rng.random((6, 12)) < 0.6)
    X[:, 2] += 1.5
    n, K = X.shape[1], 3000
    m = X.mean(0)
    delta = m - 2 * (m.sum() - m) / (n - 1)
    hits = np.zeros(n)
    for _ in range(K):
        Xs = np.take_along_axis(X, np.argsort(rng.random(X.shape), axis=1), axis=1)
        ms = Xs.mean(0)
        hits += ms - 2 * (ms.sum() - ms) / (n - 1) >= delta - 1e-12
    literal = hits / K
    units = np.array([2, 7, 0])  # k = n/4: injection sampler
    p = A.ensemble_pvalues(X, np.zeros(6, dtype=int), [units], n_shuffles=K, seed=3, backend=backend)[0]
    np.testing.assert_allclose(p, literal[units], atol=0.04)
    full = A.ensemble_pvalues_all(X, np.zeros(6, dtype=int), 1, n_shuffles=K, seed=3, backend=backend)[0]
    np.testing.assert_allclose(full, literal, atol=0.04)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pvalues_ties_count_as_greater_equal(backend):
    # constant rows: every shuffle reproduces every column exactly -> p = 1
    rng = np.random.default_rng(6)
    X = np.repeat(rng.random((30, 1)) * 0.1 + 0.01, 40, axis=1)
    y = np.zeros(30, dtype=int)
    p = A.ensemble_pvalues(X, y, [np.array([1, 7, 30])], n_shuffles=50, backend=backend)[0]
    assert p.tolist() == [1.0, 1.0, 1.0]
    assert np.all(A.ensemble_pvalues_all(X, y, 1, n_shuffles=20, backend=backend) == 1.0)


def test_pvalues_torch_backend_planted_and_empty_class():
    X, y = planted(seed=7)
    ens = A.find_ensembles(X, y, 4)
    p = A.ensemble_pvalues(torch.tensor(X, dtype=torch.float32), y, ens, n_shuffles=100, backend="torch")
    assert max(float(pc.max()) for pc in p) < 0.02
    # class without rows but a non-empty ensemble -> NaN; empty ensemble -> empty array
    p = A.ensemble_pvalues(X, np.zeros(len(y), dtype=int), [np.array([0]), np.array([1, 2]), []], n_shuffles=10)
    assert p[0].shape == (1,) and np.isnan(p[1]).all() and p[2].size == 0


def test_injection_sampler_is_uniform():
    rng = np.random.default_rng(0)
    n, k, R = 12, 3, 60000
    v = _np_injections(R, k, n, rng)
    assert all(len(set(r)) == k for r in v[:2000].tolist())
    assert v.min() >= 0 and v.max() < n
    # joint of two slots: every ordered pair (a != b) equally likely
    pair = np.bincount(v[:, 0] * n + v[:, 1], minlength=n * n).reshape(n, n)
    assert np.all(np.diag(pair) == 0)
    off = pair[~np.eye(n, dtype=bool)]
    expected = R / (n * (n - 1))
    assert np.abs(off - expected).max() < 5 * math.sqrt(expected)
    vt = _t_injections(20000, 5, 20, torch.Generator().manual_seed(0), "cpu")
    assert (vt.sort(dim=1).values.diff(dim=1) > 0).all()
    perm = _np_permutations(5000, 7, rng, None)
    assert np.array_equal(np.sort(perm, axis=1), np.tile(np.arange(7), (5000, 1)))
    first = np.bincount(perm[:, 2], minlength=7)
    assert np.abs(first - 5000 / 7).max() < 5 * math.sqrt(5000 / 7)


# ------------------------------------------------------------ weights, histogram
def test_weight_balance_and_histogram():
    W = np.array([[1.0, -1.0, 0.0, 2.0], [-1.0, -1.0, -1.0, -1.0]])
    b = np.array([0.5, -0.5])
    wb = A.weight_balance(torch.tensor(W), torch.tensor(b))
    assert wb["rho_plus"].tolist() == [0.5, 0.0]
    assert wb["rho_plus_mean"] == pytest.approx(0.25) and wb["rho_plus_std"] == pytest.approx(0.25)
    assert wb["bias_mean"] == pytest.approx(0.0) and wb["bias_std"] == pytest.approx(0.5)
    h = A.histogram(wb["rho_plus"], bins=4, range=(0, 1))
    assert h == {"counts": [1, 0, 1, 0], "edges": [0.0, 0.25, 0.5, 0.75, 1.0]}
    h = A.histogram([1.0, 2.0, 3.0], bins=2)
    assert h["counts"] == [1, 2] and h["edges"] == [1.0, 2.0, 3.0]
    json.dumps(h)
    with pytest.raises(ValueError, match="b has length 3"):
        A.weight_balance(W, np.zeros(3))


# ----------------------------------------------------------- profiles and map
def test_activation_profiles_and_map():
    X = np.array(
        [
            [1.0, 0, 0, 4, 0, 0],
            [3.0, 0, 0, 2, 0, 0],
            [0, 5.0, 0, 0, 0, 1],
            [9.0, 9, 9, 9, 9, 9],  # third row of class 0: beyond rows_per_class=2
        ]
    )
    y = np.array([0, 0, 1, 0])
    prof = A.activation_profiles(X, y, 3)
    np.testing.assert_allclose(prof[0], [13 / 3, 3, 3, 5, 3, 3])
    np.testing.assert_allclose(prof[1], [0, 5, 0, 0, 0, 1])
    assert np.isnan(prof[2]).all()

    ens = [np.array([0, 3]), np.array([1, 3]), np.array([], dtype=int)]
    m = A.activation_map(X, y, 3, ens, rows_per_class=2, max_cols=3)
    assert m["row_class"] == [0, 0, 1] and m["row_index"] == [0, 1, 2]
    assert m["unit_order"] == [0, 3, 1, 2, 4, 5]  # class 0's units, then class 1's new one, then the rest
    assert m["col_edges"] == [0, 2, 4, 6]
    assert m["col_class"] == [0, 1, -1]  # bin 1 = {unit 1 (class 1), unit 2 (rest)}: tie -> class 1
    np.testing.assert_allclose(m["matrix"], [[2.5, 0, 0], [2.5, 0, 0], [0, 2.5, 0.5]])
    unbinned = A.activation_map(X, y, 3, None, rows_per_class=8, max_cols=120)
    assert unbinned["unit_order"] == list(range(6)) and unbinned["col_class"] == [-1] * 6
    assert np.array_equal(unbinned["matrix"], X[[0, 1, 3, 2]])
    json.dumps(m)


# ---------------------------------------------------------------------- probes
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_linear_probe_separable(optimizer):
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 10, (3, 20))

    def make(m):
        y = np.arange(m) % 3
        return centers[y] + rng.normal(0, 1, (m, 20)), y

    Xtr, ytr = make(300)
    Xte, yte = make(150)
    r = A.linear_probe(torch.tensor(Xtr), ytr, Xte, yte, num_classes=4, heldout_class=2, optimizer=optimizer, epochs=50)
    assert r["accuracy"] == pytest.approx(1.0)
    assert r["per_class_accuracy"][:3] == [1.0, 1.0, 1.0] and r["per_class_accuracy"][3] is None
    assert r["heldout_accuracy"] == 1.0 and r["seen_accuracy"] == 1.0
    json.dumps(r)


def test_linear_probe_chance_on_noise_and_errors():
    rng = np.random.default_rng(1)
    r = A.linear_probe(
        rng.normal(size=(200, 5)),
        rng.integers(0, 2, 200),
        rng.normal(size=(400, 5)),
        rng.integers(0, 2, 400),
        num_classes=2,
    )
    assert 0.35 < r["accuracy"] < 0.65 and r["heldout_accuracy"] is None
    with pytest.raises(ValueError, match="features"):
        A.linear_probe(np.zeros((4, 3)), [0, 1, 0, 1], np.zeros((4, 2)), [0, 1, 0, 1], num_classes=2)


# ------------------------------------------------------------------ similarity
def _orthogonal(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


@pytest.mark.parametrize("M", [40, 500])  # sample-space and feature-space code paths
def test_cka_invariances(M):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(M, 30)) @ rng.normal(size=(30, 30))
    Y = np.tanh(X[:, :20]) + 0.5 * rng.normal(size=(M, 20))
    assert A.linear_cka(X, X) == pytest.approx(1.0)
    base = A.linear_cka(X, Y)
    assert 0.1 < base < 0.99
    assert A.linear_cka(X @ _orthogonal(30, 3), Y) == pytest.approx(base, rel=1e-9)
    assert A.linear_cka(X * 17.0, Y * 0.01) == pytest.approx(base, rel=1e-9)
    assert A.linear_cka(X + 5.0, Y) == pytest.approx(base, rel=1e-9)
    assert A.linear_cka(Y, X) == pytest.approx(base, rel=1e-9)
    # reference: Gram-matrix formula with explicit centring matrix
    H = np.eye(M) - 1.0 / M
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    assert base == pytest.approx(np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L)), rel=1e-9)
    assert math.isnan(A.linear_cka(np.ones((M, 3)), Y))


def test_svcca():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(800, 25)) * np.linspace(3, 0.1, 25)
    assert A.svcca(X, X @ _orthogonal(25, 5)) == pytest.approx(1.0, abs=1e-8)
    assert A.svcca(X, 3 * X + 1) == pytest.approx(1.0, abs=1e-8)
    noise = A.svcca(X, rng.normal(size=(800, 25)))
    assert noise < 0.2
    mixed = A.svcca(X, X[:, :10] + 0.3 * rng.normal(size=(800, 10)))
    assert noise < mixed < 1.0
    assert A.svcca(X[:10], X[:10] @ _orthogonal(25, 6)) == pytest.approx(1.0, abs=1e-8)  # M < n path


def test_distance_correlation_matches_dcor():
    dcor = pytest.importorskip("dcor")
    rng = np.random.default_rng(7)
    for M, p, q in [(30, 1, 1), (50, 4, 3), (120, 10, 7)]:
        X = rng.normal(size=(M, p))
        Y = np.sin(X[:, :1] * 2) + 0.3 * rng.normal(size=(M, q))
        ref = dcor.distance_correlation(X, Y)
        assert A.distance_correlation(X, Y) == pytest.approx(ref, rel=1e-7, abs=1e-10)
    x = rng.normal(size=60)
    assert A.distance_correlation(x, x**2) == pytest.approx(dcor.distance_correlation(x, x**2), rel=1e-7)
    assert A.distance_correlation(X, X) == pytest.approx(1.0)
    assert A.distance_correlation(X, np.ones((len(X), 2))) == 0.0
    # subsampling: seeded and equal to dCor of the same subset
    big = rng.normal(size=(300, 3))
    sub = A.distance_correlation(big, big**2, max_samples=100, seed=3)
    assert sub == A.distance_correlation(big, big**2, max_samples=100, seed=3)
    rows = np.sort(np.random.default_rng(3).choice(300, 100, replace=False))
    assert sub == pytest.approx(dcor.distance_correlation(big[rows], big[rows] ** 2), rel=1e-7)


# --------------------------------------------------------------- analyze_layer
def test_analyze_layer_sparse_planted():
    X, y = planted(M=400, n=120, C=4, size=6, seed=8)
    lin = torch.nn.Linear(30, 120)
    r = A.analyze_layer(torch.tensor(X), torch.tensor(y), 4, lin.weight, lin.bias, pvalues=True, n_shuffles=50)
    assert list(r)[: len(A.LAYER_KEYS)] == list(A.LAYER_KEYS)
    json.dumps(r, allow_nan=False)
    assert r["sparsity"] >= 0.5 and r["sparsity_ignored_rows"] == 0
    assert r["ensembles"] == [list(range(c * 6, c * 6 + 6)) for c in range(4)]
    assert r["ensemble_size_pct"] == pytest.approx(5.0)
    assert r["shared_units"] == (np.eye(4, dtype=int) * 6).tolist()
    assert r["jaccard"] == np.eye(4).tolist()
    assert r["n_units_p_gt_0_05"] == 0
    assert set(r["rho_plus"]) == {"mean", "std", "hist"} and set(r["bias"]) == {"mean", "std", "hist"}
    wb = A.weight_balance(lin.weight, lin.bias)
    assert r["rho_plus"]["mean"] == pytest.approx(wb["rho_plus_mean"])
    assert r["rho_plus"]["hist"]["edges"][0] == 0.0 and r["rho_plus"]["hist"]["edges"][-1] == 1.0
    assert sum(r["bias"]["hist"]["counts"]) == 120
    assert len(r["class_mean_activation"]) == 4 and len(r["class_mean_activation"][0]) == 120
    amap = r["activation_map"]
    assert amap["unit_order"] == list(range(120))  # ensembles are units 0..23 in class order
    assert amap["col_class"] == [c for c in range(4) for _ in range(6)] + [-1] * 96
    assert len(amap["matrix"]) == 4 * 8 and amap["row_class"] == [c for c in range(4) for _ in range(8)]
    assert r["active_units"] == int((X.sum(0) > 0).sum())


def test_analyze_layer_undefined_ensembles_and_zero_rows():
    rng = np.random.default_rng(9)
    X = 1.0 + rng.random((100, 50))  # dense: sparsity far below 0.5
    y = np.arange(100) % 3
    r = A.analyze_layer(X, y, 4, rng.normal(size=(50, 10)), rng.normal(size=50), pvalues=True)
    assert r["sparsity"] < 0.5
    for key in ("ensembles", "ensemble_size_pct", "shared_units", "jaccard", "n_units_p_gt_0_05"):
        assert r[key] is None, key
    assert r["class_mean_activation"][3] is None  # class 3 has no rows
    json.dumps(r, allow_nan=False)
    X[:] = 0
    r = A.analyze_layer(X, y, 3, None, None)
    assert r["sparsity"] is None and r["sparsity_ignored_rows"] == 100 and r["ensembles"] is None
    assert r["rho_plus"] is None and r["active_units"] == 0
    json.dumps(r, allow_nan=False)
    with pytest.raises(ValueError, match="W has 10 rows"):
        A.analyze_layer(X, y, 3, np.zeros((10, 4)), np.zeros(10))


def test_analyze_heldout_layer():
    X, y = planted(M=500, n=100, C=5, size=5, seed=10)
    X[y == 4, 0:3] += 6.0  # class 4 (held out) also drives units 0-2 of class 0's ensemble
    seen = A.find_ensembles(X[y != 4], y[y != 4], 5)
    r = A.analyze_heldout_layer(X, y, 4, seen)
    assert r["sparsity"] >= 0.5
    assert set(range(20, 25)) <= set(r["ensemble"])
    assert r["shared_with_seen"][4] is None
    assert r["shared_with_seen"][0] == len(set(r["ensemble"]) & set(seen[0].tolist())) >= 3
    assert r["shared_with_seen"][1:4] == [0, 0, 0]
    assert r["shared_with_seen_total"] == r["shared_with_seen"][0]
    json.dumps(r, allow_nan=False)
    assert A.analyze_heldout_layer(X, y, 4, None, num_classes=5)["shared_with_seen"] is None
    dense = A.analyze_heldout_layer(1 + np.random.default_rng(0).random((40, 30)), np.arange(40) % 2, 1, None, 2)
    assert dense["sparsity"] < 0.5 and dense["ensemble"] is None


# ------------------------------------------------------------------ validation
def test_validation_errors():
    X = np.random.default_rng(0).random((6, 4))
    y = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="5 labels but the data has 6 rows"):
        A.find_ensembles(X, y[:5], 2)
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        A.find_ensembles(bad, y, 2)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        A.analyze_layer(torch.tensor(bad), y, 2, None, None)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        A.find_ensembles(X, y + 1, 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        A.activation_profiles(X, y - 1, 2)
    with pytest.raises(ValueError, match="integer class labels"):
        A.find_ensembles(X, y + 0.5, 2)
    with pytest.raises(ValueError, match="2-D"):
        A.hoyer_sparsity(X[0])
    with pytest.raises(ValueError, match="num_classes"):
        A.find_ensembles(X, y, 0)
    with pytest.raises(ValueError, match="outside"):
        A.ensemble_pvalues(X, y, [np.array([0]), np.array([4])])
    with pytest.raises(ValueError, match="one per class"):
        A.ensemble_pvalues(X, y, [np.array([0])], num_classes=2)
    with pytest.raises(ValueError, match="same number of rows"):
        A.linear_cka(X, X[:5])
    with pytest.raises(ValueError, match="non-finite"):
        A.ensemble_pvalues(torch.tensor(bad), y, [[0], [1]], backend="torch")
    with pytest.raises(ValueError, match="non-finite"):
        A.histogram([1.0, np.nan])


def test_a_class_without_rows_has_an_undefined_ensemble_not_an_empty_one():
    X, y = planted(M=400, n=60, C=4, size=5, seed=3)
    full = A.analyze_layer(X, y, 4, None, None)
    r = A.analyze_layer(X[y != 2], y[y != 2], 4, None, None)
    assert r["ensembles"][2] is None
    assert r["ensembles"][:2] == full["ensembles"][:2] and r["ensembles"][3] == full["ensembles"][3]
    assert all(r["shared_units"][2][c] is None and r["shared_units"][c][2] is None for c in range(4))
    assert all(r["jaccard"][2][c] is None and r["jaccard"][c][2] is None for c in range(4))
    assert r["jaccard"][0][0] == 1.0 and r["shared_units"][1][1] == len(r["ensembles"][1])
    json.dumps(r, allow_nan=False)


def test_heldout_layer_keeps_its_profile_and_a_map_with_the_seen_rows():
    X, y = planted(M=500, n=100, C=5, size=5, seed=10)
    seen_rows = y != 4
    seen = A.analyze_layer(X[seen_rows], y[seen_rows], 5, None, None)["ensembles"]
    assert seen[4] is None  # no seen row of class 4
    r = A.analyze_heldout_layer(X, y, 4, seen, rows_per_class=3, max_cols=100)
    # the profile over all class-4 rows (the study's rule for an unseen class)
    assert r["mean_activation"] == pytest.approx(np.round(X[y == 4].mean(axis=0), 4).tolist())
    amap = r["activation_map"]
    assert amap["row_class"] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    # E_k's own units come right after the seen ensembles' in the column order, as a seen class's would
    in_seen = set().union(*(set(e) for e in seen[:4]))
    own = set(r["ensemble"]) - in_seen
    assert set(range(20, 25)) <= own
    assert set(amap["unit_order"][len(in_seen) : len(in_seen) + len(own)]) == own
    # an undefined seen ensemble has no overlap to count
    seen[1] = None
    assert A.analyze_heldout_layer(X, y, 4, seen)["shared_with_seen"][1] is None
