"""Re-point a dataset whose images are read in place (imported without ``--copy``) at their new folder.

``dataset.json``'s ``image_root`` is the one place that names the source folder: every image id is relative
to it, so moving the source needs one rewrite, which :func:`repoint_images` does after checking that every
image of every split is found under the new folder (``wsol data repoint DIR --image-root NEW``).
"""

from __future__ import annotations

import json
from pathlib import Path

from wsol.data.format import DATASET_FILE, DatasetFormatError, read_dataset_info, read_split
from wsol.io import atomic_write_text


def repoint_images(root: Path, image_root: Path) -> int:
    """Set ``root``'s image root to ``image_root`` (absolute); returns the number of images checked."""
    root, image_root = Path(root), Path(image_root).expanduser().absolute()
    info = read_dataset_info(root)
    if not image_root.is_dir():
        raise FileNotFoundError(f"--image-root {image_root}: folder not found")
    image_ids = [record.image_id for split in info.splits for record in read_split(root, split)]
    missing = [image_id for image_id in image_ids if not (image_root / image_id).is_file()]
    if missing:
        raise DatasetFormatError(
            f"--image-root {image_root}: {len(missing)} of {len(image_ids)} images of {root} are not there "
            f"(first: {missing[0]!r}); expected the folder that holds the image ids of {root / 'metadata'}"
        )
    path = root / DATASET_FILE
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload["image_root"] = str(image_root)
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return len(image_ids)
