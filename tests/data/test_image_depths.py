"""Images and masks of every bit depth decode to the right values; huge images are reduced or refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsol.cli.main import main
from wsol.data import DatasetFormatError, DatasetInfo, ImageRecord, WSOLDataset, write_dataset
from wsol.data.images import MAX_PIXELS_ENV, read_image, read_mask
from wsol.data.importers.base import binary_reader
from wsol.data.importers.folder import read_user_mask
from wsol.evaluation.maps_io import _load_mask

# 16-bit samples and their 8-bit value by the bit depth (the high byte, v >> 8), computed by hand.
GREY16 = np.array([[0, 255, 256, 4095], [32768, 40000, 65280, 65535]], np.uint16)
GREY16_AS_8 = np.array([[0, 0, 1, 15], [128, 156, 255, 255]], np.uint8)


def _write_cv2(path: Path, rgb_or_grey: np.ndarray) -> Path:
    array = rgb_or_grey[..., ::-1] if rgb_or_grey.ndim == 3 else rgb_or_grey
    assert cv2.imwrite(str(path), np.ascontiguousarray(array))
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_is_scaled_by_its_bit_depth(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"grey16{suffix}"
    if suffix == ".tif":
        Image.fromarray(GREY16).save(path)  # Pillow writes mode I;16
    else:
        _write_cv2(path, GREY16)
    assert Image.open(path).mode.startswith("I;16")
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (2, 4, 3)
    np.testing.assert_array_equal(image, np.repeat(GREY16_AS_8[..., None], 3, axis=2))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_rgb_keeps_its_channels(tmp_path: Path, suffix: str) -> None:
    rgb = np.zeros((2, 3, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 65535, 32768, 256
    image = read_image(_write_cv2(tmp_path / f"rgb16{suffix}", rgb))
    np.testing.assert_array_equal(image[0, 0], [255, 128, 1])


def test_32_bit_integer_and_float_images(tmp_path: Path) -> None:
    ints = np.array([[0, 1000, 4000]], np.int32)  # no full scale: the image's own range -> 0, 63.75, 255
    Image.fromarray(ints, mode="I").save(tmp_path / "i32.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i32.tif")[0, :, 0], [0, 64, 255])
    unit = np.array([[0.0, 0.25, 1.0]], np.float32)  # float in [0, 1]: intensities, x 255
    Image.fromarray(unit, mode="F").save(tmp_path / "f32.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "f32.tif")[0, :, 0], [0, 64, 255])
    wide = np.array([[-1.0, 0.0, 3.0]], np.float32)  # float outside [0, 1]: the image's range
    Image.fromarray(wide, mode="F").save(tmp_path / "wide.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "wide.tif")[0, :, 0], [0, 64, 255])
    rgb = np.dstack([unit, unit * 0, unit[:, ::-1]])  # float RGB TIFF: Pillow cannot read it, OpenCV can
    np.testing.assert_array_equal(read_image(_write_cv2(tmp_path / "rgbf.tif", rgb))[0, 1], [64, 0, 64])
    Image.fromarray(np.array([[0.0, np.nan]], np.float32), mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(DatasetFormatError, match=r"nan\.tif: image holds NaN or infinite values"):
        read_image(tmp_path / "nan.tif")


def test_masks_of_any_bit_depth_are_binarised_on_their_full_scale(tmp_path: Path) -> None:
    ids = np.array([[0, 1, 2, 300]], np.uint16)  # 16-bit instance mask: every id > 0 is foreground
    _write_cv2(tmp_path / "ids16.png", ids)
    np.testing.assert_array_equal(read_mask(tmp_path / "ids16.png"), ids)
    np.testing.assert_array_equal(_load_mask(tmp_path / "ids16.png", (4, 1)), [[False, True, True, True]])
    votes = np.array([[0, 20000, 32767, 32768, 65535]], np.uint16)  # CUB-like fraction of annotators
    _write_cv2(tmp_path / "votes16.png", votes)
    np.testing.assert_array_equal(binary_reader(0.5)(tmp_path / "votes16.png"), [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(read_user_mask(tmp_path / "votes16.png"), [[0, 0, 0, 1, 1]])
    Image.fromarray(np.array([[0, 1, 1, 0]], bool)).save(tmp_path / "one_bit.png")  # mode "1"
    np.testing.assert_array_equal(binary_reader(0.5)(tmp_path / "one_bit.png"), [[0, 1, 1, 0]])
    Image.fromarray(np.array([[0.0, 0.3, 1.0]], np.float32), mode="F").save(tmp_path / "soft.tif")
    np.testing.assert_array_equal(read_mask(tmp_path / "soft.tif") > 0, [[False, True, True]])
    np.testing.assert_array_equal(binary_reader(0.5)(tmp_path / "soft.tif"), [[0, 0, 1]])


def _dataset(root: Path, image: Path, size: tuple[int, int], mask: np.ndarray) -> Path:
    """A one-image dataset at ``root``: ``image`` moved under ``images/``, ``mask`` as ``masks/m.png``."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image.rename(root / "images" / image.name)
    _write_cv2(root / "masks" / "m.png", mask)
    record = ImageRecord(image.name, 0, *size, boxes=((4.0, 2.0, 12.0, 10.0),), mask_paths=("m.png",))
    write_dataset(root, DatasetInfo(name="t", num_classes=1, splits=[]), {"train": [record]})
    return root


def test_a_16_bit_dataset_trains_on_real_values_and_checks_clean(tmp_path: Path, capsys) -> None:
    image = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (12, 1))
    mask = np.zeros((12, 16), np.uint16)
    mask[2:10, 4:12] = 7
    root = _dataset(tmp_path / "ds", _write_cv2(tmp_path / "x.png", image), (16, 12), mask)
    decoded, foreground, _, _ = WSOLDataset(root, "train").load_arrays(0)
    np.testing.assert_array_equal(decoded[0, :, 1], (np.linspace(0, 65535, 16).astype(np.uint16) >> 8))
    assert foreground is not None and foreground.sum() == 64
    assert main(["data", "check", str(root), "--decode", "--quiet"]) == 0


def test_pixel_budget_reduces_a_huge_jpeg_and_refuses_other_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    rgb = np.zeros((12, 16, 3), np.uint8)
    rgb[:, 8:] = 200
    Image.fromarray(rgb).save(tmp_path / "big.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    mask = np.zeros((12, 16), np.uint8)
    mask[2:10, 4:12] = 255
    root = _dataset(tmp_path / "ds", tmp_path / "big.jpg", (16, 12), mask)
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")  # 16 x 12 = 192 pixels: over; 8 x 6 = 48: within
    image, foreground, _, boxes = WSOLDataset(root, "train").load_arrays(0)
    assert image.shape == (6, 8, 3) and abs(int(image[0, 6, 0]) - 200) <= 8 and image[0, 1, 0] <= 8
    assert foreground is not None and foreground.shape == (6, 8) and foreground.sum() == 16
    np.testing.assert_allclose(boxes, [[2.0, 1.0, 6.0, 5.0]])
    with pytest.raises(DatasetFormatError) as caught:
        read_image(tmp_path / "big.png")
    assert f"{tmp_path / 'big.png'}: image of 16x12 = 192 pixels is over the budget of 100 pixels" in str(
        caught.value
    )
    assert MAX_PIXELS_ENV in str(caught.value)
    monkeypatch.setenv(MAX_PIXELS_ENV, "2")  # not even 1/8 (2 x 2) fits: refused, file named
    with pytest.raises(DatasetFormatError, match=r"big\.jpg: image of 16x12 = 192 pixels is over"):
        WSOLDataset(root, "train")[0]
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=rf"\${MAX_PIXELS_ENV}: expected a positive number of pixels"):
        read_image(tmp_path / "big.png")


def test_a_decompression_bomb_is_named_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    mask = np.zeros((12, 16), np.uint8)
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / "bomb.png")
    root = _dataset(tmp_path / "ds", tmp_path / "bomb.png", (16, 12), mask)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow refuses above twice this
    with pytest.raises(DatasetFormatError, match=r"bomb\.png: image refused as a decompression bomb"):
        WSOLDataset(root, "train")[0]
    assert main(["data", "check", str(root), "--decode", "--quiet"]) == 1
    assert "bomb.png" in capsys.readouterr().out
