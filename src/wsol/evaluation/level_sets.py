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
which the Euler numbers (components − holes, from bit-quad counts) and the hole counts of sweep 2 tell.
Sweep 2 grows background components from the darkest value up, with a virtual exterior node (hole boxes, V2)
and records for every pixel the level ``t_exit`` from which it belongs to the exterior background. The filled
top-level components at level t are the 8-connected components of ``{t_exit > t}``; sweep 3 grows them and
accumulates the cell areas (V1).
"""

from __future__ import annotations

import threading

import numba
import numpy as np

_LEVELS = 256


@numba.njit(cache=True, error_model="numpy")
def _find(parent: np.ndarray, node: int) -> int:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:
        following = parent[node]
        parent[node] = root
        node = following
    return root


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
def _extent_iou(
    xmin: int, ymin: int, xmax: int, ymax: int, width: int, height: int, gt: np.ndarray, parity: bool
):
    """IoU of the box of a bounding extent in the given convention (see ``boxes.BoxConvention``)."""
    if parity:
        return _best_iou(xmin, ymin, min(xmax + 1, width - 1), min(ymax + 1, height - 1), gt)
    return _best_iou(xmin, ymin, xmax, ymax, gt)


@numba.njit(cache=True, error_model="numpy")
def _buckets(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Counting sort of values in [0, 255] into ``order``; returns ``bounds``, such that the indices of value
    v are ``order[bounds[v]:bounds[v + 1]]``."""
    bounds = np.zeros(_LEVELS + 1, np.int64)
    for value in values:
        bounds[value + 1] += 1
    for v in range(_LEVELS):
        bounds[v + 1] += bounds[v]
    fill = bounds[:-1].copy()
    for index in range(len(values)):
        value = values[index]
        order[fill[value]] = index
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
def _full_ring(added: np.ndarray, p: int, ring: np.ndarray) -> bool:
    """Whether all 8 neighbours of p are added.

    Consecutive ring cells are 8-adjacent, so each run of added cells around p already lies in one component:
    one find per run suffices (at the run's first cell, or at cell 0 when the whole ring is added).
    """
    for offset in ring:
        if not added[p + offset]:
            return False
    return True


@numba.njit(cache=True, error_model="numpy")
def _grow(box: np.ndarray, root: int, x0: int, y0: int, x1: int, y1: int) -> None:
    box[root, 0] = min(box[root, 0], x0)
    box[root, 1] = min(box[root, 1], y0)
    box[root, 2] = max(box[root, 2], x1)
    box[root, 3] = max(box[root, 3], y1)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _add_8connected(
    p: int,
    x: int,
    y: int,
    ring: np.ndarray,
    added: np.ndarray,
    parent: np.ndarray,
    size: np.ndarray,
    box: np.ndarray,
    alive: np.ndarray,
    slot: np.ndarray,
    n_alive: int,
    halves: np.ndarray,
    first: np.ndarray,
    fill: bool,
) -> tuple[int, int]:
    """Add pixel p at (x, y) to the 8-connected union-find forest of the added pixels.

    p joins the root of its first added neighbour run (see ``_full_ring``); the roots of the other runs are
    united with it by size, boxes grown and absorbed roots dropped from the live list; with no added
    neighbour p becomes a new live root. With ``fill`` the half-cell counts and first pixels (``_fill_sweep``)
    follow the merges too. Returns p's root and the new number of live roots.
    """
    added[p] = True
    root = -1
    for j in range(8):
        if not added[p + ring[j]] or (added[p + ring[j - 1]] and (j > 0 or not _full_ring(added, p, ring))):
            continue
        other = _find(parent, p + ring[j])
        if root == -1:
            root = other
            parent[p] = root
            size[root] += 1
            _grow(box, root, x, y, x, y)
            if fill:
                first[root] = min(first[root], p)
        elif other != root:
            if size[root] < size[other]:
                root, other = other, root
            parent[other] = root
            size[root] += size[other]
            _grow(box, root, box[other, 0], box[other, 1], box[other, 2], box[other, 3])
            if fill:
                halves[root] += halves[other]
                first[root] = min(first[root], first[other])
            n_alive = _remove(alive, slot, n_alive, other)
    if root == -1:
        root = p
        box[p, 0] = box[p, 2] = x
        box[p, 1] = box[p, 3] = y
        if fill:
            first[p] = p
        alive[n_alive] = p
        slot[p] = n_alive
        n_alive += 1
    return root, n_alive


# All sweeps work on the image padded by one never-added pixel on each side (no bounds checks; the padding is
# also findContours' implicit zero frame). Index of pixel (y, x): (y + 1) * (W + 2) + x + 1, raster-monotone.


@numba.njit(cache=True, error_model="numpy")
def _foreground_sweep(q: np.ndarray, gt: np.ndarray, parity: bool, work: tuple) -> np.ndarray:
    """Per level t, the best IoU over the boxes of all 8-connected components of ``q > t`` (-1: none)."""
    height, width = q.shape
    stride = width + 2
    n = (height + 2) * stride
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    order, parent, size, added, box, cached, alive, slot, halves, first = work[:10]
    bounds = _buckets(q.ravel(), order)
    for i in range(n):
        parent[i] = i
        size[i] = 1
        added[i] = False
        cached[i] = -1.0
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    for v in range(_LEVELS - 1, 0, -1):
        for k in range(bounds[v], bounds[v + 1]):
            y, x = divmod(order[k], width)
            p = (y + 1) * stride + x + 1
            root, n_alive = _add_8connected(
                p, x, y, ring, added, parent, size, box, alive, slot, n_alive, halves, first, False
            )
            cached[root] = -1.0
        best = -1.0
        for i in range(n_alive):
            r = alive[i]
            if cached[r] < 0:
                cached[r] = _extent_iou(box[r, 0], box[r, 1], box[r, 2], box[r, 3], width, height, gt, parity)
            best = max(best, cached[r])
        out[v - 1] = best
    return out


@numba.njit(cache=True, error_model="numpy")
def _background_sweep(
    q: np.ndarray, gt: np.ndarray, parity: bool, work: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Per level t, the best IoU over hole-border boxes of ``q > t`` (-1: no hole) and the number of holes;
    ``t_exit`` (padded) is left in the work arrays."""
    height, width = q.shape
    stride = width + 2
    n = (height + 2) * stride
    exterior = n
    neighbours = np.array([-stride, -1, 1, stride])
    order, parent, size, added, box, cached, alive, slot, tail, following, t_exit = work[:11]
    bounds = _buckets(q.ravel(), order)
    holes = np.zeros(_LEVELS, np.int64)
    parent[exterior] = exterior
    for p in range(n):
        y, x = divmod(p, stride)
        padding = y == 0 or x == 0 or y == height + 1 or x == width + 1
        added[p] = padding  # the padding is exterior at every level
        parent[p] = exterior if padding else p
        size[p] = 1
        cached[p] = -1.0
        tail[p] = p  # member lists of the holes, to stamp t_exit when they open up
        following[p] = -1
        t_exit[p] = 0
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    for v in range(_LEVELS):
        for k in range(bounds[v], bounds[v + 1]):
            y, x = divmod(order[k], width)
            p = (y + 1) * stride + x + 1
            added[p] = True
            root = -1
            for offset in neighbours:
                if not added[p + offset]:
                    continue
                other = _find(parent, p + offset)
                if root == -1:
                    root = other
                    parent[p] = root
                    if root == exterior:
                        t_exit[p] = v
                    else:
                        size[root] += 1
                        _grow(box, root, x, y, x, y)
                        following[tail[root]] = p
                        tail[root] = p
                    continue
                if other == root:
                    continue
                if root == exterior or other == exterior:
                    hole = root if other == exterior else other
                    member = hole
                    while member != -1:
                        t_exit[member] = v
                        member = following[member]
                    parent[hole] = exterior
                    root = exterior
                else:
                    if size[root] < size[other]:
                        root, other = other, root
                    parent[other] = root
                    size[root] += size[other]
                    _grow(box, root, box[other, 0], box[other, 1], box[other, 2], box[other, 3])
                    following[tail[root]] = other
                    tail[root] = tail[other]
                    hole = other
                n_alive = _remove(alive, slot, n_alive, hole)
            if root == -1:
                root = p
                box[p, 0] = box[p, 2] = x
                box[p, 1] = box[p, 3] = y
                alive[n_alive] = p
                slot[p] = n_alive
                n_alive += 1
            if root != exterior:
                cached[root] = -1.0
        best = -1.0
        for i in range(n_alive):
            r = alive[i]
            if cached[r] < 0:
                cached[r] = _extent_iou(
                    box[r, 0] - 1, box[r, 1] - 1, box[r, 2] + 1, box[r, 3] + 1, width, height, gt, parity
                )
            best = max(best, cached[r])
        out[v] = best
        holes[v] = n_alive
    return out, holes


@numba.njit(cache=True, error_model="numpy")
def _fill_sweep(
    height: int, width: int, gt: np.ndarray, parity: bool, work: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level t: the IoU of the box ``max(contours, key=cv2.contourArea)`` picks (-1: empty level), the
    best IoU over the top-level components' boxes, and their number.

    A 2x2 cell adds ½ to its component's area when its third corner joins the fill and ½ when its fourth does.
    """
    stride = width + 2
    n = (height + 2) * stride
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    order, parent, size, added, box, cached, alive, slot, halves, first, t_exit = work
    bounds = _buckets(t_exit, order)
    for i in range(n):
        parent[i] = i
        size[i] = 1
        added[i] = False
        halves[i] = 0
        cached[i] = -1.0
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    top_best = np.full(_LEVELS, -1.0)
    top_count = np.zeros(_LEVELS, np.int64)
    for e in range(_LEVELS - 1, 0, -1):
        for k in range(bounds[e], bounds[e + 1]):
            p = order[k]
            y, x = divmod(p, stride)
            y, x = y - 1, x - 1
            root, n_alive = _add_8connected(
                p, x, y, ring, added, parent, size, box, alive, slot, n_alive, halves, first, True
            )
            # The four cells with corner p are (N, NE, E), (E, SE, S), (S, SW, W), (W, NW, N) around it.
            for c in range(0, 8, 2):
                if added[p + ring[c]] + added[p + ring[c + 1]] + added[p + ring[(c + 2) % 8]] >= 2:
                    halves[root] += 1
            cached[root] = -1.0
        if n_alive == 0:
            continue
        chosen = alive[0]
        best = -1.0
        for i in range(n_alive):
            r = alive[i]
            if halves[r] > halves[chosen] or (halves[r] == halves[chosen] and first[r] > first[chosen]):
                chosen = r
            if cached[r] < 0:
                cached[r] = _extent_iou(box[r, 0], box[r, 1], box[r, 2], box[r, 3], width, height, gt, parity)
            best = max(best, cached[r])
        out[e - 1] = cached[chosen]
        top_best[e - 1] = best
        top_count[e - 1] = n_alive
    return out, top_best, top_count


@numba.njit(cache=True, error_model="numpy")
def _euler_numbers(padded: np.ndarray) -> np.ndarray:
    """Euler number (8-connected components minus 4-connected holes) of ``q > t`` for every t, from Gray's
    bit-quad counts E = (Q1 − Q3 − 2·QD) / 4 over the 2x2 quads of ``q`` padded with -1."""
    height, width = padded.shape
    quads = np.zeros(_LEVELS + 1, np.int64)  # difference array over t of Q1 − Q3 − 2·QD
    for y in range(height - 1):
        for x in range(width - 1):
            v0, v1 = np.int64(padded[y, x]), np.int64(padded[y, x + 1])
            v2, v3 = np.int64(padded[y + 1, x]), np.int64(padded[y + 1, x + 1])
            high1, low1 = max(v0, v1), min(v0, v1)
            high2, low2 = max(v2, v3), min(v2, v3)
            first, second = max(high1, high2), max(min(high1, high2), max(low1, low2))
            last, third = min(low1, low2), min(max(low1, low2), min(high1, high2))
            # one corner above for t in [second, first - 1], three for t in [last, third - 1]
            if first > second and first > 0:
                quads[max(second, 0)] += 1
                quads[first] -= 1
            if third > last and third > 0:
                quads[max(last, 0)] -= 1
                quads[third] += 1
            # two diagonal corners above (top-left + bottom-right, or top-right + bottom-left)
            for top, bottom in ((min(v0, v3), max(v1, v2)), (min(v1, v2), max(v0, v3))):
                if top > bottom and top > 0:
                    quads[max(bottom, 0)] -= 2
                    quads[top] += 2
    return np.cumsum(quads)[:_LEVELS] // 4


@numba.njit(cache=True, error_model="numpy")
def _map_level_ious(
    q: np.ndarray, gt: np.ndarray, parity: bool, work: tuple, padded: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_ious` of one map; ``padded`` is a (H + 2, W + 2) int16 work array framed by -1."""
    height, width = q.shape
    holes, hole_count = _background_sweep(q, gt, parity, work)
    largest, top_level, top_count = _fill_sweep(height, width, gt, parity, work)
    # Components = Euler number + holes; when they are all top-level (none nested in a hole) at every level,
    # the fill sweep already saw every component box and the foreground sweep can be skipped.
    padded[1:-1, 1:-1] = q
    if np.array_equal(_euler_numbers(padded) + hole_count, top_count):
        components = top_level
    else:
        components = _foreground_sweep(q, gt, parity, work)
    return largest, np.maximum(components, holes)


@numba.njit(cache=True, error_model="numpy")
def _batch_level_ious(
    maps: np.ndarray, gt: np.ndarray, gt_bounds: np.ndarray, parity: bool, work: tuple, padded: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    largest = np.empty((maps.shape[0], _LEVELS))
    every = np.empty((maps.shape[0], _LEVELS))
    for b in range(maps.shape[0]):
        gt_b = gt[gt_bounds[b] : gt_bounds[b + 1]]
        largest[b], every[b] = _map_level_ious(maps[b], gt_b, parity, work, padded)
    return largest, every


class _Workspace(threading.local):
    """Work arrays reused from one map to the next (fresh allocations cost more than the sweeps' memsets)."""

    shape: tuple[int, int] | None = None
    arrays: tuple = ()
    padded: np.ndarray = np.empty((0, 0), np.int16)

    def get(self, height: int, width: int) -> tuple[tuple, np.ndarray]:
        if self.shape != (height, width):
            n = (height + 2) * (width + 2)
            self.shape = (height, width)
            self.arrays = (
                np.empty(n, np.int64),  # order
                np.empty(n + 1, np.int32),  # parent (+ the exterior node)
                np.empty(n + 1, np.int32),  # size
                np.empty(n, np.bool_),  # added
                np.empty((n, 4), np.int32),  # box
                np.empty(n, np.float64),  # cached IoU
                np.empty(n, np.int32),  # alive
                np.empty(n, np.int32),  # slot
                np.empty(n, np.int32),  # tail / halves
                np.empty(n, np.int32),  # following / first
                np.empty(n, np.int64),  # t_exit
            )
            self.padded = np.full((height + 2, width + 2), -1, np.int16)
        return self.arrays, self.padded


_WORKSPACE = _Workspace()


def level_ious_batch(
    quantized: np.ndarray, gt: np.ndarray, gt_bounds: np.ndarray, parity: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_ious` of a (B, H, W) uint8 batch in one compiled call (no Python work per map).

    The GT boxes of map b are ``gt[gt_bounds[b]:gt_bounds[b + 1]]`` (int64 (G, 4)); returns two (B, 256)
    arrays.
    """
    quantized = np.ascontiguousarray(quantized, dtype=np.uint8)
    work, padded = _WORKSPACE.get(*quantized.shape[1:])
    gt = np.ascontiguousarray(gt, dtype=np.int64).reshape(-1, 4)
    return _batch_level_ious(quantized, gt, np.asarray(gt_bounds, dtype=np.int64), parity, work, padded)


def level_ious(quantized: np.ndarray, gt: np.ndarray, parity: bool) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU per level t in [0, 255] of the largest-contour box (V1) and over all contour boxes (V2).

    -1 marks levels whose binarisation ``quantized > t`` is empty.
    """
    gt = np.asarray(gt, dtype=np.int64).reshape(-1, 4)
    largest, every = level_ious_batch(np.asarray(quantized)[None], gt, np.array([0, len(gt)]), parity)
    return largest[0], every[0]
