"""Whole-process speed of ``wsol evaluate --maps`` against the reference algorithm's process.

Writes N smooth 224x224 score maps and a dataset (one GT box per image, original sizes 448x336) into a
temporary folder, then times as whole processes (CPU time of the child, start-up and imports included):

* ``reference``: ``reference_evaluate_maps.py``, wsolevaluation's per-τ ``findContours`` loop (V1 and V2);
* ``wsol evaluate --maps --parity``: MaxBoxAcc V1 + V2, top-k loc, curves, metrics.json and plots (and the
  per-image statistics, the command's default);
* ``... --no-per-image``: the same without per-image statistics (one batched update per batch of maps).

Both at τ step 0.001; the MaxBoxAcc values are checked to agree. Prints seconds, maps/s and the ratio; with
``--repeats N`` the two processes run alternately N times each and the medians are printed (the load average
is printed before and after).

    .venv/bin/python benchmarks/bench_evaluate_process.py [--maps 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from wsol.data.format import DatasetInfo, ImageRecord, write_dataset

HERE = Path(__file__).resolve().parent


def write_inputs(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    records = []
    (root / "maps").mkdir(parents=True)
    for index in range(count):
        coarse = rng.random((7, 7)).astype(np.float32)
        scoremap = cv2.resize(coarse, (224, 224), interpolation=cv2.INTER_CUBIC)
        scoremap = (scoremap - scoremap.min()) / (scoremap.max() - scoremap.min())
        ys, xs = np.nonzero(scoremap > 0.5)
        box = (np.array([xs.min(), ys.min(), xs.max(), ys.max()]) + rng.integers(-8, 9, 4)).clip(0, 223) * 2
        box[1::2] = box[1::2] * 3 // 4
        image_id = f"img{index:04d}.jpg"
        np.save(root / "maps" / f"{image_id}.npy", scoremap)
        records.append(ImageRecord(image_id, 0, 448, 336, boxes=(tuple(float(v) for v in box),)))
    write_dataset(root / "data", DatasetInfo(name="bench", num_classes=1, splits=[]), {"test": records})


def child_cpu_seconds(command: list[str]) -> tuple[float, str]:
    """CPU seconds (user + system) of one child process, and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, done.stdout


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--maps", type=int, default=300, help="number of maps")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each process (medians)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_inputs(root, args.maps)
        wsol = [sys.executable, "-m", "wsol.cli.main", "evaluate", "--maps", str(root / "maps")]
        wsol += ["--data", str(root / "data"), "--split", "test", "--parity", "--out", str(root / "out")]
        reference_command = [sys.executable, str(HERE / "reference_evaluate_maps.py"), "--maps"]
        reference_command += [str(root / "maps"), "--metadata", str(root / "data" / "metadata" / "test")]
        child_cpu_seconds(wsol)  # first run fills numba's on-disk cache, as any installed copy has it
        times: dict[str, list[float]] = {"ours": [], "batched": [], "reference": []}
        for _ in range(args.repeats):
            times["ours"].append(child_cpu_seconds(wsol)[0])
            times["batched"].append(child_cpu_seconds([*wsol, "--no-per-image"])[0])
            seconds, output = child_cpu_seconds(reference_command)
            times["reference"].append(seconds)
        expected = json.loads(output)
        metrics = json.loads((root / "out" / "metrics.json").read_text())
        same = metrics["max_box_acc_v1"] == expected["max_box_acc_v1"] and np.isclose(
            metrics["max_box_acc_v2"], expected["max_box_acc_v2"]
        )
    ours, batched, reference = (statistics.median(times[k]) for k in ("ours", "batched", "reference"))
    print(f"{'process':<40}{'CPU s':>8}{'maps/s':>9}{'ratio':>8}   runs")
    runs = {key: "/".join(f"{t:.2f}" for t in values) for key, values in times.items()}
    for name, key, seconds in (
        ("reference (per-τ findContours)", "reference", reference),
        ("wsol evaluate --maps --parity", "ours", ours),
        ("wsol evaluate ... --no-per-image", "batched", batched),
    ):
        rate, ratio = args.maps / seconds, reference / seconds
        print(f"{name:<40}{seconds:>8.2f}{rate:>9.1f}{ratio:>7.1f}×   {runs[key]}")
    print(f"MaxBoxAcc V1/V2 identical to the reference: {bool(same)}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
