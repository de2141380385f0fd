"""Triplet sampling and the triplet loss of method II (seed ``002`` Eq. 2-4)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.methods.triplets import ClassBalancedBatchSampler, sample_triplets, triplet_margin_loss

label_lists = st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=24)


@settings(max_examples=60, deadline=None)
@given(labels=label_lists, seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_positives_share_the_class_and_negatives_do_not(labels: list[int], seed: int) -> None:
    y = torch.tensor(labels)
    triplets = sample_triplets(y, torch.Generator().manual_seed(seed))
    a, p, n = triplets.anchor, triplets.positive, triplets.negative
    assert torch.equal(y[a], y[p])
    assert (a != p).all()
    assert (y[a] != y[n]).all()
    # Anchors are exactly the elements with a same-class partner and an other-class element in the batch.
    counts = torch.bincount(y, minlength=5)
    eligible = [i for i, c in enumerate(labels) if counts[c] >= 2 and counts[c] < len(labels)]
    assert a.tolist() == eligible


def test_draws_are_uniform_among_eligible_images() -> None:
    y = torch.tensor([0, 0, 0, 0, 1, 2])
    generator = torch.Generator().manual_seed(0)
    positive_hits = torch.zeros(6)
    negative_hits = torch.zeros(6)
    for _ in range(3000):
        triplets = sample_triplets(y, generator)
        positive_hits[triplets.positive[0]] += 1  # anchor 0: positives 1, 2, 3
        negative_hits[triplets.negative[0]] += 1  # anchor 0: negatives 4, 5
    assert positive_hits[0] == 0 and negative_hits[:4].sum() == 0
    assert torch.allclose(positive_hits[1:4] / 3000, torch.full((3,), 1 / 3), atol=0.04)
    assert torch.allclose(negative_hits[4:] / 3000, torch.full((2,), 1 / 2), atol=0.04)


def test_single_class_batch_has_no_triplets_and_zero_loss() -> None:
    triplets = sample_triplets(torch.tensor([3, 3, 3]))
    assert len(triplets) == 0
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = triplet_margin_loss(empty, empty, empty)
    assert loss.item() == 0.0
    loss.backward()


def test_sample_triplets_rejects_non_vector_labels() -> None:
    with pytest.raises(ValueError, match="1-D tensor"):
        sample_triplets(torch.zeros(2, 2, dtype=torch.long))


def test_triplet_margin_loss_hand_computed() -> None:
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # distances 5 and 1
    n = torch.tensor([[0.0, 2.0], [0.0, 3.0]])  # distances 2 and 3
    # max(5 - 2 + 1, 0) = 4 ; max(1 - 3 + 1, 0) = 0 -> mean 2
    assert triplet_margin_loss(a, p, n, margin=1.0).item() == pytest.approx(2.0)
    assert triplet_margin_loss(a, p, n, margin=0.5).item() == pytest.approx(1.75)
    with pytest.raises(ValueError, match="equal shapes"):
        triplet_margin_loss(a, p, n[:1])


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(min_value=0, max_value=6), min_size=8, max_size=60),
    images_per_class=st.integers(min_value=2, max_value=3),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_class_balanced_batches(labels: list[int], images_per_class: int, seed: int) -> None:
    counts = torch.bincount(torch.tensor(labels))
    usable = int((counts >= images_per_class).sum())
    batch_size = 4 * images_per_class
    if usable < 2:
        with pytest.raises(ValueError, match="at least 2 classes"):
            ClassBalancedBatchSampler(labels, batch_size, images_per_class=images_per_class)
        return
    sampler = ClassBalancedBatchSampler(labels, batch_size, images_per_class=images_per_class, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == max(1, len(labels) // batch_size)
    for batch in batches:
        assert len(set(batch)) == len(batch)  # no image twice
        classes = [labels[i] for i in batch]
        per_class = {c: classes.count(c) for c in set(classes)}
        assert set(per_class.values()) == {images_per_class}
        assert len(per_class) == min(4, usable) >= 2
        # Every element of such a batch is an anchor with a positive and a negative.
        assert len(sample_triplets(torch.tensor(classes))) == len(batch)
    assert list(sampler) == batches  # same seed and epoch -> same batches


def test_class_balanced_sampler_reseeds_per_epoch_and_validates() -> None:
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] * 4
    sampler = ClassBalancedBatchSampler(labels, 8, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert len(first) == len(labels) // 8
    with pytest.raises(ValueError, match="images_per_class"):
        ClassBalancedBatchSampler(labels, 8, images_per_class=1)
    with pytest.raises(ValueError, match="batch_size"):
        ClassBalancedBatchSampler(labels, 3)
