"""Images read in place: a moved source gives an error saying how to re-point it; repoint works."""

from __future__ import annotations

import shutil

import pytest
from realdata_fixtures import build_busi

from wsol.cli.main import main
from wsol.data.dataset import WSOLDataset
from wsol.data.format import DatasetFormatError
from wsol.data.importers import import_dataset


def test_moved_source_error_and_repoint(tmp_path, capsys):
    src = build_busi(tmp_path / "old")
    out = tmp_path / "out"
    import_dataset("busi", src, out)
    before = WSOLDataset(out, "test")[0]["image"]
    moved = shutil.move(str(tmp_path / "old"), tmp_path / "new")
    with pytest.raises(DatasetFormatError, match=r"wsol data repoint .* --image-root NEW_FOLDER"):
        WSOLDataset(out, "test")
    assert main(["data", "repoint", str(out), "--image-root", str(tmp_path)]) == 2  # images not there
    assert "images of" in capsys.readouterr().err
    new_root = moved / "Dataset_BUSI_with_GT"
    assert main(["data", "repoint", str(out), "--image-root", str(new_root)]) == 0
    assert WSOLDataset(out, "test")[0]["image"].equal(before)
