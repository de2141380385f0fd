"""Image and mask decoding/encoding with clear errors (Pillow to read, OpenCV to write PNGs fast).

Every reader raises :class:`~wsol.data.format.DatasetFormatError` naming the file (and, through ``where``, the
metadata line that listed it) instead of returning a partial array: truncated files are never silently padded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from wsol.data.format import DatasetFormatError

# Pillow would otherwise pad a truncated file with grey and carry on.
Image.LOAD_TRUNCATED_IMAGES = False


def _suffix(where: str) -> str:
    return f" (listed at {where})" if where else ""


def _open(path: Path, kind: str, where: str) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: {kind} file not found{_suffix(where)}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DatasetFormatError(
            f"{path}: unreadable or truncated {kind} file ({err}){_suffix(where)}"
        ) from err
    return image


def read_image(path: Path, *, where: str = "") -> np.ndarray:
    """Decode an image file into an (H, W, 3) uint8 RGB array (greyscale/alpha/palette are converted)."""
    image = _open(path, "image", where)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def read_mask(path: Path, *, where: str = "") -> np.ndarray:
    """Decode a mask file into an (H, W) integer array, keeping instance ids (``> 0`` = foreground).

    Single-channel modes (1, L, P, I;16, I) keep their raw values (palette PNGs keep their indices); colour
    masks are converted to luminance, as OpenCV's ``IMREAD_GRAYSCALE`` does in wsolevaluation.
    """
    image = _open(path, "mask", where)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("L", "P"):
        return np.asarray(image, dtype=np.uint8).copy()
    if image.mode.startswith("I"):
        return np.asarray(image).astype(np.int32)
    return np.asarray(image.convert("L"), dtype=np.uint8).copy()


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) RGB uint8 image or an (H, W) uint8/uint16 mask (deterministic)."""
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(array), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"cannot encode an array of shape {array.shape} and dtype {array.dtype} as PNG")
    return buffer.tobytes()


def write_png(path: Path, array: np.ndarray) -> None:
    """Write :func:`encode_png` bytes to ``path`` (inside an atomic folder; parents are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(array))
