"""Image and mask decoding/encoding with clear errors (Pillow to read, OpenCV to write PNGs fast).

Every reader raises :class:`~wsol.data.format.DatasetFormatError` naming the file (and, through ``where``, the
metadata line that listed it) instead of returning a partial array: truncated files are never silently padded.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from wsol.data.format import DatasetFormatError

# Pillow would otherwise pad a truncated file with grey and carry on.
Image.LOAD_TRUNCATED_IMAGES = False

MAX_PIXELS_ENV = "WSOL_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000
"""Pixel budget of one decoded image (about 150 MB as 8-bit RGB); ``$WSOL_MAX_IMAGE_PIXELS`` changes it."""

DRAFT_SCALES = (2, 4, 8)
"""The reductions a JPEG decoder applies for free while decoding (DCT scaling, Pillow's ``draft``)."""

_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _suffix(where: str) -> str:
    return f" (listed at {where})" if where else ""


def max_image_pixels() -> int:
    """The pixel budget: ``$WSOL_MAX_IMAGE_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${MAX_PIXELS_ENV}: expected a positive number of pixels, got {text!r}")
    return value


def draft_size(width: int, height: int, scale: int) -> tuple[int, int]:
    """``(width, height)`` of a JPEG decoded at ``1/scale`` (libjpeg rounds up)."""
    return math.ceil(width / scale), math.ceil(height / scale)


def draft_scale(size: tuple[int, int], decoded: tuple[int, int]) -> int | None:
    """The :data:`DRAFT_SCALES` entry that turns ``size`` into ``decoded`` (both ``(width, height)``)."""
    return next((s for s in DRAFT_SCALES if draft_size(*size, s) == tuple(decoded)), None)


def _fit_budget(image: Image.Image, budget: int, path: Path, kind: str, where: str) -> None:
    """Refuse an image over the pixel budget, or decode a JPEG at the mildest reduction that fits."""
    width, height = image.size
    if width * height <= budget:
        return
    scales = [s for s in DRAFT_SCALES if math.prod(draft_size(width, height, s)) <= budget]
    if image.format == "JPEG" and scales:
        image.draft("RGB", draft_size(width, height, scales[0]))
        return
    raise DatasetFormatError(
        f"{path}: {kind} of {width}x{height} = {width * height} pixels is over the budget of {budget} pixels "
        f"(set ${MAX_PIXELS_ENV} to raise it, or downscale the file){_suffix(where)}"
    )


def _open(path: Path, kind: str, where: str, *, budget: bool = False) -> Image.Image:
    """Open, check an image's size against the pixel budget (:func:`_fit_budget`), then decode.

    Masks (one 8- or 16-bit channel, read at full size next to a reduced JPEG) have only Pillow's
    decompression-bomb limit.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: {kind} file not found{_suffix(where)}")
    limit = max_image_pixels() if budget else None
    try:
        with warnings.catch_warnings():  # over Pillow's warning size: our budget decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        if limit is not None:
            _fit_budget(image, limit, path, kind, where)
        image.load()
    except DatasetFormatError:
        raise
    except Image.DecompressionBombError as err:
        raise DatasetFormatError(
            f"{path}: {kind} refused as a decompression bomb ({err}){_suffix(where)}"
        ) from None
    except _DECODE_ERRORS as err:
        raise DatasetFormatError(
            f"{path}: unreadable or truncated {kind} file ({err}){_suffix(where)}"
        ) from err
    return image


def _open_any_depth(path: Path, kind: str, where: str, *, image: bool) -> np.ndarray:
    """Pixels at their stored depth: Pillow, or OpenCV for what Pillow cannot read (e.g. float RGB TIFF).

    An ``image`` is reduced to fit the pixel budget when it is a JPEG and has its palette expanded; a mask
    keeps its palette indices.
    """
    try:
        decoded = _open(path, kind, where, budget=image)
    except DatasetFormatError as err:
        if not isinstance(err.__cause__, UnidentifiedImageError):
            raise
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None or array.ndim not in (2, 3):
            raise
        if array.shape[0] * array.shape[1] > max_image_pixels():
            raise DatasetFormatError(f"{path}: {kind} is over the pixel budget (${MAX_PIXELS_ENV})") from None
        if array.ndim == 3:
            code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
            array = cv2.cvtColor(array, code) if array.shape[2] in (3, 4) else array[..., 0]
        return array
    mode = decoded.mode
    if mode == "I" and decoded.format == "PNG":  # 16-bit grey PNG in Pillow versions without "I;16" PNGs
        return np.asarray(decoded).astype(np.uint16)
    if mode.startswith("I") or mode in ("F", "L", "RGB") or (mode == "P" and not image):
        array = np.asarray(decoded)
        return array.astype(array.dtype.newbyteorder("="))  # big-endian 16-bit TIFFs to native order
    if mode == "1":
        return np.asarray(decoded, dtype=np.uint8) * np.uint8(255)
    return np.asarray(decoded.convert("RGBA" if "A" in mode or mode == "P" else "RGB"))


def to_uint8(array: np.ndarray, path: Path) -> np.ndarray:
    """Intensities of any depth as uint8: 16-bit by the bit depth (the high byte), float in [0, 1] by 255,
    32-bit integers and floats outside [0, 1] by the image's own range (constant images become 0)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise DatasetFormatError(f"{path}: image holds NaN or infinite values")
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if not (np.issubdtype(array.dtype, np.floating) and low >= 0.0 and high <= 1.0):
        values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.rint(values * 255.0).astype(np.uint8)


def read_image(path: Path, *, where: str = "") -> np.ndarray:
    """Decode an image file into an (H, W, 3) uint8 RGB array, whatever its mode and bit depth.

    Greyscale is repeated over the three channels, alpha is dropped, palettes are expanded; depths other than
    8 bits are mapped by :func:`to_uint8`. A JPEG over the pixel budget (:func:`max_image_pixels`) is decoded
    at 1/2, 1/4 or 1/8 of its size (:func:`draft_scale` tells the factor); any other image over it is refused.
    """
    path = Path(path)
    array = to_uint8(_open_any_depth(path, "image", where, image=True), path)
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def read_mask(path: Path, *, where: str = "") -> np.ndarray:
    """Decode a mask file into an (H, W) array of its stored values (``> 0`` = foreground).

    Single-channel masks keep their values and dtype (1-bit as 0/255, 8/16-bit unsigned, 32-bit integer or
    float; palette PNGs keep their indices), so instance ids survive and :func:`mask_fraction` knows the full
    scale; colour masks become luminance, as OpenCV's ``IMREAD_GRAYSCALE`` does in wsolevaluation.
    """
    path = Path(path)
    array = _open_any_depth(path, "mask", where, image=False)
    if array.ndim == 3:
        array = cv2.cvtColor(to_uint8(array[..., :3], path), cv2.COLOR_RGB2GRAY)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DatasetFormatError(f"{path}: mask holds NaN or infinite values{_suffix(where)}")
    return np.ascontiguousarray(array)


def mask_fraction(labels: np.ndarray) -> np.ndarray:
    """A :func:`read_mask` array as a fraction of its type's full scale (255, 65535, ..., 1.0 for floats), so
    that a threshold such as "half the annotators" means the same at every bit depth."""
    scale = np.iinfo(labels.dtype).max if np.issubdtype(labels.dtype, np.integer) else 1.0
    return labels.astype(np.float64) / scale


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
