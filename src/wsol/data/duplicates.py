"""Exact and near-duplicate images, found by a perceptual hash, so that a split keeps them together.

pHash (Zauner, "Implementation and benchmarking of perceptual image hash functions", 2010): the image in
grey levels is resized to 32 × 32, its 2-D DCT-II taken, and the 8 × 8 lowest frequencies without the DC term
(63 bits) thresholded at their median. Crops, rescaling and re-encoding of one scan change few bits: on BUSI,
the release's re-cropped copies of one scan lie within 6 bits while distinct scans are further apart.
Images whose hashes differ in at most ``max_distance`` bits are linked; groups are the connected components.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.fft import dctn
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from wsol.data.images import read_image

HASH_SIDE = 32
LOW_FREQUENCIES = 8
DEFAULT_MAX_DISTANCE = 6


def perceptual_hash(image: np.ndarray) -> np.ndarray:
    """63-bit pHash (bool array) of an (H, W, 3) uint8 RGB image."""
    grey = Image.fromarray(image).convert("L").resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS)
    low = dctn(np.asarray(grey, np.float64), norm="ortho")[:LOW_FREQUENCIES, :LOW_FREQUENCIES].ravel()[1:]
    return low > np.median(low)


def duplicate_groups(paths: Sequence[Path], max_distance: int = DEFAULT_MAX_DISTANCE) -> list[list[int]]:
    """Indices of ``paths`` grouped by near-duplication (groups of two or more images only)."""
    if not paths:
        return []
    hashes = np.stack([perceptual_hash(read_image(path)) for path in paths])
    distance = (hashes[:, None, :] != hashes[None, :, :]).sum(-1)
    count, component = connected_components(csr_matrix(distance <= max_distance), directed=False)
    members: list[list[int]] = [[] for _ in range(count)]
    for index, group in enumerate(component.tolist()):
        members[group].append(index)
    return [group for group in members if len(group) > 1]
