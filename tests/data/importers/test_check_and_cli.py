"""``wsol data check`` (validation + summary) and the CLI commands."""

from __future__ import annotations

import argparse
import json

import pytest
from importer_fixtures import build_glas, build_openimages

from wsol.cli.data_import import register
from wsol.data.check import check_dataset
from wsol.data.importers import import_dataset

GRADES = {
    "train_1": "benign",
    "train_2": "benign",
    "train_3": "malignant",
    "testA_1": "benign",
    "testB_1": "malignant",
}


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wsol data")
    register(parser.add_subparsers(dest="data_command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_check_summary_of_an_import(tmp_path):
    src = build_glas(tmp_path / "glas", GRADES)
    import_dataset("glas", src, tmp_path / "out", seed=0)
    report = check_dataset(tmp_path / "out", decode=True)
    assert report.ok, report.problems
    summary = report.to_dict()
    # benign: 2 train images -> 1 valid; malignant: 1 train image stays in train (one always stays).
    assert summary["splits"]["train"]["per_class"] == [1, 1]
    assert summary["splits"]["val"]["per_class"] == [1, 0]
    assert summary["splits"]["test"]["per_class"] == [1, 1]
    # glas_anno: 3x4 + 4x6 = 36 foreground pixels of 16x12 = 192.
    assert summary["splits"]["test"]["coverage"]["mean"] == pytest.approx(36 / 192)
    assert summary["splits"]["test"]["width"] == [16, 16]
    text = report.format()
    assert "no problems found" in text and "1 malignant" in text
    assert "split 'val' has no image of class(es) [1]" in report.warnings


def test_check_lists_every_problem(tmp_path):
    src = build_openimages(tmp_path / "wsolevaluation")
    import_dataset("openimages", src, tmp_path / "out")
    out = tmp_path / "out"
    (out / "masks" / "test" / "01226z" / "b_m01226z_1.png").unlink()
    (out / "masks" / "test" / "01226z" / "a_ignore.png").write_bytes(b"not a png")
    sizes = out / "metadata" / "train" / "image_sizes.txt"
    sizes.write_text(sizes.read_text().replace(",16,12", ",17,12", 1))
    test_ids = out / "metadata" / "test" / "image_ids.txt"
    train_first = (out / "metadata" / "train" / "image_ids.txt").read_text().splitlines()[0]
    # the same image in two splits (given a label and size in the test split too)
    test_ids.write_text(test_ids.read_text() + train_first + "\n")
    for name, line in (("class_labels.txt", f"{train_first},0"), ("image_sizes.txt", f"{train_first},16,12")):
        path = out / "metadata" / "test" / name
        path.write_text(path.read_text() + line + "\n")
    report = check_dataset(out)
    problems = "\n".join(report.problems)
    assert not report.ok and len(report.problems) == 4, problems
    assert "b_m01226z_1.png: mask of 'test/01226z/b.jpg' not found" in problems
    assert "a_ignore.png: mask of 'test/01226z/a.jpg' does not decode" in problems
    assert "image is 16x12 but image_sizes.txt says 17x12" in problems
    assert f"image {train_first!r} is in both split 'train' and split 'test'" in problems


def test_cli_import_then_check(tmp_path, capsys):
    src = build_glas(tmp_path / "glas", GRADES)
    assert (
        run_cli(
            ["import", "glas", "--src", str(src), "--out", str(tmp_path / "out"), "--seed", "1", "--quiet"]
        )
        == 0
    )
    assert "train: 2 images" in capsys.readouterr().out
    assert run_cli(["check", str(tmp_path / "out"), "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["test"]["images"] == 2
    (tmp_path / "out" / "masks" / "train_1_anno.png").unlink()
    assert run_cli(["check", str(tmp_path / "out"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert (
        "1 problem(s)" in captured.out and "train_1_anno.png: mask of 'train_1.bmp' not found" in captured.out
    )


def test_cli_rejects_an_unknown_dataset(capsys):
    with pytest.raises(SystemExit):
        run_cli(["import", "imagenet21k", "--src", ".", "--out", "x"])
    assert "invalid choice: 'imagenet21k'" in capsys.readouterr().err
