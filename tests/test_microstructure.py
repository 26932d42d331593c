"""Microstructure: planted sub-patterns are found with the right members; no structure gives one pattern."""

import json

import numpy as np
import pytest

from ffterm.cli import main
from ffterm_core.analysis.microstructure import class_patterns, find_patterns, microstructure, silhouette

N_UNITS = 40


def _planted(rng):
    """Class 0: 35 images firing units 0–4 and 25 firing units 10–14; class 1: 40 images firing units 20–24.
    Each image fires its units at its own strength (2 to 3) and has weak noise on every unit."""
    blocks = [(0, range(0, 5), 35), (0, range(10, 15), 25), (1, range(20, 25), 40)]
    rows, labels = [], []
    for cls, units, count in blocks:
        x = np.abs(rng.normal(0.0, 0.1, size=(count, N_UNITS)))
        x[:, list(units)] += rng.uniform(2.0, 3.0, size=(count, 1))
        rows.append(x)
        labels += [cls] * count
    order = rng.permutation(len(labels))  # interleave the sub-patterns
    return np.concatenate(rows)[order], np.array(labels)[order]


def test_two_planted_sub_patterns_are_found_with_their_members():
    X, y = _planted(np.random.default_rng(0))
    class_ensembles = [list(range(0, 5)) + list(range(10, 15)), list(range(20, 25))]
    found = find_patterns(X, y, 2, class_ensembles)
    zero, one = found
    assert len(zero.patterns) == 2 and zero.dominant == 0
    big, small = zero.patterns
    a_rows = np.flatnonzero((y == 0) & (X[:, 0] > 1))
    b_rows = np.flatnonzero((y == 0) & (X[:, 10] > 1))
    assert big.members.tolist() == a_rows.tolist() and len(a_rows) == 35  # the dominant pattern: 35 images
    assert small.members.tolist() == b_rows.tolist() and len(b_rows) == 25
    assert big.ensemble == [0, 1, 2, 3, 4] and small.ensemble == [10, 11, 12, 13, 14]
    assert big.jaccard_with_class == small.jaccard_with_class == 0.5
    assert zero.silhouette > 0.5
    # class 1 has one pattern: the class itself
    assert len(one.patterns) == 1 and one.silhouette is None
    assert one.patterns[0].members.size == 40 and one.patterns[0].jaccard_with_class == 1.0


def test_noise_has_one_pattern_and_json_shape():
    rng = np.random.default_rng(1)
    X = np.abs(rng.normal(size=(120, N_UNITS)))
    y = np.zeros(120, dtype=int)
    result = microstructure(X, y, 2, [[3], []])
    assert result[0]["dominant"] == 0 and [p["size"] for p in result[0]["patterns"]] == [120]
    assert result[1] == {"class": 1, "patterns": [], "dominant": None, "silhouette": None, "zero_rows": 0}
    json.dumps(result)  # JSON-ready


def test_undefined_ensembles_and_zero_rows():
    X, y = _planted(np.random.default_rng(2))
    X[:3] = 0.0
    found = class_patterns(X[y == 0], None)
    assert all(p.ensemble is None and p.jaccard_with_class is None for p in found.patterns)
    assert found.zero_rows == int((X[y == 0].sum(axis=1) == 0).sum())
    assert sum(p.members.size for p in found.patterns) + found.zero_rows == int((y == 0).sum())


def test_minimum_cluster_size_rejects_a_split_into_a_tiny_group():
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(0.0, 0.1, size=(100, N_UNITS)))
    X[:95, :5] += 2.0
    X[95:, 30:35] += 2.0  # 5 distinct rows: fewer than max(10, 5 %) → not a pattern of its own
    assert len(class_patterns(X, None).patterns) == 1
    assert len(class_patterns(X, None, min_size=5).patterns) == 2


def test_silhouette_by_hand():
    points = np.array([0.0, 1.0, 10.0, 11.0])
    D = np.abs(points[:, None] - points[None, :])
    # a = 1 for every point; b = 10.5, 9.5, 9.5, 10.5 → s = 9.5/10.5, 8.5/9.5, 8.5/9.5, 9.5/10.5
    expected = (2 * 9.5 / 10.5 + 2 * 8.5 / 9.5) / 4
    assert silhouette(D, np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_bad_input_is_a_value_error():
    with pytest.raises(ValueError, match="non-finite"):
        microstructure(np.full((4, 3), np.nan), np.zeros(4, dtype=int), 2, None)


def test_analyze_microstructure_adds_one_entry_per_class(tmp_path, capsys):
    run = tmp_path / "r"
    opts = ["--set", "dataset=synthetic", "--set", "epochs=1", "--set", "hidden=16", "--set", "final_pvalues=false"]
    assert main(["run", "quick-ff-synthetic", "--headless", "--out", str(run), *opts, "--device", "cpu"]) == 0
    assert main(["analyze", str(run), "--microstructure", "--no-pvalues"]) == 0
    assert "activation patterns per class" in capsys.readouterr().out
    layers = json.loads((run / "analysis.json").read_text())["layers"]
    for layer in layers:
        entries = layer["microstructure"]
        assert [e["class"] for e in entries] == list(range(10))
        for e in entries:
            assert e["dominant"] == (0 if e["patterns"] else None)
            assert all(set(p) == {"size", "ensemble", "jaccard_with_class"} for p in e["patterns"])
            assert [p["size"] for p in e["patterns"]] == sorted((p["size"] for p in e["patterns"]), reverse=True)
        # every correctly classified image is in exactly one pattern, or an all-zero row
        assert (
            sum(p["size"] for e in entries for p in e["patterns"]) + sum(e["zero_rows"] for e in entries)
            == (layer["n_rows"])
        )
