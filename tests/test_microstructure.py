"""Microstructure: planted sub-patterns are found with the right members; no structure gives one pattern."""

import json

import numpy as np
import pytest

from ffterm.cli import main
from ffterm_core.analysis.microstructure import adjusted_rand, class_patterns, find_patterns, microstructure, silhouette

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
    assert sorted(big.members.tolist()) == a_rows.tolist() and len(a_rows) == 35  # the dominant pattern: 35 images
    assert sorted(small.members.tolist()) == b_rows.tolist() and len(b_rows) == 25
    # two well-separated patterns: every subsample finds the same two
    assert zero.stability == 1.0 and zero.same_k == 1.0
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
    assert sorted(result[0]["patterns"][0]["members"]) == list(range(120))
    assert result[0]["silhouette_metric"] == "euclidean"
    assert result[1] == {
        "class": 1,
        "patterns": [],
        "dominant": None,
        "silhouette": None,
        "silhouette_metric": "euclidean",
        "stability_ari": None,
        "stability_same_k": None,
        "zero_rows": 0,
    }
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
            assert all(set(p) == {"size", "members", "ensemble", "jaccard_with_class"} for p in e["patterns"])
            assert all(len(p["members"]) == p["size"] for p in e["patterns"])
            assert [p["size"] for p in e["patterns"]] == sorted((p["size"] for p in e["patterns"]), reverse=True)
        # every correctly classified image is in exactly one pattern, or an all-zero row
        assert (
            sum(p["size"] for e in entries for p in e["patterns"]) + sum(e["zero_rows"] for e in entries)
            == (layer["n_rows"])
        )
        # the members are test image indices, each image in one pattern at most
        members = [m for e in entries for p in e["patterns"] for m in p["members"]]
        assert len(set(members)) == len(members) and all(0 <= m < 10_000 for m in members)


def test_silhouette_is_euclidean_between_unit_rows_by_hand():
    """Four unit vectors at 0°, 30°, 90°, 120°: two patterns; chord distances 2 sin(Δ/2)."""
    angles = np.radians([0.0, 30.0, 90.0, 120.0])
    X = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1.0], [2.0], [3.0], [0.5]])  # norms ignored
    found = class_patterns(X, None, min_size=1, min_fraction=0.0, kmax=2, resamples=0)
    chord = lambda deg: 2 * np.sin(np.radians(deg) / 2)  # noqa: E731
    a = chord(30)  # the one other member of each pattern
    outer = (chord(90) + chord(120)) / 2  # 0° and 120° to the other pattern
    inner = (chord(60) + chord(90)) / 2  # 30° and 90°
    expected = ((outer - a) / outer + (inner - a) / inner) / 2
    assert found.silhouette == pytest.approx(expected)  # 0.6211; on cosine distance it would be 0.8571
    assert sorted(sorted(p.members.tolist()) for p in found.patterns) == [[0, 1], [2, 3]]
    assert found.stability is None and found.same_k is None


def test_adjusted_rand_by_hand():
    # contingency [[2, 0, 0], [0, 1, 1]]: index 1, row pairs 2, column pairs 1, 6 pairs: (1 - 1/3) / (3/2 - 1/3)
    assert adjusted_rand(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])) == pytest.approx(4 / 7)
    assert adjusted_rand(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2])) == 1.0  # the same partition
    assert adjusted_rand(np.zeros(5), np.zeros(5)) == 1.0  # one cluster both times
    assert adjusted_rand(np.array([0, 0, 1, 1]), np.zeros(4)) == 0.0


def test_members_map_to_the_given_image_indices():
    X, y = _planted(np.random.default_rng(0))
    images = np.arange(X.shape[0]) * 3 + 7
    plain = find_patterns(X, y, 2, None, resamples=0)
    mapped = find_patterns(X, y, 2, None, images=images, resamples=0)
    for a, b in zip(plain, mapped):
        assert [images[p.members].tolist() for p in a.patterns] == [p.members.tolist() for p in b.patterns]
    with pytest.raises(ValueError, match="one index per row"):
        find_patterns(X, y, 2, None, images=images[:-1])


def test_exemplar_figure_has_one_row_per_pattern_with_its_images():
    import torch

    from ffterm_core.figures.beyond import EXEMPLARS, exemplar_figure

    images = torch.arange(30 * 64, dtype=torch.int64).reshape(30, 1, 8, 8).remainder(256).to(torch.uint8)
    entries = [
        {"class": 0, "patterns": [{"size": 20, "members": list(range(10, 30))}, {"size": 3, "members": [1, 2, 3]}]},
        {"class": 1, "patterns": [{"size": 9, "members": list(range(9))}]},  # one pattern: not shown
        {"class": 2, "patterns": [{"size": 5, "members": [4, 5, 6, 7, 8]}, {"size": 4, "members": [0, 9, 10, 11]}]},
    ]
    fig = exemplar_figure(entries, images, 1, ["T-shirt", "Trouser", "Pullover"])
    grid = [ax for ax in fig.axes if ax.get_visible()]
    assert len(grid) == 4 * EXEMPLARS  # four pattern rows
    shown = [ax.images[0].get_array() for ax in grid if ax.images]
    assert len(shown) == EXEMPLARS + 3 + EXEMPLARS + EXEMPLARS  # the 3-member pattern leaves a blank
    assert (np.asarray(shown[0]) == images[10, 0].numpy()).all()  # the most typical member first
    labels = [ax.get_ylabel() for ax in grid if ax.get_ylabel()]
    assert labels == ["T-shirt\nP1 (20)", "T-shirt\nP2 (3)", "Pullover\nP1 (5)", "Pullover\nP2 (4)"]
    assert "Layer 2" in fig._suptitle.get_text()
    many = [{"class": c, "patterns": entries[0]["patterns"]} for c in range(10)]  # 20 pattern rows, none left out
    assert len([ax for ax in exemplar_figure(many, images, 0).axes if ax.get_ylabel()]) == 20
    empty = exemplar_figure(entries[1:2], images, 0)
    assert not any(ax.images for ax in empty.axes)
