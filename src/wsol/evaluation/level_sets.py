"""Exact contour statistics of all 256 binarisations of a uint8 map in three union-find sweeps (numba).

``boxes.box_correctness`` needs, for every level t, the boxes ``cv2.findContours(q > t, RETR_TREE)`` would give
and the one ``max(contours, key=cv2.contourArea)`` would pick. Tracing 256 binarisations costs ~256 full-image
scans; these sweeps get the same answers from three passes over the pixels sorted by value, using facts about
OpenCV's border following (Suzuki & Abe) that ``tests/evaluation`` checks against ``findContours`` itself:

* ``RETR_TREE`` returns one outer border per 8-connected foreground component (its bounding rectangle is the
  component's) and one hole border per 4-connected background component that does not reach the (zero-padded)
  image border; a hole border runs through the foreground pixels around the hole, so its bounding rectangle is
  the hole's grown by one pixel on each side.
* ``cv2.contourArea`` of an outer border is the area of the polygon through the border pixels' centres. Over the
  2x2 cells of pixel centres it equals (#cells with 4 corners in the filled component) + ½ (#cells with 3), the
  filled component being the component plus everything it encloses (holes and what lies in them).
* Components nested in a hole have a strictly smaller area than the enclosing one, a hole border never has a
  larger area than its parent and comes after it, and top-level outer borders come in reverse raster order of
  their first pixel; so ``max`` picks, among top-level components, the largest area, ties going to the one whose
  first pixel comes last in raster order.

Sweep 1 grows foreground components from the brightest value down (component boxes, V2). Sweep 2 grows background
components from the darkest value up, with a virtual exterior node (hole boxes, V2) and records for every pixel
the level ``t_exit`` from which it belongs to the exterior background. The filled top-level components at level t
are the 8-connected components of ``{t_exit > t}``; sweep 3 grows them and accumulates the cell areas (V1).
"""

from __future__ import annotations

import numba
import numpy as np

_LEVELS = 256


@numba.njit(cache=True)
def _find(parent: np.ndarray, node: int) -> int:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:
        following = parent[node]
        parent[node] = root
        node = following
    return root


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def _extent_iou(xmin: int, ymin: int, xmax: int, ymax: int, width: int, height: int, gt: np.ndarray, parity: bool):
    """IoU of the box of a bounding extent in the given convention (see ``boxes.BoxConvention``)."""
    if parity:
        return _best_iou(xmin, ymin, min(xmax + 1, width - 1), min(ymax + 1, height - 1), gt)
    return _best_iou(xmin, ymin, xmax, ymax, gt)


@numba.njit(cache=True)
def _buckets(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of values in [0, 255]: indices of value v are ``order[bounds[v]:bounds[v + 1]]``."""
    bounds = np.zeros(_LEVELS + 1, np.int64)
    for value in values:
        bounds[value + 1] += 1
    for v in range(_LEVELS):
        bounds[v + 1] += bounds[v]
    fill = bounds[:-1].copy()
    order = np.empty(len(values), np.int64)
    for index in range(len(values)):
        value = values[index]
        order[fill[value]] = index
        fill[value] += 1
    return order, bounds


@numba.njit(cache=True)
def _remove(alive: np.ndarray, slot: np.ndarray, n_alive: int, node: int) -> int:
    """Swap-remove ``node`` from the list of live roots; returns the new length."""
    last = alive[n_alive - 1]
    alive[slot[node]] = last
    slot[last] = slot[node]
    return n_alive - 1


@numba.njit(cache=True)
def _full_ring(added: np.ndarray, p: int, ring: np.ndarray) -> bool:
    """Whether all 8 neighbours of p are added.

    Consecutive ring cells are 8-adjacent, so each run of added cells around p already lies in one component:
    one find per run suffices (at the run's first cell, or at cell 0 when the whole ring is added).
    """
    for offset in ring:
        if not added[p + offset]:
            return False
    return True


@numba.njit(cache=True)
def _grow(box: np.ndarray, root: int, x0: int, y0: int, x1: int, y1: int) -> None:
    box[root, 0] = min(box[root, 0], x0)
    box[root, 1] = min(box[root, 1], y0)
    box[root, 2] = max(box[root, 2], x1)
    box[root, 3] = max(box[root, 3], y1)


# All sweeps work on the image padded by one never-added pixel on each side (no bounds checks; the padding is
# also findContours' implicit zero frame). Index of pixel (y, x): (y + 1) * (W + 2) + x + 1, raster-monotone.


@numba.njit(cache=True)
def _foreground_sweep(q: np.ndarray, gt: np.ndarray, parity: bool) -> np.ndarray:
    """Per level t, the best IoU over the boxes of all 8-connected components of ``q > t`` (-1: none)."""
    height, width = q.shape
    stride = width + 2
    n = (height + 2) * stride
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    order, bounds = _buckets(q.ravel())
    parent = np.arange(n).astype(np.int32)
    size = np.ones(n, np.int32)
    added = np.zeros(n, np.bool_)
    box = np.empty((n, 4), np.int32)  # xmin, ymin, xmax, ymax of each root
    cached = np.full(n, -1.0)
    alive = np.empty(n, np.int32)
    slot = np.empty(n, np.int32)
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    for v in range(_LEVELS - 1, 0, -1):
        for k in range(bounds[v], bounds[v + 1]):
            y, x = divmod(order[k], width)
            p = (y + 1) * stride + x + 1
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
                elif other != root:
                    if size[root] < size[other]:
                        root, other = other, root
                    parent[other] = root
                    size[root] += size[other]
                    _grow(box, root, box[other, 0], box[other, 1], box[other, 2], box[other, 3])
                    n_alive = _remove(alive, slot, n_alive, other)
            if root == -1:
                root = p
                box[p, 0] = box[p, 2] = x
                box[p, 1] = box[p, 3] = y
                alive[n_alive] = p
                slot[p] = n_alive
                n_alive += 1
            cached[root] = -1.0
        best = -1.0
        for i in range(n_alive):
            r = alive[i]
            if cached[r] < 0:
                cached[r] = _extent_iou(box[r, 0], box[r, 1], box[r, 2], box[r, 3], width, height, gt, parity)
            best = max(best, cached[r])
        out[v - 1] = best
    return out


@numba.njit(cache=True)
def _background_sweep(q: np.ndarray, gt: np.ndarray, parity: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per level t, the best IoU over hole-border boxes of ``q > t`` (-1: no hole), and ``t_exit`` (padded)."""
    height, width = q.shape
    stride = width + 2
    n = (height + 2) * stride
    exterior = n
    neighbours = np.array([-stride, -1, 1, stride])
    order, bounds = _buckets(q.ravel())
    parent = np.arange(n + 1).astype(np.int32)
    size = np.ones(n + 1, np.int32)
    added = np.zeros(n, np.bool_)
    t_exit = np.zeros(n, np.int64)  # the padding is exterior at every level
    for p in range(n):
        y, x = divmod(p, stride)
        if y == 0 or x == 0 or y == height + 1 or x == width + 1:
            added[p] = True
            parent[p] = exterior
    box = np.empty((n, 4), np.int32)
    cached = np.full(n, -1.0)
    tail = np.arange(n).astype(np.int32)  # member lists of the holes, to stamp t_exit when they open up
    following = np.full(n, -1, np.int32)
    alive = np.empty(n, np.int32)
    slot = np.empty(n, np.int32)
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
                cached[r] = _extent_iou(box[r, 0] - 1, box[r, 1] - 1, box[r, 2] + 1, box[r, 3] + 1, width, height, gt, parity)
            best = max(best, cached[r])
        out[v] = best
    return out, t_exit


@numba.njit(cache=True)
def _fill_sweep(t_exit: np.ndarray, height: int, width: int, gt: np.ndarray, parity: bool) -> np.ndarray:
    """Per level t, the IoU of the box ``max(contours, key=cv2.contourArea)`` picks (-1: empty level).

    A 2x2 cell adds ½ to its component's area when its third corner joins the fill and ½ when its fourth does.
    """
    stride = width + 2
    n = (height + 2) * stride
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    order, bounds = _buckets(t_exit)
    parent = np.arange(n).astype(np.int32)
    size = np.ones(n, np.int32)
    added = np.zeros(n, np.bool_)
    box = np.empty((n, 4), np.int32)
    halves = np.zeros(n, np.int32)
    first = np.empty(n, np.int32)  # first pixel in raster order (where the outer border starts)
    alive = np.empty(n, np.int32)
    slot = np.empty(n, np.int32)
    n_alive = 0
    out = np.full(_LEVELS, -1.0)
    for e in range(_LEVELS - 1, 0, -1):
        for k in range(bounds[e], bounds[e + 1]):
            p = order[k]
            y, x = divmod(p, stride)
            y, x = y - 1, x - 1
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
                    first[root] = min(first[root], p)
                elif other != root:
                    if size[root] < size[other]:
                        root, other = other, root
                    parent[other] = root
                    size[root] += size[other]
                    _grow(box, root, box[other, 0], box[other, 1], box[other, 2], box[other, 3])
                    halves[root] += halves[other]
                    first[root] = min(first[root], first[other])
                    n_alive = _remove(alive, slot, n_alive, other)
            if root == -1:
                root = p
                box[p, 0] = box[p, 2] = x
                box[p, 1] = box[p, 3] = y
                first[p] = p
                alive[n_alive] = p
                slot[p] = n_alive
                n_alive += 1
            # The four cells with corner p are (N, NE, E), (E, SE, S), (S, SW, W), (W, NW, N) around it.
            for c in range(0, 8, 2):
                if added[p + ring[c]] + added[p + ring[c + 1]] + added[p + ring[(c + 2) % 8]] >= 2:
                    halves[root] += 1
        if n_alive == 0:
            continue
        chosen = alive[0]
        for i in range(1, n_alive):
            r = alive[i]
            if halves[r] > halves[chosen] or (halves[r] == halves[chosen] and first[r] > first[chosen]):
                chosen = r
        out[e - 1] = _extent_iou(box[chosen, 0], box[chosen, 1], box[chosen, 2], box[chosen, 3], width, height, gt, parity)
    return out


def level_ious(quantized: np.ndarray, gt: np.ndarray, parity: bool) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU per level t in [0, 255] of the largest-contour box (V1) and over all contour boxes (V2).

    -1 marks levels whose binarisation ``quantized > t`` is empty.
    """
    quantized = np.ascontiguousarray(quantized, dtype=np.uint8)
    gt = np.ascontiguousarray(gt, dtype=np.int64)
    height, width = quantized.shape
    components = _foreground_sweep(quantized, gt, parity)
    holes, t_exit = _background_sweep(quantized, gt, parity)
    largest = _fill_sweep(t_exit, height, width, gt, parity)
    return largest, np.maximum(components, holes)
