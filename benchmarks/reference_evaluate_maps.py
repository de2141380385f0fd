"""The reference algorithm as a whole process: wsolevaluation's box evaluation of a folder of ``.npy`` maps.

Reads a wsolevaluation metadata split folder (``image_ids.txt``, ``image_sizes.txt``, ``localization.txt``),
loads ``<maps>/<image_id>.npy`` (224x224 maps in [0, 1]), rescales the GT boxes to the 224 frame with
truncation (``resize_bbox``) and runs the reference's per-τ loop (one ``cv2.threshold`` + ``findContours`` per
τ, both contour rules from the same contours: tests/evaluation/_wsolevaluation_naive.py). Prints MaxBoxAcc
(V1 at δ 50, V2 = mean over δ 30/50/70) as JSON. ``bench_evaluate_process.py`` times it against
``wsol evaluate --maps``.

    python benchmarks/reference_evaluate_maps.py --maps MAPS --metadata DATA/metadata/test
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))
from _wsolevaluation_naive import naive_correct, naive_resize_box  # noqa: E402

DELTAS = [30, 50, 70]


def _read_lines(path: Path) -> list[list[str]]:
    return [line.strip().split(",") for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--maps", type=Path, required=True)
    parser.add_argument("--metadata", type=Path, required=True, help="metadata split folder")
    parser.add_argument("--cam-curve-interval", type=float, default=0.001)
    args = parser.parse_args()
    image_ids = [row[0] for row in _read_lines(args.metadata / "image_ids.txt")]
    sizes = {row[0]: (int(row[1]), int(row[2])) for row in _read_lines(args.metadata / "image_sizes.txt")}
    boxes: dict[str, list[list[float]]] = defaultdict(list)
    for row in _read_lines(args.metadata / "localization.txt"):
        boxes[row[0]].append([float(v) for v in row[1:5]])
    taus = np.arange(0, 1, args.cam_curve_interval)
    counts = np.zeros((2, len(DELTAS), len(taus)))
    for image_id in image_ids:
        scoremap = np.load(args.maps / f"{image_id}.npy")
        gt = [naive_resize_box(box, sizes[image_id], 224) for box in boxes[image_id]]
        counts += np.stack(naive_correct(scoremap, taus, gt, DELTAS))
    accuracy = counts.max(axis=2) * 100 / len(image_ids)
    print(json.dumps({"max_box_acc_v1": accuracy[0, 1], "max_box_acc_v2": float(accuracy[1].mean())}))


if __name__ == "__main__":
    main()
