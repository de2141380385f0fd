"""Evaluator throughput (the regression benchmark): wsolevaluation's algorithm vs ``wsol.evaluation``.

Prints images/second for smooth (7x7 bicubic-upsampled) and fragmented (28x28 nearest-upsampled) 224x224 maps
at τ step 0.001 and 0.01, for:

* ``naive V1`` / ``naive V2``: one ``cv2.threshold`` + ``findContours`` per τ on the full map, as the
  reference evaluator does (one contour mode per run);
* ``naive V1+V2+PxAP``: the reference's cost of all three metrics (both runs plus its ``np.histogram`` PxAP);
* ``sweep``: ``box_correctness_batch`` with the numba engine (V1 *and* V2 of the whole (B, H, W) batch in one
  compiled call), and its stages alone: ``flood`` (each pixel's exit level, a counting sort then one pass),
  ``holes`` (union-find over the pixels that ever lie in a hole), ``fill`` (union-find over every pixel by
  exit level: the filled components, V1);
* ``trace``: ``box_correctness`` with the OpenCV engine (each distinct binarisation traced once, V1 and V2);
* ``evaluator``: ``WSOLEvaluator.update`` of the whole (B, H, W) batch in parity mode (normalisation,
  quantisation, V1+V2, top-k loc), and ``evaluator V1+V2+PxAP`` with masks too (PxAP, F1, IoU, PR curves);
* ``evaluator, N workers``: the same with a process pool;
* ``bare pass (floor)``: what any union-find sweep must at least do, a counting sort of the pixels then one
  pass in that order reading each pixel's 8 neighbours; the sweep engine makes three passes (flood, holes,
  fill), the holes one over a part of the pixels, and a fourth (every component) only for a map where a
  component nested in a hole could beat every other box.

Speed is CPU time of this process (``time.process_time``, robust to other load on the machine) except for the
process pool, which is wall time; each figure is the median of ``--repeats`` interleaved rounds (every method
once per round), and the load average is printed before and after. Ratios compare against ``naive V1``
measured in the same run (and, for ``evaluator V1+V2+PxAP``, against ``naive V1+V2+PxAP`` in the last
column); every fast box result is checked to be identical to the naive one.

    .venv/bin/python benchmarks/bench_evaluation.py [--images 24] [--naive-images 6] [--workers 2]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import cv2
import numba
import numpy as np

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator, box_correctness, level_sets
from wsol.evaluation.boxes import box_correctness_batch
from wsol.evaluation.parity import quantize

DELTAS = np.array([0.3, 0.5, 0.7])


def smooth_maps(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    maps = []
    for _ in range(count):
        coarse = rng.random((7, 7)).astype(np.float32)
        m = cv2.resize(coarse, (224, 224), interpolation=cv2.INTER_CUBIC)
        maps.append((m - m.min()) / (m.max() - m.min()))
    return maps


def fragmented_maps(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    maps = []
    for _ in range(count):
        coarse = rng.random((28, 28)).astype(np.float32)
        m = cv2.resize(coarse, (224, 224), interpolation=cv2.INTER_NEAREST)
        maps.append((m - m.min()) / (m.max() - m.min()))
    return maps


def gt_box(rng: np.random.Generator, scoremap: np.ndarray) -> np.ndarray:
    """A plausible GT box: the extent of the map's upper half, jittered."""
    ys, xs = np.nonzero(scoremap > 0.5)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()]) + rng.integers(-8, 9, 4)
    return np.clip(box, 0, 223).reshape(1, 4)


def naive_correct(scoremap: np.ndarray, taus: np.ndarray, gt: np.ndarray, multi_contour: bool) -> np.ndarray:
    """wsolevaluation's algorithm: ``compute_bboxes_from_scoremaps`` (threshold + findContours per τ), then
    one vectorised IoU of all boxes against the GT boxes and a max per τ (``BoxEvaluator.accumulate``)."""
    height, width = scoremap.shape
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    boxes, counts = [], []
    for tau in taus:
        _, binary = cv2.threshold(image, int(tau * np.max(image)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            boxes.append([0, 0, 0, 0])
            counts.append(1)
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        counts.append(len(contours))
    a, g = np.array(boxes)[:, None, :], gt[None, :, :]
    inter_w = np.maximum(0, np.minimum(a[..., 2], g[..., 2]) - np.maximum(a[..., 0], g[..., 0]) + 1)
    inter_h = np.maximum(0, np.minimum(a[..., 3], g[..., 3]) - np.maximum(a[..., 1], g[..., 1]) + 1)
    inter = inter_w * inter_h
    union = (
        (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
        + (g[..., 2] - g[..., 0] + 1) * (g[..., 3] - g[..., 1] + 1)
        - inter
    )
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0).max(axis=1)
    best = np.maximum.reduceat(ious, np.r_[0, np.cumsum(counts)[:-1]])
    return best[None, :] >= DELTAS[:, None]


def cpu_seconds(function: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    start = time.process_time()
    output = function(*args, **kwargs)
    return time.process_time() - start, output


@numba.njit(cache=True)
def _bare_pass(quantized: np.ndarray, order: np.ndarray, added: np.ndarray) -> int:
    """The sweep's floor: counting sort of the pixels by value, then one pass in that order that reads each
    pixel's 8 neighbours and marks it (what any union-find sweep must at least do), no union-find."""
    _, height, width = quantized.shape
    stride = width + 2
    ring = np.array([-stride, -stride + 1, 1, stride + 1, stride, stride - 1, -1, -stride - 1])
    seen = 0
    for q in quantized:
        bounds = np.zeros(257, np.int64)
        for value in q.ravel():
            bounds[value + 1] += 1
        bounds = np.cumsum(bounds)
        for y in range(height):
            for x in range(width):
                order[bounds[q[y, x]]] = (y + 1) * stride + x + 1
                bounds[q[y, x]] += 1
        added[:] = 0
        for k in range(height * width):
            p = order[k]
            mask = 0
            for j in range(8):
                mask |= np.int64(added[p + ring[j]]) << j
            added[p] = 1
            seen += mask
    return seen


def bare_passes(quantized: np.ndarray) -> int:
    n = (quantized.shape[1] + 2) * (quantized.shape[2] + 2)
    return _bare_pass(quantized, np.empty(n, np.int32), np.zeros(n, np.uint8))


def sweep_stages(quantized: list[np.ndarray], gts: list[np.ndarray]) -> dict[str, Callable[[], object]]:
    """Jobs running each stage of the sweep engine alone over all maps, on inputs prepared untimed."""
    height, width = quantized[0].shape
    work = level_sets._WORKSPACE.get(height, width)
    padded = work.levels.reshape(height + 2, width + 2)[1:-1, 1:-1]
    targets = [(width, height, gt.astype(np.int64), True) for gt in gts]
    inputs = []
    for q, target in zip(quantized, targets, strict=True):
        padded[...] = q
        exit_bounds, _, n_holes = level_sets._flood(q, target, work)
        hole_bounds = level_sets._sort_holes(work, n_holes)
        inputs.append((work.levels.copy(), work.exit_level.copy(), work.exits.copy(), exit_bounds))
        inputs[-1] += (work.hole_order.copy(), hole_bounds)

    def flood() -> None:
        for q, target, (levels, *_) in zip(quantized, targets, inputs, strict=True):
            work.levels[:] = levels
            level_sets._flood(q, target, work)

    def holes() -> None:
        for target, (_, exit_level, _, _, hole_order, bounds) in zip(targets, inputs, strict=True):
            work.exit_level[:] = exit_level
            level_sets._hole_sweep(hole_order, bounds, target, work)

    def fill() -> None:
        for target, (_, _, exits, bounds, *_) in zip(targets, inputs, strict=True):
            level_sets._sweep8(exits, bounds, target, work)

    return {"sweep stage: flood": flood, "sweep stage: holes": holes, "sweep stage: fill": fill}


def interleaved(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, object]]:
    """Median CPU seconds of each job over ``repeats`` rounds that run every job once in turn (so a change of
    load on the shared machine hits all of them alike), with each job's last output."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    outputs: dict[str, object] = {}
    for _ in range(repeats):
        for name, job in jobs.items():
            seconds, outputs[name] = cpu_seconds(job)
            times[name].append(seconds)
    return {name: (float(np.median(times[name])), outputs[name]) for name in jobs}


def naive_all(
    maps: list[np.ndarray], gts: list[np.ndarray], taus: np.ndarray, multi: bool
) -> list[np.ndarray]:
    return [naive_correct(m, taus, g, multi) for m, g in zip(maps, gts, strict=True)]


def naive_pxap_histograms(maps: list[np.ndarray], masks: list[np.ndarray], taus: np.ndarray) -> np.ndarray:
    """The reference's ``MaskEvaluator.accumulate``: two ``np.histogram`` per map."""
    edges = np.append(taus, [1.0, 2.0, 3.0])
    return np.sum(
        [
            [np.histogram(m[k], bins=edges)[0], np.histogram(m[~k], bins=edges)[0]]
            for m, k in zip(maps, masks, strict=True)
        ],
        axis=0,
    )


def fast_all(
    quantized: list[np.ndarray], gts: list[np.ndarray], taus: np.ndarray, engine: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    if engine == "sweep":
        largest, every = box_correctness_batch(np.stack(quantized), taus, gts, DELTAS)
        return list(zip(largest, every, strict=True))
    return [box_correctness(q, taus, g, DELTAS, engine=engine) for q, g in zip(quantized, gts, strict=True)]


def bench_kind(
    maps: list[np.ndarray], gts: list[np.ndarray], step: float, args: argparse.Namespace
) -> list[tuple[str, float, bool | None]]:
    """Rows (method, images/s, identical to naive or None) for one kind of map and τ step."""
    taus = np.arange(0, 1, step)
    quantized = [quantize(m) for m in maps]
    few_maps, few_gts = maps[: args.naive_images], gts[: args.naive_images]
    masks = [m > 0.5 for m in maps]
    batch = np.stack(maps)
    inputs = {
        "boxes": gts,
        "labels": np.zeros(len(maps), dtype=np.int64),
        "logits": np.random.default_rng(0).normal(size=(len(maps), 10)),
    }
    config = EvaluatorConfig(parity="wsolevaluation", cam_curve_interval=step)
    evaluator = WSOLEvaluator(config)
    jobs: dict[str, Callable[[], object]] = {
        "naive V1": lambda: naive_all(few_maps, few_gts, taus, False),
        "naive V2": lambda: naive_all(few_maps, few_gts, taus, True),
        "naive PxAP": lambda: naive_pxap_histograms(maps, masks, taus),
        "bare pass (floor)": lambda: bare_passes(np.stack(quantized)),
        "sweep (V1+V2)": lambda: fast_all(quantized, gts, taus, "sweep"),
        **sweep_stages(quantized, gts),
        "trace (V1+V2)": lambda: fast_all(quantized, gts, taus, "trace"),
        "evaluator (parity)": lambda: evaluator.update(batch, **inputs),
        "evaluator V1+V2+PxAP": lambda: evaluator.update(batch, masks=np.stack(masks), **inputs),
    }
    measured = interleaved(jobs, args.repeats)
    few, many = len(few_maps), len(maps)
    per_map = (measured["naive V1"][0] + measured["naive V2"][0]) / few + measured["naive PxAP"][0] / many
    rows: list[tuple[str, float, bool | None]] = [
        ("naive V1", few / measured["naive V1"][0], None),
        ("naive V2", few / measured["naive V2"][0], None),
        ("naive V1+V2+PxAP", 1 / per_map, None),
    ]
    naive_v1, naive_v2 = measured["naive V1"][1], measured["naive V2"][1]
    for name in ("bare pass (floor)", "sweep (V1+V2)", "trace (V1+V2)"):
        same = None
        if name != "bare pass (floor)":
            results = measured[name][1]
            same = all(
                np.array_equal(results[i][0], naive_v1[i]) and np.array_equal(results[i][1], naive_v2[i])
                for i in range(few)
            )
        rows.append((name, many / measured[name][0], same))
    for name in ("sweep stage: flood", "sweep stage: holes", "sweep stage: fill"):
        rows.append((name, many / measured[name][0], None))
    for name in ("evaluator (parity)", "evaluator V1+V2+PxAP"):
        rows.append((name, many / measured[name][0], None))
    if args.workers > 0:
        with WSOLEvaluator(
            EvaluatorConfig(parity="wsolevaluation", cam_curve_interval=step, workers=args.workers)
        ) as pooled:
            pooled.update(batch[:2], boxes=gts[:2])  # start workers (and their JIT) untimed
            start = time.perf_counter()
            pooled.update(batch, **inputs)
            wall = time.perf_counter() - start
        rows.append((f"evaluator, {args.workers} workers", many / wall, None))
    return rows


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--images", type=int, default=24, help="maps per kind for the fast paths")
    parser.add_argument("--naive-images", type=int, default=6, help="maps per kind for the naive loop")
    parser.add_argument("--workers", type=int, default=2, help="process-pool size (0 to skip)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are printed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    warm = WSOLEvaluator(EvaluatorConfig(parity="wsolevaluation"))  # JIT (numba's cache), untimed
    warm.update(
        np.zeros((1, 8, 8), np.float32), boxes=[np.array([[0, 0, 1, 1]])], masks=np.ones((1, 8, 8)) > 0
    )
    bare_passes(np.zeros((1, 8, 8), np.uint8))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    header = f"{'maps':<11}{'τ step':>7}  {'method':<24}{'img/s':>9}{'× naive V1':>12}  identical"
    print(f"{header}  {'× naive V1+V2+PxAP':>19}")
    for kind, make in (("smooth", smooth_maps), ("fragmented", fragmented_maps)):
        maps = make(rng, args.images)
        gts = [gt_box(rng, m) for m in maps]
        for step in (0.001, 0.01):
            rows = bench_kind(maps, gts, step, args)
            baseline, reference = rows[0][1], rows[2][1]
            for name, rate, same in rows:
                flag = "" if same is None else str(same)
                line = f"{kind:<11}{step:>7}  {name:<24}{rate:>9.1f}{rate / baseline:>11.1f}×  {flag:<9}"
                if name == "evaluator V1+V2+PxAP":
                    line += f"{rate / reference:>18.1f}×"
                print(line)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
