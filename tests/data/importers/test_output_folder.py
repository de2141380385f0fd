"""The dataset writers never delete what they did not write (``wsol data import``/``synth`` ``--out``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from importer_fixtures import build_glas, tree_bytes

from wsol.cli.main import main
from wsol.data.format import read_dataset_info
from wsol.data.output import check_output_folder
from wsol.data.synth import generate_synthetic
from wsol.io import OWNER_FILE, atomic_directory

GRADES = {
    f"{part}_{k}": ("benign" if k % 2 else "malignant") for part in ("train", "testA") for k in (1, 2, 3)
}
TINY = {"image_size": 32, "train": 2, "val": 1, "test": 1}


def _import(src: Path, out: Path, *extra: str) -> int:
    return main(["data", "import", "glas", "--src", str(src), "--out", str(out), "--quiet", *extra])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {**tree_bytes(root), **{f"{p.relative_to(root)}/": b"" for p in root.rglob("*") if p.is_dir()}}


@pytest.fixture(scope="module")
def glas_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_glas(tmp_path_factory.mktemp("glas") / "src", GRADES)


@pytest.mark.parametrize(
    "layout",
    [
        {"notes.txt": b"my thesis"},
        {"photos/cat.jpg": b"\xff\xd8 not really"},
        {"empty-folder/": b""},
    ],
    ids=["file", "nested", "empty-folder"],
)
@pytest.mark.parametrize("force", [False, True])
def test_import_refuses_a_folder_of_other_files_and_leaves_it_byte_identical(
    glas_src: Path, tmp_path: Path, capsys, layout: dict[str, bytes], force: bool
) -> None:
    out = tmp_path / "out"
    for name, data in layout.items():
        path = out / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    before = _snapshot(out)
    assert _import(glas_src, out, *(["--force"] if force else [])) == 2
    error = capsys.readouterr().err
    assert f"--out {out}: not empty and not a dataset written by `wsol data`" in error
    assert next(iter(layout)).split("/")[0] in error
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_import_replaces_its_own_dataset_only_with_force_and_never_a_foreign_file(
    glas_src: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    assert _import(glas_src, out, "--copy", "--seed", "1") == 0
    first = _snapshot(out)
    assert _import(glas_src, out, "--copy") == 2
    assert "holds the dataset 'glas'; pass --force to replace it" in capsys.readouterr().err
    assert _snapshot(out) == first
    assert _import(glas_src, out, "--copy", "--seed", "1", "--force") == 0
    assert _snapshot(out) == first
    # One foreign file anywhere inside a dataset (even next to its masks) makes it not replaceable.
    (out / "masks" / "my_annotation.png").write_bytes(b"mine")
    with_foreign = _snapshot(out)
    assert _import(glas_src, out, "--force") == 2
    assert "not part of its `wsol data` dataset: masks/my_annotation.png" in capsys.readouterr().err
    assert _snapshot(out) == with_foreign


def test_import_refuses_the_current_folder_and_a_source_inside_the_output(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "work"
    src = build_glas(out / "glas", GRADES)  # --src inside --out: replacing --out would delete the source
    before = _snapshot(out)
    assert _import(src, out, "--force") == 2
    assert "must not be, contain or lie inside the source folder" in capsys.readouterr().err
    assert _import(out, out / "glas" / "converted") == 2  # --out inside --src
    assert _snapshot(out) == before
    here = tmp_path / "here"
    here.mkdir()
    (here / "notes.txt").write_text("keep me")
    monkeypatch.chdir(here)
    assert _import(src, Path("."), "--force") == 2
    assert "it holds notes.txt" in capsys.readouterr().err
    assert _snapshot(here) == {"notes.txt": b"keep me"}


def test_synth_force_never_replaces_a_folder_of_other_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "data"
    (out / "raw").mkdir(parents=True)
    (out / "raw" / "scan.tif").write_bytes(b"precious")
    argv = ["data", "synth", "--out", str(out), "--image-size", "32", "--train", "2", "--val", "1"]
    assert main([*argv, "--test", "1", "--force"]) == 2
    assert "raw/" in capsys.readouterr().err
    assert (out / "raw" / "scan.tif").read_bytes() == b"precious" and len(list(out.iterdir())) == 1
    with pytest.raises(FileExistsError, match="is not a folder"):
        (tmp_path / "file").write_text("x")
        generate_synthetic(tmp_path / "file", **TINY)


def _killed_write(target: Path) -> Path:
    """Start an atomic write of ``target`` in a child process and kill it mid-way; return its folder."""
    code = (
        "import os, sys, time\nfrom pathlib import Path\nfrom wsol.io import atomic_directory\n"
        "with atomic_directory(Path(sys.argv[1])) as tmp:\n"
        "    (tmp / 'big.bin').write_bytes(b'0' * 1000)\n    print(tmp, flush=True)\n    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, env=env)
    assert child.stdout is not None
    left = Path(child.stdout.readline().decode().strip())
    child.kill()
    child.wait()
    return left


def test_stale_temporary_folders_of_a_killed_write_are_removed_by_the_next_one(tmp_path: Path) -> None:
    target = tmp_path / "synth"
    stale = _killed_write(target)
    assert stale.is_dir() and stale.name.startswith(".synth.tmp-")
    foreign = tmp_path / ".synth.tmp-not-ours"  # same pattern, no owner file: somebody else's
    foreign.mkdir()
    live = tmp_path / ".synth.tmp-live"  # owner file of a running process: a concurrent write
    live.mkdir()
    (live / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    generate_synthetic(target, **TINY)
    assert not stale.exists()
    assert foreign.is_dir() and live.is_dir()
    assert read_dataset_info(target).name == "synthetic-natural"
    assert not (target / OWNER_FILE).exists()
    with atomic_directory(tmp_path / "other") as tmp:
        assert (tmp / OWNER_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".synth.tmp-live",
        ".synth.tmp-not-ours",
        "other",
        "synth",
    ]


def test_a_file_that_appears_during_a_long_write_is_not_deleted(tmp_path: Path) -> None:
    target = generate_synthetic(tmp_path / "synth", **TINY)
    before = _snapshot(target)
    with pytest.raises(FileExistsError, match="holds files that are not part of its `wsol data` dataset"):
        with atomic_directory(target, check=lambda: check_output_folder(target, force=True)) as tmp:
            (tmp / "dataset.json").write_text("{}")
            (target / "added-meanwhile.txt").write_text("mine")  # the user saves a file during the write
    assert _snapshot(target) == {**before, "added-meanwhile.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
