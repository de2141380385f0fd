"""Deterministic, stratified, seeded split generation.

* :func:`stratified_split`: per class, ``ceil(fraction · n)`` images per held-out split, the rest to ``rest``
  (the min-max entropy code's per-class ``ceil(20 %)`` validation rule, R1 ``create_folds.py``; notes §5).
* :func:`grouped_stratified_split`: the same per-class rule with groups of keys (duplicates) kept together.
* :func:`fullsup_split`: "Evaluating WSOL methods right" (Choe et al., CVPR 2020): a small pixel- or
  box-labelled ``train-fullsup`` split (folder ``val``) of ``per_class`` images per class for model selection,
  drawn from the images that are not in test, so that it is disjoint from test by construction.
* :func:`split_overlaps` / :func:`require_disjoint_splits`: images listed in two splits (``wsol data check``
  reports them, ``wsol train`` refuses them: a test image seen in training inflates every figure).

Each class is shuffled by its own generator ``numpy.random.default_rng([seed, class])``, so adding a class (or
images of another class) never moves an image of this class.
"""

from __future__ import annotations

import math
import posixpath
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from wsol.data.format import DatasetFormatError, ImageRecord, read_dataset_info, read_split


def stratified_split(
    keys_by_class: Mapping[int, Sequence[str]],
    held_out: Sequence[tuple[str, float]],
    *,
    seed: int,
    rest: str = "train",
) -> dict[str, str]:
    """Assign every key a split name, class by class.

    ``held_out`` lists ``(split, fraction)``; each gets ``ceil(fraction · n_class)`` keys of each class (in
    that order), capped so that at least one key of each class stays in ``rest``. Keys are sorted before
    shuffling, so the input order does not matter.
    """
    for split, fraction in held_out:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"stratified_split: fraction of {split!r} must be in [0, 1), got {fraction}")
    names = [split for split, _ in held_out] + [rest]
    if len(set(names)) != len(names):
        raise ValueError(f"stratified_split: split names must be distinct, got {names}")
    assignment: dict[str, str] = {}
    for label in sorted(keys_by_class):
        keys = sorted(keys_by_class[label])
        if len(set(keys)) != len(keys):
            raise ValueError(f"stratified_split: duplicate keys in class {label}")
        order = np.random.default_rng([seed, label]).permutation(len(keys))
        shuffled = [keys[i] for i in order]
        start = 0
        for split, fraction in held_out:
            count = min(math.ceil(fraction * len(keys) - 1e-9), max(len(keys) - start - 1, 0))
            for key in shuffled[start : start + count]:
                assignment[key] = split
            start += count
        for key in shuffled[start:]:
            assignment[key] = rest
    return assignment


def fullsup_split(
    records: Sequence[ImageRecord],
    per_class: int,
    *,
    seed: int,
    exclude: set[str] | frozenset[str] = frozenset(),
    require_mask: bool = True,
) -> list[ImageRecord]:
    """``per_class`` labelled images of each class for the ``train-fullsup`` / ``val`` split (Choe et al.).

    Candidates are the records not in ``exclude`` (pass the test ids) that carry masks (``require_mask``) or
    at least boxes. Raises when a class has fewer candidates than ``per_class`` (the protocol fixes the
    count).
    """
    if per_class < 1:
        raise ValueError(f"fullsup_split: per_class must be >= 1, got {per_class}")
    by_class: dict[int, list[ImageRecord]] = {}
    for record in records:
        labelled = record.has_mask if require_mask else (record.has_mask or bool(record.boxes))
        if labelled and record.image_id not in exclude:
            by_class.setdefault(record.label, []).append(record)
    chosen: list[ImageRecord] = []
    for label in sorted({record.label for record in records}):
        candidates = sorted(by_class.get(label, []), key=lambda r: r.image_id)
        if len(candidates) < per_class:
            kind = "masks" if require_mask else "masks or boxes"
            raise ValueError(
                f"fullsup_split: class {label} has {len(candidates)} images with {kind} outside the excluded "
                f"set, fewer than per_class={per_class}"
            )
        order = np.random.default_rng([seed, label]).permutation(len(candidates))[:per_class]
        chosen.extend(candidates[i] for i in sorted(order))
    return chosen


def apply_split(
    records: Sequence[ImageRecord], assignment: Mapping[str, str]
) -> dict[str, list[ImageRecord]]:
    """Group records by ``assignment[image_id]`` (order kept); raises on an unassigned record/empty split."""
    splits: dict[str, list[ImageRecord]] = {name: [] for name in dict.fromkeys(assignment.values())}
    for record in records:
        if record.image_id not in assignment:
            raise DatasetFormatError(f"apply_split: image id {record.image_id!r} has no split")
        splits[assignment[record.image_id]].append(record)
    empty = [name for name, members in splits.items() if not members]
    if empty or not splits:
        raise DatasetFormatError(f"apply_split: empty split(s) {empty or ['<all>']}")
    return splits


def split_overlaps(records_by_split: Mapping[str, Sequence[ImageRecord]]) -> list[tuple[str, str, str]]:
    """``(image_id, first split, other split)`` for every image listed in two splits (ids compared after
    path normalisation, so ``./a.png`` and ``a.png`` are one image)."""
    first_split_of: dict[str, str] = {}
    overlaps = []
    for split, records in records_by_split.items():
        for record in records:
            first = first_split_of.setdefault(posixpath.normpath(record.image_id), split)
            if first != split:
                overlaps.append((record.image_id, first, split))
    return overlaps


def require_disjoint_splits(root: Path, splits: Sequence[str], *, allow: bool = False) -> None:
    """Raise (or, with ``allow``, warn) when an image of ``root`` is in two of ``splits``.

    The message names the dataset, how many images overlap, the first few, and the escape
    (``data.allow_overlap=true``, ``wsol train --allow-overlap``).
    """
    present = [split for split in splits if split in read_dataset_info(root).splits]
    overlaps = split_overlaps({split: read_split(root, split) for split in dict.fromkeys(present)})
    if not overlaps:
        return
    shown = "; ".join(f"{image!r} in {a!r} and {b!r}" for image, a, b in overlaps[:3])
    message = (
        f"{root}: {len(overlaps)} image(s) are in two splits ({shown}{' ...' if len(overlaps) > 3 else ''}); "
        "an image seen in training inflates every validation and test figure"
    )
    if not allow:
        raise DatasetFormatError(
            f"{message}. Fix the splits (`wsol data check` lists them all), or set data.allow_overlap=true "
            "(wsol train --allow-overlap) to train anyway"
        )
    warnings.warn(f"{message} (data.allow_overlap=true)", stacklevel=2)


def grouped_stratified_split(
    labels: Mapping[str, int],
    groups: Sequence[Sequence[str]],
    held_out: Sequence[tuple[str, float]],
    *,
    seed: int,
    rest: str = "train",
) -> dict[str, str]:
    """:func:`stratified_split` that keeps every group of keys (e.g. duplicate images) in one split.

    A group counts for the class of its first key in sorted order; per class, groups are shuffled by
    ``numpy.random.default_rng([seed, class])`` and given to each held-out split until it holds
    ``ceil(fraction · n_class)`` keys of the class (the last group may overshoot), the rest to ``rest`` (at
    least one group per class). Keys in no group form a group of their own.
    """
    grouped = [sorted(group) for group in groups if group]
    members = [key for group in grouped for key in group]
    if len(set(members)) != len(members) or not set(members) <= set(labels):
        raise ValueError("grouped_stratified_split: groups must be disjoint sets of labelled keys")
    grouped += [[key] for key in sorted(set(labels) - set(members))]
    by_class: dict[int, list[list[str]]] = {}
    for group in sorted(grouped):
        by_class.setdefault(labels[group[0]], []).append(group)
    assignment: dict[str, str] = {}
    for label in sorted(by_class):
        class_groups = by_class[label]
        total = sum(len(group) for group in class_groups)
        order = np.random.default_rng([seed, label]).permutation(len(class_groups)).tolist()
        for split, fraction in held_out:
            quota, taken = math.ceil(fraction * total - 1e-9), 0
            while taken < quota and len(order) > 1:  # one group at least stays in ``rest``
                group = class_groups[order.pop(0)]
                assignment.update(dict.fromkeys(group, split))
                taken += len(group)
        for index in order:
            assignment.update(dict.fromkeys(class_groups[index], rest))
    return assignment
