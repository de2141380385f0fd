"""Deterministic stratified splits and the train-fullsup protocol."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsol.data import DatasetFormatError, ImageRecord, apply_split, fullsup_split, stratified_split


def _keys(counts: dict[int, int]) -> dict[int, list[str]]:
    return {label: [f"c{label}_{i:03d}" for i in range(n)] for label, n in counts.items()}


def test_glas_counts_of_the_min_max_entropy_code() -> None:
    # GlaS training set: 37 benign, 48 malignant -> valid ceil(20 %) per class = 8 + 10, train 29 + 38
    # (min-max entropy notes §5)
    assignment = stratified_split(_keys({0: 37, 1: 48}), [("valid", 0.2)], seed=0)
    counts = Counter((key[:2], split) for key, split in assignment.items())
    assert counts == {("c0", "valid"): 8, ("c0", "train"): 29, ("c1", "valid"): 10, ("c1", "train"): 38}


def test_same_seed_same_split_other_seed_other_split() -> None:
    keys = _keys({0: 30, 1: 30})
    first = stratified_split(keys, [("val", 0.2), ("test", 0.3)], seed=1)
    assert first == stratified_split(
        {k: list(reversed(v)) for k, v in keys.items()}, [("val", 0.2), ("test", 0.3)], seed=1
    )
    assert first != stratified_split(keys, [("val", 0.2), ("test", 0.3)], seed=2)


def test_adding_a_class_never_moves_another_class() -> None:
    before = stratified_split(_keys({0: 20, 1: 25}), [("val", 0.25)], seed=0)
    after = stratified_split(_keys({0: 20, 1: 25, 2: 9}), [("val", 0.25)], seed=0)
    assert {k: v for k, v in after.items() if not k.startswith("c2")} == before


@settings(max_examples=50, deadline=None)
@given(
    counts=st.dictionaries(st.integers(0, 5), st.integers(1, 40), min_size=1, max_size=4),
    fractions=st.lists(st.floats(0.0, 0.45), min_size=1, max_size=2),
    seed=st.integers(0, 1000),
)
def test_split_invariants(counts: dict[int, int], fractions: list[float], seed: int) -> None:
    held_out = [(f"h{i}", f) for i, f in enumerate(fractions)]
    keys = _keys(counts)
    assignment = stratified_split(keys, held_out, seed=seed)
    assert set(assignment) == {k for members in keys.values() for k in members}  # a partition
    for members in keys.values():
        per_split = Counter(assignment[k] for k in members)
        assert per_split["train"] >= 1  # every class keeps a training image
        taken = 0
        for name, fraction in held_out:  # the ceil rule, capped so that one image stays in train
            expected = min(math.ceil(fraction * len(members) - 1e-9), max(len(members) - taken - 1, 0))
            assert per_split[name] == expected
            taken += expected


def test_split_errors() -> None:
    with pytest.raises(ValueError, match=r"fraction of 'val' must be in \[0, 1\), got 1.5"):
        stratified_split(_keys({0: 3}), [("val", 1.5)], seed=0)
    with pytest.raises(ValueError, match="split names must be distinct"):
        stratified_split(_keys({0: 3}), [("train", 0.2)], seed=0)


def _records(per_class: int, *, masks: bool = True) -> list[ImageRecord]:
    return [
        ImageRecord(f"{label}_{i}.png", label, 8, 8, mask_paths=(f"{label}_{i}.png",) if masks else ())
        for label in range(3)
        for i in range(per_class)
    ]


def test_fullsup_split_is_per_class_and_disjoint_from_test() -> None:
    records = _records(10)
    test_ids = {r.image_id for r in records if r.image_id.endswith(("_0.png", "_1.png", "_2.png"))}
    chosen = fullsup_split(records, 5, seed=0, exclude=test_ids)
    assert Counter(r.label for r in chosen) == {0: 5, 1: 5, 2: 5}
    assert not {r.image_id for r in chosen} & test_ids
    assert chosen == fullsup_split(list(reversed(records)), 5, seed=0, exclude=test_ids)


def test_fullsup_split_needs_enough_labelled_images() -> None:
    with pytest.raises(ValueError, match=r"class 0 has 0 images with masks .* fewer than per_class=2"):
        fullsup_split(_records(4, masks=False), 2, seed=0)
    boxed = [
        ImageRecord(f"{label}_{i}.png", label, 8, 8, boxes=((0, 0, 4, 4),))
        for label in (0, 1)
        for i in range(3)
    ]
    assert Counter(r.label for r in fullsup_split(boxed, 2, seed=0, require_mask=False)) == {0: 2, 1: 2}


def test_apply_split_groups_and_refuses_empty_or_unassigned() -> None:
    records = _records(2)
    assignment = {r.image_id: ("val" if r.image_id.startswith("0_") else "train") for r in records}
    grouped = apply_split(records, assignment)
    assert [r.image_id for r in grouped["val"]] == ["0_0.png", "0_1.png"] and len(grouped["train"]) == 4
    with pytest.raises(DatasetFormatError, match=r"image id '2_1.png' has no split"):
        apply_split(records, {k: v for k, v in assignment.items() if k != "2_1.png"})
    with pytest.raises(DatasetFormatError, match=r"empty split\(s\) \['train', 'test'\]"):
        apply_split(records[:2], {**assignment, "ghost.png": "test"})
