"""``wsol data synth --out DIR [--preset ...]``: write the embedded synthetic benchmark (wsol.data.synth)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

from wsol.data.synth import PRESETS, SynthConfig, generate_synthetic


def register(data_subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` command to the ``wsol data`` group."""
    parser = data_subparsers.add_parser(
        "synth",
        help="generate the synthetic WSOL benchmark (masks + boxes), deterministic from a seed",
        description=(
            "Generate a complete dataset (train / val / test, masks and boxes) in the library's format. "
            "The class is decided by a small glyph on the object; background and objects share colours; "
            "distractor glyphs of no class lie in the background. See docs/data.md."
        ),
    )
    defaults = {f.name: f.default for f in fields(SynthConfig)}
    parser.add_argument("--out", type=Path, required=True, help="output folder (written atomically)")
    parser.add_argument("--preset", choices=PRESETS, default=defaults["preset"], help="default: %(default)s")
    parser.add_argument(
        "--num-classes", type=int, default=None, help="number of classes (default: natural 4, histology 2)"
    )
    parser.add_argument("--image-size", type=int, default=defaults["image_size"], help="side in pixels")
    parser.add_argument("--train", type=int, default=defaults["train"], help="training images (weak labels)")
    parser.add_argument(
        "--val", type=int, default=defaults["val"], help="pixel-labelled model-selection images"
    )
    parser.add_argument("--test", type=int, default=defaults["test"], help="test images")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="same seed => identical files")
    parser.add_argument(
        "--instances", type=int, nargs=2, metavar=("MIN", "MAX"), default=None, help="objects per image"
    )
    parser.add_argument(
        "--object-area",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=defaults["object_area"],
        help="fraction of the image covered by the objects (default: %(default)s)",
    )
    parser.add_argument(
        "--distractors", type=int, nargs=2, metavar=("MIN", "MAX"), default=None, help="distractor glyphs"
    )
    parser.add_argument(
        "--body-evidence",
        type=float,
        default=defaults["body_evidence"],
        help="probability that the body texture follows the class (default: %(default)s)",
    )
    parser.add_argument(
        "--random-pose", action="store_true", help="draw each glyph in a random rotation/flip (harder)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing dataset of this library at --out"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    config = SynthConfig(
        preset=args.preset,
        num_classes=args.num_classes,
        image_size=args.image_size,
        train=args.train,
        val=args.val,
        test=args.test,
        seed=args.seed,
        instances=tuple(args.instances) if args.instances else None,
        object_area=tuple(args.object_area),
        distractors=tuple(args.distractors) if args.distractors else None,
        body_evidence=args.body_evidence,
        random_pose=args.random_pose,
    )
    start = time.perf_counter()
    try:
        root = generate_synthetic(args.out, config, overwrite=args.force)
    except FileExistsError as err:
        print(f"wsol data synth: error: {err}", file=sys.stderr)
        return 2
    total = config.train + config.val + config.test
    elapsed = time.perf_counter() - start
    print(
        f"wrote {root}: preset {config.preset}, {config.num_classes} classes, {config.image_size} px, "
        f"train/val/test {config.train}/{config.val}/{config.test} ({total} images in {elapsed:.1f} s)"
    )
    return 0
