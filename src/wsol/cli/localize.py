"""``wsol localize``: class, localization map, mask, boxes and an overlay picture for each image."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from wsol.cams import CAM_METHODS


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "localize",
        help="localize objects in images with a trained checkpoint",
        description=(
            "For each image writes into --out: STEM_prediction.json (predicted class, probabilities), "
            "STEM_map.npy (map in [0, 1] at the image's size), STEM_mask.png, STEM_boxes.json (largest "
            "contour box and all contour boxes, x0,y0,x1,y1) and STEM_overlay.png (map, mask contour, "
            "largest box)."
        ),
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint written by `wsol train`")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--cam",
        default=None,
        choices=sorted(CAM_METHODS),
        metavar="CAM",
        help="post-hoc CAM method of wsol.cams (default: the method's maps): %(choices)s",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="mask = map >= THRESHOLD (default: the method's own mask if it has one, else 0.5)",
    )
    parser.add_argument("--colormap", default="jet", choices=("jet", "turbo", "inferno"))
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the map in the overlay")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from wsol.data.images import read_image
    from wsol.io import atomic_write_bytes, atomic_write_text
    from wsol.report.overlay import draw_overlay, save_png
    from wsol.training.inference import load_checkpoint_full, predict_images

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold: expected a value in [0, 1], got {args.threshold}")
    stems: dict[str, Path] = {}
    for path in args.images:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
        if path.stem in stems:
            raise ValueError(f"{path} and {stems[path.stem]} share the output name {path.stem!r}; rename one")
        stems[path.stem] = path
    loaded = load_checkpoint_full(args.checkpoint)
    names = loaded.class_names
    out: Path = args.out
    for item in predict_images(
        loaded.method, loaded.config, args.images, cam=args.cam, threshold=args.threshold
    ):
        stem = item.path.stem
        prediction = {
            "image": str(item.path),
            "predicted_class": item.predicted_class,
            "class_name": names[item.predicted_class] if item.predicted_class < len(names) else None,
            "probabilities": item.probabilities,
            "cam": args.cam,
        }
        boxes = {"threshold": item.threshold, "largest": item.largest_box, "all": item.boxes}
        atomic_write_text(out / f"{stem}_prediction.json", json.dumps(prediction, indent=2) + "\n")
        atomic_write_text(out / f"{stem}_boxes.json", json.dumps(boxes, indent=2) + "\n")
        buffer = io.BytesIO()
        np.save(buffer, item.map)
        atomic_write_bytes(out / f"{stem}_map.npy", buffer.getvalue())
        save_png(out / f"{stem}_mask.png", item.mask.astype(np.uint8) * 255)
        overlay = draw_overlay(
            read_image(item.path),
            item.map,
            item.mask,
            [item.largest_box] if item.largest_box is not None else [],
            alpha=args.alpha,
            colormap=args.colormap,
        )
        save_png(out / f"{stem}_overlay.png", overlay)
        label = prediction["class_name"] or item.predicted_class
        print(
            f"{item.path}: class {label} (p={max(item.probabilities):.3f}), {len(item.boxes)} boxes -> {out}"
        )
    return 0
