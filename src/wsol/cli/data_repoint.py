"""``wsol data repoint DIR --image-root NEW``: point a dataset imported in place at its moved source."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(data_subparsers: argparse._SubParsersAction) -> None:
    """Add ``data repoint`` to the ``wsol data`` parsers."""
    parser = data_subparsers.add_parser(
        "repoint",
        help="point a dataset imported without --copy at the new folder of its images",
        description="Rewrite the image root of dataset.json after the source moved (every image is checked).",
    )
    parser.add_argument("root", type=Path, metavar="DIR", help="dataset folder (with dataset.json)")
    parser.add_argument("--image-root", type=Path, required=True, help="the folder the images moved to")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wsol.data.relocate import repoint_images

    count = repoint_images(args.root, args.image_root)
    print(f"{args.root}: image root set to {args.image_root.expanduser().absolute()} ({count} images found)")
    return 0
