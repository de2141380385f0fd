"""Exact contour statistics of all 256 binarisations of a uint8 map from one flood and two or three
union-find sweeps over the pixels (numba).

``boxes.box_correctness`` needs, for every level t, the boxes ``cv2.findContours(q > t, RETR_TREE)`` would
give and the one ``max(contours, key=cv2.contourArea)`` would pick. Tracing 256 binarisations costs ~256
full-image scans; these passes get the same answers from the pixels sorted by value, using facts about
OpenCV's border following (Suzuki & Abe, "Topological structural analysis of digitized binary images by
border following", CVGIP 1985) that ``tests/evaluation`` checks against ``findContours`` itself:

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

Each pixel p has an exit level ``t_exit``: the smallest t at which it belongs to the background connected to
the image border, i.e. the smallest, over 4-paths from p to the border, of the path's largest value (the
grey-level hole filling of the map; Soille, "Morphological Image Analysis", 2nd ed., Springer 2003). A
flood from the border, level by level over the pixels sorted by value (``_flood``), computes it and lists
the pixels by it. Then:

* the filled top-level components at level t are the 8-connected components of ``{t_exit > t}``; the fill
  sweep grows them from the list read backwards and accumulates their cell areas (V1, and the top-level
  component boxes of V2);
* the holes at level t are the 4-connected components of ``{q <= t < t_exit}``; only the pixels with
  ``q < t_exit`` ever lie in one (none at all in a map without holes), and the hole sweep grows them by value
  (hole boxes of V2) with each hole's Euler characteristic, which tells whether a component is nested in it;
* components nested in holes are only missing from V2. A nested component's box lies inside its hole's
  bounding box U, so its IoU with a GT box g is at most ``|U ∩ g| / |g|``; only when that bound beats the best
  IoU already found at some level does the foreground sweep grow every 8-connected component of ``{q > t}``.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numba
import numpy as np

_LEVELS = 256


def _neighbour_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables over the 256 masks of added 8-neighbours (bit j = ring cell j, N, NE, E, SE, S, SW, W,
    NW): the ring cells where a run of added cells starts (count first), and the number of p's four 2x2 cells
    that get a third or fourth corner when p is added (``_sweep8``'s half-cells).

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


class Work(NamedTuple):
    """The sweeps' work arrays over the padded pixels (n = (H + 2)(W + 2)), reused from map to map."""

    order: np.ndarray  # the pixels sorted by value
    parent: np.ndarray  # union-find parents; the flood's stack before
    added: np.ndarray  # uint8, pixel added to the sweep (seen by the flood)
    rec: np.ndarray  # (n, 8) per-root records, columns _XMIN ... _CHI
    cached: np.ndarray  # float64 IoU of each root's box, -1 when stale
    alive: np.ndarray  # the live roots
    slot: np.ndarray  # each live root's place in alive
    xs: np.ndarray  # image x of a padded index
    ys: np.ndarray  # image y
    exits: np.ndarray  # the pixels by exit level
    levels: np.ndarray  # uint8, the map padded with zeros
    exit_level: np.ndarray  # uint8, each pixel's exit level
    holes: np.ndarray  # the hole pixels, in flood order
    hole_order: np.ndarray  # the hole pixels sorted by value
    frame: np.ndarray  # uint8, 1 on the padding


@numba.njit(cache=True, error_model="numpy")
def _find(parent: np.ndarray, node: int) -> int:
    """Root of ``node``, compressing the path; nothing is written when ``node``'s parent is the root (the
    common case: a neighbour added after its component's last merge)."""
    root = parent[node]
    if parent[root] == root:
        return root
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
def _append(alive: np.ndarray, slot: np.ndarray, n_alive: int, node: int) -> int:
    """Append ``node`` to the list of live roots; returns the new length."""
    alive[n_alive] = node
    slot[node] = n_alive
    return n_alive + 1


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
    rec: np.ndarray, cached: np.ndarray, alive: np.ndarray, n_alive: int, target: tuple
) -> tuple[float, float]:
    """Over the live roots (n_alive > 0): the IoU of the one of largest half-cell count (ties: latest first
    pixel) and the best IoU (stale cached IoUs recomputed)."""
    chosen = alive[0]
    best = -1.0
    for i in range(n_alive):
        r = alive[i]
        if rec[r, _HALF] > rec[chosen, _HALF] or (
            rec[r, _HALF] == rec[chosen, _HALF] and rec[r, _FIRST] > rec[chosen, _FIRST]
        ):
            chosen = r
        if cached[r] < 0:
            cached[r] = _record_iou(rec, r, 0, target)
        best = max(best, cached[r])
    return cached[chosen], best


@numba.njit(cache=True, error_model="numpy")
def _union_find_state(work: Work) -> tuple:
    """The arrays of ``work`` that both union-find sweeps update: parent, added, rec, cached, alive, slot."""
    return work.parent, work.added, work.rec, work.cached, work.alive, work.slot


@numba.njit(cache=True, error_model="numpy")
def _sweep8(
    order: np.ndarray, bounds: np.ndarray, target: tuple, work: Work
) -> tuple[np.ndarray, np.ndarray]:
    """Grow 8-connected components from level 255 down (pixels of level e join for t < e); per level t:
    the IoU of the component of largest half-cell count (ties: latest first pixel; -1: empty level) and the
    best IoU over all components (-1: none).

    One mask of the 8 added neighbours per pixel gives its neighbour runs and half-cells (``_RUNS``,
    ``_HALVES``); the runs' roots are united by size and absorbed roots dropped from the live list.
    """
    stride = target[0] + 2
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    parent, added, rec, cached, alive, slot = _union_find_state(work)
    xs, ys = work.xs, work.ys
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
                n_alive = _append(alive, slot, n_alive, p)
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
            largest[e - 1], best_all[e - 1] = _level_summary(rec, cached, alive, n_alive, target)
    return largest, best_all


@numba.njit(cache=True, error_model="numpy")
def _spread(p: int, v: int, stride: int, levels: np.ndarray, seen: np.ndarray, out: tuple) -> None:
    """Give exit level v to pixel p and to every pixel reached from it through unseen pixels of value <= v
    (breadth first); ``out`` = (queue, exits, exit levels, hole pixels, [#exits, #holes]): the pixels
    reached are appended to the exits, those of value < v to the hole pixels, and the counts updated.

    Breadth first, the next pixel was queued long before, so its loads start early; depth first, each pixel
    would wait for the previous one."""
    queue, exits, exit_level, holes, counts = out
    n_exits, n_holes = counts[0], counts[1]
    seen[p] = 1
    queue[0] = p
    head, tail = 0, 1
    while head < tail:
        r = queue[head]
        head += 1
        exits[n_exits] = r
        n_exits += 1
        exit_level[r] = v
        for neighbour in (r - stride, r - 1, r + 1, r + stride):
            if seen[neighbour] or levels[neighbour] > v:
                continue
            seen[neighbour] = 1
            queue[tail] = neighbour
            tail += 1
            if levels[neighbour] < v:
                holes[n_holes] = neighbour
                n_holes += 1
    counts[0], counts[1] = n_exits, n_holes


@numba.njit(cache=True, error_model="numpy")
def _flood(q: np.ndarray, target: tuple, work: Work) -> tuple[np.ndarray, np.ndarray, int]:
    """Exit level of every pixel of the map q (padded in ``work.levels``) into ``work.exit_level``, by a flood
    from the image border; lists the pixels by exit level (those of level v are
    ``work.exits[exit_bounds[v]:exit_bounds[v + 1]]``) and the hole pixels (value < exit level) in
    ``work.holes``. Returns ``exit_bounds``, the bounds of each value in ``work.order`` (the pixels sorted by
    value, ``_buckets``, in which order they are visited) and the number of hole pixels.

    At level v, a pixel of value v next to the exterior (the padding, or a pixel already given a level) gets
    level v, and so does every pixel reached from it through unseen pixels of value <= v. Every pixel that
    joins the exterior at level v is reached so: the first one on its path to the exterior has value v (one
    of smaller value would have joined at its own level, or earlier). The search (``_spread``) is needed only
    from a pixel with an unseen neighbour of smaller value, or of value v already passed over in raster order;
    the others are taken in one sweep without a stack (a chain of dependent loads the search would be)."""
    stride = target[0] + 2
    levels, seen, order, exits, exit_level = work.levels, work.added, work.order, work.exits, work.exit_level
    seen[:] = work.frame
    bounds = _buckets(q, order, stride, stride + 1)
    exit_bounds = np.zeros(_LEVELS + 1, np.int64)
    counts = np.zeros(2, np.int64)
    out = (work.parent, exits, exit_level, work.holes, counts)
    for v in range(_LEVELS):
        exit_bounds[v] = counts[0]
        for k in range(bounds[v], bounds[v + 1]):
            p = order[k]
            if seen[p] or not (seen[p - stride] | seen[p - 1] | seen[p + 1] | seen[p + stride]):
                continue
            behind = 0  # unseen neighbours the sweep will not come back to
            for neighbour in (p - stride, p - 1, p + 1, p + stride):
                value = levels[neighbour]
                behind |= (1 - seen[neighbour]) & ((value < v) | ((value == v) & (neighbour < p)))
            if behind:
                _spread(p, v, stride, levels, seen, out)
            else:
                seen[p] = 1
                exits[counts[0]] = p
                counts[0] += 1
                exit_level[p] = v
    exit_bounds[_LEVELS] = counts[0]
    return exit_bounds, bounds, counts[1]


@numba.njit(cache=True, error_model="numpy")
def _sort_holes(work: Work, n_holes: int) -> np.ndarray:
    """Counting sort of the hole pixels ``work.holes[:n_holes]`` by value into ``work.hole_order``; returns
    the bounds of each value, as ``_buckets``."""
    levels, holes, order = work.levels, work.holes, work.hole_order
    bounds = np.zeros(_LEVELS + 1, np.int64)
    for i in range(n_holes):
        bounds[levels[holes[i]] + 1] += 1
    for v in range(_LEVELS):
        bounds[v + 1] += bounds[v]
    fill = bounds[:-1].copy()
    for i in range(n_holes):
        value = levels[holes[i]]
        order[fill[value]] = holes[i]
        fill[value] += 1
    return bounds


@numba.njit(cache=True, error_model="numpy")
def _containment(rec: np.ndarray, r: int, gt: np.ndarray) -> float:
    """Bound on the IoU with the GT boxes of any box inside root r's extent grown by one pixel U:
    ``max_g |U ∩ g| / |g|`` (+1-pixel areas; infinite for a GT box without area)."""
    bound = 0.0
    for g in range(gt.shape[0]):
        inter_w = min(rec[r, _XMAX] + 1, gt[g, 2]) - max(rec[r, _XMIN] - 1, gt[g, 0]) + 1
        inter_h = min(rec[r, _YMAX] + 1, gt[g, 3]) - max(rec[r, _YMIN] - 1, gt[g, 1]) + 1
        area = (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1)
        if area <= 0:
            return np.inf
        bound = max(bound, max(0, inter_w) * max(0, inter_h) / area)
    return bound


@numba.njit(cache=True, error_model="numpy")
def _hole_summary(  # noqa: PLR0913 (the sweep's state, see _hole_sweep)
    rec: np.ndarray,
    cached: np.ndarray,
    alive: np.ndarray,
    slot: np.ndarray,
    n_alive: int,
    exit_level: np.ndarray,
    v: int,
    target: tuple,
) -> tuple[int, float, float]:
    """At level v: drop the holes that joined the exterior (exit level <= v); over the others, the best IoU of
    their hole-border boxes (-1: none) and the largest ``_containment`` bound of those that enclose a
    component (Euler characteristic < 1; -1: none). Returns (live holes left, best IoU, bound)."""
    best = -1.0
    bound = -1.0
    i = 0
    while i < n_alive:
        r = alive[i]
        if exit_level[r] <= v:
            n_alive = _remove(alive, slot, n_alive, r)  # alive[i] now holds the former last root
            continue
        if cached[r] < 0:
            cached[r] = _record_iou(rec, r, 1, target)
        best = max(best, cached[r])
        if rec[r, _CHI] < 1:
            bound = max(bound, _containment(rec, r, target[2]))
        i += 1
    return n_alive, best, bound


@numba.njit(cache=True, error_model="numpy")
def _hole_sweep(
    order: np.ndarray, bounds: np.ndarray, target: tuple, work: Work
) -> tuple[np.ndarray, np.ndarray]:
    """Per level t: the best IoU over the hole-border boxes of ``q > t`` (-1: no hole) and the bound on the
    IoU of a component nested in a hole (``_hole_summary``; -1: no nested component).

    Grows the 4-connected components of ``{q <= t < t_exit}`` from the darkest level up, from the hole pixels
    sorted by value (``_sort_holes``). A hole never touches one that has joined the exterior (they would be
    one background component), so a pixel's added 4-neighbours are all in its hole. Each hole keeps its Euler
    characteristic χ = V − E + F (pixels, 4-adjacent pairs, full 2x2 blocks; 1 − its own holes for a
    4-connected set): χ < 1 means it encloses foreground, i.e. a nested component (Gray, "Local properties of
    binary images in two dimensions", IEEE Trans. Computers 1971).
    """
    stride = target[0] + 2
    neighbours = np.array([-stride, -1, 1, stride])
    # the four 2x2 blocks around p: (vertical, horizontal) neighbour offsets, the diagonal is their sum
    verticals = np.array([-stride, -stride, stride, stride])
    horizontals = np.array([-1, 1, 1, -1])
    parent, added, rec, cached, alive, slot = _union_find_state(work)
    xs, ys = work.xs, work.ys
    added[:] = 0
    n_alive = 0
    holes = np.full(_LEVELS, -1.0)
    nested = np.full(_LEVELS, -1.0)
    for v in range(_LEVELS):
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
                    _join(rec, root, xs[p], ys[p])
                elif other != root:
                    if rec[root, _SIZE] < rec[other, _SIZE]:
                        root, other = other, root
                    parent[other] = root
                    _absorb(rec, root, other)
                    n_alive = _remove(alive, slot, n_alive, other)
            if root == -1:
                root = p
                _new_root(p, xs[p], ys[p], rec, parent, cached)
                n_alive = _append(alive, slot, n_alive, p)
            for j in range(4):
                vertical, horizontal = p + verticals[j], p + horizontals[j]
                change += added[vertical] & added[horizontal] & added[vertical + horizontals[j]]
            rec[root, _CHI] += change
            cached[root] = -1.0
        if n_alive > 0:
            n_alive, holes[v], nested[v] = _hole_summary(
                rec, cached, alive, slot, n_alive, work.exit_level, v, target
            )
    return holes, nested


@numba.njit(cache=True, error_model="numpy")
def _map_level_ious(q: np.ndarray, gt: np.ndarray, parity: bool, work: Work) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_ious` of one map."""
    height, width = q.shape
    stride = width + 2
    levels = work.levels
    for y in range(height):
        levels[(y + 1) * stride + 1 : (y + 1) * stride + width + 1] = q[y]
    target = (width, height, gt, parity)
    exit_bounds, value_bounds, n_holes = _flood(q, target, work)
    holes, nested = _hole_sweep(work.hole_order, _sort_holes(work, n_holes), target, work)
    largest, top_level = _sweep8(work.exits, exit_bounds, target, work)
    every = np.maximum(top_level, holes)
    if (nested > every).any():  # a nested component might beat every box found: grow them all
        every = np.maximum(_sweep8(work.order, value_bounds, target, work)[1], holes)
    return largest, every


@numba.njit(cache=True, error_model="numpy")
def _batch_level_ious(
    maps: np.ndarray, gt: np.ndarray, gt_bounds: np.ndarray, parity: bool, work: Work
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
    arrays: Work | None = None

    def get(self, height: int, width: int) -> Work:
        if self.arrays is None or self.shape != (height, width):
            n = (height + 2) * (width + 2)
            frame = np.ones((height + 2, width + 2), np.uint8)
            frame[1:-1, 1:-1] = 0
            y, x = np.divmod(np.arange(n, dtype=np.int32), width + 2)
            self.shape = (height, width)
            self.arrays = Work(
                order=np.empty(n, np.int32),
                parent=np.empty(n, np.int32),
                added=np.empty(n, np.uint8),
                rec=np.empty((n, 8), np.int32),
                cached=np.empty(n, np.float64),
                alive=np.empty(n, np.int32),
                slot=np.empty(n, np.int32),
                xs=x - 1,
                ys=y - 1,
                exits=np.empty(n, np.int32),
                levels=np.zeros(n, np.uint8),
                exit_level=np.zeros(n, np.uint8),
                holes=np.empty(n, np.int32),
                hole_order=np.empty(n, np.int32),
                frame=frame.ravel(),
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
