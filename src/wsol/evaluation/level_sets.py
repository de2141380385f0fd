"""Exact contour statistics of all 256 binarisations of a uint8 map in three union-find sweeps (numba).

``boxes.box_correctness`` needs, for every level t, the boxes ``cv2.findContours(q > t, RETR_TREE)`` would
give and the one ``max(contours, key=cv2.contourArea)`` would pick. Tracing 256 binarisations costs ~256
full-image scans; these sweeps get the same answers from three passes over the pixels sorted by value, using
facts about OpenCV's border following (Suzuki & Abe) that ``tests/evaluation`` checks against
``findContours`` itself:

* ``RETR_TREE`` returns one outer border per 8-connected foreground component (its bounding rectangle is the
  component's) and one hole border per 4-connected background component that does not reach the (zero-padded)
  image border; a hole border runs through the foreground pixels around the hole, so its bounding rectangle is
  the hole's grown by one pixel on each side.
* ``cv2.contourArea`` of an outer border is the area of the polygon through the border pixels' centres. Over
  the 2x2 cells of pixel centres it equals (#cells with 4 corners in the filled component) + ½ (#cells with
  3), the filled component being the component plus everything it encloses (holes and what lies in them).
* Components nested in a hole have a strictly smaller area than the enclosing one, a hole border never has a
  larger area than its parent and comes after it, and top-level outer borders come in reverse raster order of
  their first pixel; so ``max`` picks, among top-level components, the largest area, ties going to the one
  whose first pixel comes last in raster order.

Sweep 1 grows foreground components from the brightest value down (component boxes, V2); it is skipped when
no component is ever nested in a hole (then the top-level components of sweep 3 are all the components),
which the Euler characteristics of the holes, kept by sweep 2, tell.
Sweep 2 grows background components from the darkest value up, with a virtual exterior node (hole boxes, V2)
and lists the pixels in the order they join the exterior background, i.e. by the level ``t_exit`` from which
each belongs to it. The filled top-level components at level t are the 8-connected components of
``{t_exit > t}``; sweep 3 grows them, reading that list backwards, and
accumulates the cell areas (V1).
"""

from __future__ import annotations

import threading

import numba
import numpy as np

_LEVELS = 256


def _neighbour_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables over the 256 masks of added 8-neighbours (bit j = ring cell j, N, NE, E, SE, S, SW, W,
    NW): the ring cells where a run of added cells starts (count first), and the number of p's four 2x2 cells
    that get a third or fourth corner when p is added (``_fill_sweep``'s half-cells).

    Consecutive ring cells are 8-adjacent, so each run already lies in one component and one find per run
    suffices (at cell 0 when the whole ring is added)."""
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    starts = bits & (1 - np.roll(bits, 1, axis=1))
    starts[255, 0] = 1
    runs = np.zeros((256, 5), np.int64)
    for mask in range(256):
        found = np.flatnonzero(starts[mask])
        runs[mask, 0] = len(found)
        runs[mask, 1 : 1 + len(found)] = found
    corners = bits[:, [0, 2, 4, 6]] + bits[:, [1, 3, 5, 7]] + bits[:, [2, 4, 6, 0]]
    return runs, (corners >= 2).sum(axis=1).astype(np.int64)


_RUNS, _HALVES = _neighbour_tables()

# Per-root record columns: bounding extent, size (union by size), half-cell count and first pixel (fill),
# Euler characteristic (holes).
_XMIN, _YMIN, _XMAX, _YMAX, _SIZE, _HALF, _FIRST, _CHI = range(8)


@numba.njit(cache=True, error_model="numpy")
def _find(parent: np.ndarray, node: int) -> int:
    """Root of ``node`` with path halving."""
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@numba.njit(cache=True, error_model="numpy")
def _best_iou(x0: int, y0: int, x1: int, y1: int, gt: np.ndarray) -> float:
    """Max IoU of one box over the GT boxes, +1-pixel convention, 0 for a non-positive union."""
    best = 0.0
    for g in range(gt.shape[0]):
        inter_w = min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1
        inter_h = min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1
        inter = max(0, inter_w) * max(0, inter_h)
        union = (x1 - x0 + 1) * (y1 - y0 + 1) + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
        iou = 0.0 if union <= 0 else inter / union
        if iou > best:
            best = iou
    return best


@numba.njit(cache=True, error_model="numpy")
def _record_iou(rec: np.ndarray, r: int, grow: int, target: tuple) -> float:
    """IoU of the box of root r's extent grown by ``grow`` pixels; ``target`` = (width, height, GT boxes,
    parity convention, see ``boxes.BoxConvention``)."""
    width, height, gt, parity = target
    xmin, ymin = rec[r, _XMIN] - grow, rec[r, _YMIN] - grow
    xmax, ymax = rec[r, _XMAX] + grow, rec[r, _YMAX] + grow
    if parity:
        return _best_iou(xmin, ymin, min(xmax + 1, width - 1), min(ymax + 1, height - 1), gt)
    return _best_iou(xmin, ymin, xmax, ymax, gt)


# All sweeps work on the image padded by one pixel on each side (no bounds checks; the padding is also
# findContours' implicit zero frame). Index of pixel (y, x): (y + 1) * (W + 2) + x + 1, raster-monotone.


@numba.njit(cache=True, error_model="numpy")
def _buckets(values: np.ndarray, order: np.ndarray, stride: int, offset: int) -> np.ndarray:
    """Counting sort of the indices ``y * stride + x + offset`` of a 2-D uint8 array by value (raster order
    within a value); returns ``bounds``: the indices of value v are ``order[bounds[v]:bounds[v + 1]]``."""
    height, width = values.shape
    bounds = np.zeros(_LEVELS + 1, np.int64)
    for y in range(height):
        for x in range(width):
            bounds[values[y, x] + 1] += 1
    for v in range(_LEVELS):
        bounds[v + 1] += bounds[v]
    fill = bounds[:-1].copy()
    for y in range(height):
        for x in range(width):
            value = values[y, x]
            order[fill[value]] = y * stride + x + offset
            fill[value] += 1
    return bounds


@numba.njit(cache=True, error_model="numpy")
def _remove(alive: np.ndarray, slot: np.ndarray, n_alive: int, node: int) -> int:
    """Swap-remove ``node`` from the list of live roots; returns the new length."""
    last = alive[n_alive - 1]
    alive[slot[node]] = last
    slot[last] = slot[node]
    return n_alive - 1


@numba.njit(cache=True, error_model="numpy")
def _new_root(p: int, x: int, y: int, rec: np.ndarray, parent: np.ndarray, cached: np.ndarray) -> None:
    parent[p] = p
    rec[p, _XMIN] = rec[p, _XMAX] = x
    rec[p, _YMIN] = rec[p, _YMAX] = y
    rec[p, _SIZE] = 1
    rec[p, _HALF] = 0
    rec[p, _FIRST] = p
    rec[p, _CHI] = 0
    cached[p] = -1.0


@numba.njit(cache=True, error_model="numpy")
def _absorb(rec: np.ndarray, root: int, other: int) -> None:
    """Merge root ``other``'s record into ``root``'s."""
    rec[root, _XMIN] = min(rec[root, _XMIN], rec[other, _XMIN])
    rec[root, _YMIN] = min(rec[root, _YMIN], rec[other, _YMIN])
    rec[root, _XMAX] = max(rec[root, _XMAX], rec[other, _XMAX])
    rec[root, _YMAX] = max(rec[root, _YMAX], rec[other, _YMAX])
    rec[root, _SIZE] += rec[other, _SIZE]
    rec[root, _HALF] += rec[other, _HALF]
    rec[root, _FIRST] = min(rec[root, _FIRST], rec[other, _FIRST])
    rec[root, _CHI] += rec[other, _CHI]


@numba.njit(cache=True, error_model="numpy")
def _join(rec: np.ndarray, root: int, x: int, y: int) -> None:
    """Add pixel (x, y) to root's extent and size."""
    rec[root, _XMIN] = min(rec[root, _XMIN], x)
    rec[root, _YMIN] = min(rec[root, _YMIN], y)
    rec[root, _XMAX] = max(rec[root, _XMAX], x)
    rec[root, _YMAX] = max(rec[root, _YMAX], y)
    rec[root, _SIZE] += 1


@numba.njit(cache=True, error_model="numpy")
def _level_summary(
    rec: np.ndarray, cached: np.ndarray, alive: np.ndarray, n_alive: int, grow: int, target: tuple
) -> tuple[float, float, int]:
    """Over the live roots (n_alive > 0): the IoU of the one of largest half-cell count (ties: latest first
    pixel), the best IoU (boxes grown by ``grow``; stale cached IoUs recomputed) and the smallest χ."""
    chosen = alive[0]
    best = -1.0
    chi = rec[chosen, _CHI]
    for i in range(n_alive):
        r = alive[i]
        if rec[r, _HALF] > rec[chosen, _HALF] or (
            rec[r, _HALF] == rec[chosen, _HALF] and rec[r, _FIRST] > rec[chosen, _FIRST]
        ):
            chosen = r
        if cached[r] < 0:
            cached[r] = _record_iou(rec, r, grow, target)
        best = max(best, cached[r])
        chi = min(chi, rec[r, _CHI])
    return cached[chosen], best, chi


@numba.njit(cache=True, error_model="numpy")
def _sweep8(
    order: np.ndarray, bounds: np.ndarray, target: tuple, work: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Grow 8-connected components from level 255 down (pixels of level e join for t < e); per level t:
    the IoU of the component of largest half-cell count (ties: latest first pixel; -1: empty level) and the
    best IoU over all components (-1: none).

    One mask of the 8 added neighbours per pixel gives its neighbour runs and half-cells (``_RUNS``,
    ``_HALVES``); the runs' roots are united by size and absorbed roots dropped from the live list.
    """
    stride = target[0] + 2
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    parent, added, rec, cached, alive, slot, xs, ys = work[1:9]
    added[:] = 0
    n_alive = 0
    largest = np.full(_LEVELS, -1.0)
    best_all = np.full(_LEVELS, -1.0)
    for e in range(_LEVELS - 1, 0, -1):
        for k in range(bounds[e], bounds[e + 1]):
            p = order[k]
            mask = 0
            for j in range(8):
                mask |= np.int64(added[p + ring[j]]) << j
            added[p] = 1
            if mask == 0:
                _new_root(p, xs[p], ys[p], rec, parent, cached)
                alive[n_alive] = p
                slot[p] = n_alive
                n_alive += 1
                continue
            root = _find(parent, p + ring[_RUNS[mask, 1]])
            for i in range(2, _RUNS[mask, 0] + 1):
                other = _find(parent, p + ring[_RUNS[mask, i]])
                if other != root:
                    if rec[root, _SIZE] < rec[other, _SIZE]:
                        root, other = other, root
                    parent[other] = root
                    _absorb(rec, root, other)
                    n_alive = _remove(alive, slot, n_alive, other)
            parent[p] = root
            _join(rec, root, xs[p], ys[p])
            rec[root, _HALF] += _HALVES[mask]
            rec[root, _FIRST] = min(rec[root, _FIRST], p)
            cached[root] = -1.0
        if n_alive > 0:
            largest[e - 1], best_all[e - 1], _ = _level_summary(rec, cached, alive, n_alive, 0, target)
    return largest, best_all


@numba.njit(cache=True, error_model="numpy")
def _open_hole(hole: int, following: np.ndarray, exits: np.ndarray, n_exits: int) -> int:
    """Append the members of ``hole``, which joins the exterior, to ``exits``; returns their new count."""
    member = hole
    while member != -1:
        exits[n_exits] = member
        n_exits += 1
        member = following[member]
    return n_exits


@numba.njit(cache=True, error_model="numpy")
def _background_sweep(  # noqa: C901, PLR0915 (see the last paragraph of the docstring)
    order: np.ndarray, bounds: np.ndarray, target: tuple, work: tuple
) -> tuple[np.ndarray, bool, np.ndarray]:
    """Per level t, the best IoU over hole-border boxes of ``q > t`` (-1: no hole); whether at some level a
    hole surrounds a foreground component; and ``exit_bounds``: the pixels that join the exterior background
    at level v (their ``t_exit``) are ``exits[exit_bounds[v]:exit_bounds[v + 1]]`` (``exits`` = ``work[11]``).

    Grows 4-connected background components from the darkest level up; the padding belongs to a virtual
    exterior node (index n) whose members are not tracked; each hole keeps a member list (``tail``,
    ``following``) to list them when it opens up to the exterior, and its Euler characteristic
    χ = V − E + F (pixels, 4-adjacent pairs, full 2x2 blocks; 1 − its own holes for a 4-connected set): a
    hole with χ < 1 encloses foreground, i.e. a component nested in it (Gray, "Local properties of binary
    images in two dimensions", IEEE Trans. Computers 1971).

    One compiled loop on purpose: per-pixel helpers would need the work arrays either one by one (more than
    eight arguments) or unpacked from the ``work`` tuple per pixel, whose reference counting made the sweep
    10x slower (measured).
    """
    stride = target[0] + 2
    exterior = (target[1] + 2) * stride
    neighbours = np.array([-stride, -1, 1, stride])
    # the four 2x2 blocks around p: (vertical, horizontal) neighbour offsets, the diagonal is their sum
    verticals = np.array([-stride, -stride, stride, stride])
    horizontals = np.array([-1, 1, 1, -1])
    parent, added, rec, cached, alive, slot, xs, ys, tail, following, exits, frame = work[1:13]
    added[:] = frame  # the padding is exterior at every level (its parent is the exterior node)
    nested = False
    exit_bounds = np.zeros(_LEVELS + 1, np.int64)
    n_exits = 0
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    for v in range(_LEVELS):
        exit_bounds[v] = n_exits
        for k in range(bounds[v], bounds[v + 1]):
            p = order[k]
            added[p] = 1
            root = -1
            change = 1  # of χ: +1 pixel, −1 per added 4-neighbour, +1 per 2x2 block the pixel completes
            for offset in neighbours:
                if not added[p + offset]:
                    continue
                change -= 1
                other = _find(parent, p + offset)
                if root == -1:
                    root = other
                    parent[p] = root
                    if root == exterior:
                        exits[n_exits] = p
                        n_exits += 1
                    else:
                        _join(rec, root, xs[p], ys[p])
                        following[tail[root]] = p
                        tail[root] = p
                        following[p] = -1
                    continue
                if other == root:
                    continue
                if root == exterior or other == exterior:
                    hole = root if other == exterior else other
                    n_exits = _open_hole(hole, following, exits, n_exits)
                    parent[hole] = exterior
                    root = exterior
                else:
                    if rec[root, _SIZE] < rec[other, _SIZE]:
                        root, other = other, root
                    parent[other] = root
                    _absorb(rec, root, other)
                    following[tail[root]] = other
                    tail[root] = tail[other]
                    hole = other
                n_alive = _remove(alive, slot, n_alive, hole)
            if root == -1:
                root = p
                _new_root(p, xs[p], ys[p], rec, parent, cached)
                tail[p] = p
                following[p] = -1
                alive[n_alive] = p
                slot[p] = n_alive
                n_alive += 1
            if root != exterior:
                cached[root] = -1.0
                for j in range(4):
                    vertical, horizontal = p + verticals[j], p + horizontals[j]
                    change += added[vertical] & added[horizontal] & added[vertical + horizontals[j]]
                rec[root, _CHI] += change
        if n_alive > 0:
            _, out[v], chi = _level_summary(rec, cached, alive, n_alive, 1, target)
            nested |= chi < 1
    exit_bounds[_LEVELS] = n_exits
    return out, nested, exit_bounds


@numba.njit(cache=True, error_model="numpy")
def _map_level_ious(
    q: np.ndarray, gt: np.ndarray, parity: bool, work: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_ious` of one map."""
    height, width = q.shape
    stride = width + 2
    order, exits = work[0], work[11]
    bounds = _buckets(q, order, stride, stride + 1)
    target = (width, height, gt, parity)
    holes, nested, exit_bounds = _background_sweep(order, bounds, target, work)
    largest, top_level = _sweep8(exits, exit_bounds, target, work)
    # Without a component nested in a hole at any level, the fill sweep already saw every component box and
    # the foreground sweep can be skipped.
    components = _sweep8(order, bounds, target, work)[1] if nested else top_level
    return largest, np.maximum(components, holes)


@numba.njit(cache=True, error_model="numpy")
def _batch_level_ious(
    maps: np.ndarray, gt: np.ndarray, gt_bounds: np.ndarray, parity: bool, work: tuple
) -> tuple[np.ndarray, np.ndarray]:
    largest = np.empty((maps.shape[0], _LEVELS))
    every = np.empty((maps.shape[0], _LEVELS))
    for b in range(maps.shape[0]):
        gt_b = gt[gt_bounds[b] : gt_bounds[b + 1]]
        largest[b], every[b] = _map_level_ious(maps[b], gt_b, parity, work)
    return largest, every


class _Workspace(threading.local):
    """Work arrays reused from one map to the next (fresh allocations cost more than the sweeps' memsets)."""

    shape: tuple[int, int] | None = None
    arrays: tuple = ()

    def get(self, height: int, width: int) -> tuple:
        if self.shape != (height, width):
            n = (height + 2) * (width + 2)
            frame = np.ones((height + 2, width + 2), np.uint8)
            frame[1:-1, 1:-1] = 0
            parent = np.arange(n + 1, dtype=np.int32)
            parent[:-1][frame.ravel() == 1] = n  # the padding hangs from the exterior node (background sweep)
            y, x = np.divmod(np.arange(n, dtype=np.int32), width + 2)
            self.shape = (height, width)
            self.arrays = (
                np.empty(n, np.int32),  # order of the pixels by value
                parent,  # (+ the exterior node)
                np.empty(n, np.uint8),  # added
                np.empty((n, 8), np.int32),  # per-root records (_XMIN ... _CHI)
                np.empty(n, np.float64),  # cached IoU per root, -1 when stale
                np.empty(n, np.int32),  # alive roots
                np.empty(n, np.int32),  # slot in alive
                x - 1,  # image x of a padded index
                y - 1,  # image y
                np.empty(n, np.int32),  # tail of a hole's member list
                np.empty(n, np.int32),  # following member
                np.empty(n, np.int32),  # the pixels in the order they join the exterior background
                frame.ravel(),  # added before the background sweep: the padding
            )
        return self.arrays


_WORKSPACE = _Workspace()


def level_ious_batch(
    quantized: np.ndarray, gt: np.ndarray, gt_bounds: np.ndarray, parity: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_ious` of a (B, H, W) uint8 batch in one compiled call (no Python work per map).

    The GT boxes of map b are ``gt[gt_bounds[b]:gt_bounds[b + 1]]`` (int64 (G, 4)); returns two (B, 256)
    arrays.
    """
    quantized = np.ascontiguousarray(quantized, dtype=np.uint8)
    work = _WORKSPACE.get(*quantized.shape[1:])
    gt = np.ascontiguousarray(gt, dtype=np.int64).reshape(-1, 4)
    return _batch_level_ious(quantized, gt, np.asarray(gt_bounds, dtype=np.int64), parity, work)


def level_ious(quantized: np.ndarray, gt: np.ndarray, parity: bool) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU per level t in [0, 255] of the largest-contour box (V1) and over all contour boxes (V2).

    -1 marks levels whose binarisation ``quantized > t`` is empty.
    """
    gt = np.asarray(gt, dtype=np.int64).reshape(-1, 4)
    largest, every = level_ious_batch(np.asarray(quantized)[None], gt, np.array([0, len(gt)]), parity)
    return largest[0], every[0]
