"""Label embedding and negatives (docs/algorithms.md#label-embedding, #positive-and-negative-data)."""

import torch

from ffterm_core.data.embedding import (
    clear_label_pixels,
    embed_labels,
    fixed_negative_pairs,
    label_positions,
    resampled_negative_labels,
    wrong_label_table,
)


def test_label_positions_grey_and_colour():
    assert label_positions((1, 28, 28)).tolist() == [list(range(10))]
    pos = label_positions((3, 32, 32))
    assert pos[:, 0].tolist() == [0, 1024, 2048] and pos[2, 9].item() == 2048 + 9


def test_embed_sets_only_the_label_pixel_in_every_channel():
    shape = (3, 12, 12)
    x = torch.randn(4, 3 * 144)
    base = clear_label_pixels(x, shape)
    out = embed_labels(base, torch.tensor([0, 3, 9, 3]), 2.5, shape)
    for i, label in enumerate([0, 3, 9, 3]):
        for c in range(3):
            row = out[i, c * 144 : c * 144 + 10]
            expected = torch.zeros(10)
            expected[label] = 2.5
            assert torch.equal(row, expected)
    # everything outside the label pixels is the original image
    mask = torch.ones(3 * 144, dtype=torch.bool)
    mask[label_positions(shape).flatten()] = False
    assert torch.equal(out[:, mask], x[:, mask])
    assert torch.equal(base[:, mask], x[:, mask])  # input not modified


def test_fixed_negatives_never_carry_the_true_label_and_are_distinct_pairs():
    labels = torch.arange(1000) % 10
    gen = torch.Generator().manual_seed(3)
    image, wrong = fixed_negative_pairs(labels, list(range(10)), gen)
    assert image.shape == (1000,) and wrong.shape == (1000,)
    assert (wrong != labels[image]).all()
    pairs = set(zip(image.tolist(), wrong.tolist()))
    assert len(pairs) == 1000  # drawn without replacement
    # seeded: the same draw again
    image2, wrong2 = fixed_negative_pairs(labels, list(range(10)), torch.Generator().manual_seed(3))
    assert torch.equal(image, image2) and torch.equal(wrong, wrong2)
    # every wrong label is used, roughly uniformly
    counts = torch.bincount(wrong, minlength=10)
    assert counts.min() > 60


def test_heldout_negatives_use_only_seen_labels():
    labels = torch.tensor([c for c in range(10) if c != 4] * 50)
    seen = [c for c in range(10) if c != 4]
    image, wrong = fixed_negative_pairs(labels, seen, torch.Generator().manual_seed(0))
    assert not (wrong == 4).any() and (wrong != labels[image]).all()
    resampled = resampled_negative_labels(labels, seen, torch.Generator().manual_seed(0))
    assert not (resampled == 4).any() and (resampled != labels).all()


def test_resampled_negatives_change_between_draws():
    labels = torch.arange(500) % 10
    a = resampled_negative_labels(labels, list(range(10)), torch.Generator().manual_seed(1))
    b = resampled_negative_labels(labels, list(range(10)), torch.Generator().manual_seed(2))
    assert (a != labels).all() and (b != labels).all()
    assert (a != b).float().mean() > 0.5


def test_wrong_label_table():
    table = wrong_label_table([0, 1, 2])
    assert table[1].tolist() == [0, 2] and table.shape == (10, 2)
