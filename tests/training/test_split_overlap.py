"""``wsol train`` refuses a dataset whose splits share an image, unless told to go on (then it warns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsol.cli.main import main
from wsol.data.format import DatasetFormatError, read_split
from wsol.data.splits import require_disjoint_splits, split_overlaps
from wsol.data.synth import generate_synthetic


def _leaky_dataset(root: Path) -> tuple[Path, str]:
    """A tiny synthetic dataset whose first training image is listed again in test (as ``./<id>``)."""
    generate_synthetic(root, image_size=32, train=4, val=2, test=2, seed=1)
    first = read_split(root, "train")[0]
    test_dir = root / "metadata" / "test"
    leaked = f"./{first.image_id}"
    lines = {
        "image_ids.txt": leaked,
        "class_labels.txt": f"{leaked},{first.label}",
        "image_sizes.txt": f"{leaked},{first.width},{first.height}",
    }
    for name, line in lines.items():
        path = test_dir / name
        path.write_text(path.read_text() + line + "\n")
    return root, first.image_id


def test_split_overlaps_compares_normalised_ids(tmp_path: Path) -> None:
    root, image_id = _leaky_dataset(tmp_path / "data")
    records = {split: read_split(root, split) for split in ("train", "val", "test")}
    assert split_overlaps(records) == [(f"./{image_id}", "train", "test")]
    require_disjoint_splits(root, ["train", "val"])  # the leak is in test only
    with pytest.warns(UserWarning, match=r"1 image\(s\) are in two splits"):
        require_disjoint_splits(root, ["train", "val", "test"], allow=True)


class _PastTheCheck(Exception):
    """Raised where the run builds its method, i.e. once the data checks have passed."""


def test_train_refuses_an_image_in_two_splits_and_allow_overlap_goes_on(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, image_id = _leaky_dataset(tmp_path / "data")
    argv = ["train", f"data.root={root}", f"output_dir={tmp_path / 'runs'}", "name=leak"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"{root}: 1 image(s) are in two splits (" in error
    assert f"'./{image_id}' in 'train' and 'test'" in error and "--allow-overlap" in error
    assert not (tmp_path / "runs" / "leak" / "checkpoints").exists()

    def reached(*args: object, **kwargs: object) -> None:
        raise _PastTheCheck

    monkeypatch.setattr("wsol.training.run.instantiate_method", reached)  # no need to train: stop there
    with pytest.warns(UserWarning, match="are in two splits"), pytest.raises(_PastTheCheck):
        main(["train", "--allow-overlap", *argv[1:]])


def test_check_still_reports_every_overlap(tmp_path: Path) -> None:
    from wsol.data.check import check_dataset

    root, image_id = _leaky_dataset(tmp_path / "data")
    problems = check_dataset(root).problems
    assert f"image './{image_id}' is in both split 'train' and split 'test'" in problems
    with pytest.raises(DatasetFormatError):
        require_disjoint_splits(root, ["train", "test"])
