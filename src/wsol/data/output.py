"""Guarding the output folder of the dataset writers (``wsol data synth`` / ``wsol data import``).

A writer replaces its output folder in one rename (:func:`wsol.io.atomic_directory`), which would delete
whatever the folder held. :func:`check_output_folder` allows that only for an empty folder or, with
``force``, for a dataset this library wrote and nothing else: every file must be one the dataset's own
metadata accounts for (its ``dataset.json``, ``classes.txt``, split metadata, and the masks and copied images
it lists).
"""

from __future__ import annotations

from pathlib import Path

from wsol.data.format import (
    CLASSES_FILE,
    DATASET_FILE,
    METADATA_DIR,
    DatasetFormatError,
    read_dataset_info,
    read_split,
)

METADATA_FILES = (
    "image_ids.txt",
    "class_labels.txt",
    "image_sizes.txt",
    "localization.txt",
    "masks.txt",
    "extra_boxes.txt",
    "parts.txt",  # the synthetic benchmark's object parts (wsol.data.synth)
    "extra_boxes.txt",  # whole-object and head boxes (wsol.data.mask_boxes, the Oxford-IIIT Pet importer)
)
_SHOWN = 5


def dataset_files(root: Path) -> set[Path]:
    """Paths (relative to ``root``) of every file that the dataset at ``root`` consists of.

    Raises :class:`~wsol.data.format.DatasetFormatError` when ``root`` is not a readable dataset.
    """
    root = Path(root)
    info = read_dataset_info(root)
    owned = {Path(DATASET_FILE), Path(CLASSES_FILE)}
    image_root, mask_root = Path(info.image_root), Path(info.mask_root)
    for split in info.splits:
        owned |= {Path(METADATA_DIR, split, name) for name in METADATA_FILES}
        for record in read_split(root, split):
            if not image_root.is_absolute():
                owned.add(image_root / record.image_id)
            if not mask_root.is_absolute():
                owned |= {mask_root / name for name in record.mask_paths}
                owned |= {mask_root / record.ignore_path} if record.ignore_path else set()
    return owned


def _foreign_entries(root: Path, owned: set[Path]) -> list[str]:
    """Files and folders under ``root`` that are not in ``owned`` (nor a folder holding an owned file)."""
    folders = {parent for path in owned for parent in path.parents}
    foreign: list[str] = []

    def visit(folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            relative = path.relative_to(root)
            if path.is_dir() and not path.is_symlink():
                if relative in folders:
                    visit(path)
                else:
                    foreign.append(f"{relative.as_posix()}/")
            elif relative not in owned:
                foreign.append(relative.as_posix())

    visit(root)
    return foreign


def _shown(entries: list[str]) -> str:
    more = f" and {len(entries) - _SHOWN} more" if len(entries) > _SHOWN else ""
    return ", ".join(entries[:_SHOWN]) + more


def check_output_folder(out: Path, *, force: bool, sources: tuple[Path, ...] = ()) -> None:
    """Refuse (``FileExistsError`` / ``ValueError``, naming what is there) to write a dataset over ``out``.

    ``out`` may be missing or empty; a dataset of this library is replaced only with ``force``; a folder
    holding anything else is never replaced. ``sources`` (folders the writer reads) may not contain ``out``
    nor lie inside it.
    """
    out = Path(out).expanduser()
    resolved = out.resolve()
    for source in sources:
        source = Path(source).expanduser().resolve()
        if resolved == source or source in resolved.parents or resolved in source.parents:
            raise ValueError(
                f"--out {out}: must not be, contain or lie inside the source folder {source} "
                "(replacing it would delete the images being imported)"
            )
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise FileExistsError(f"--out {out}: exists and is not a folder; choose a new or empty folder")
    if not any(out.iterdir()):
        return
    try:
        foreign = _foreign_entries(out, dataset_files(out))
    except DatasetFormatError as err:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        raise FileExistsError(
            f"--out {out}: not empty and not a dataset written by `wsol data` ({err}); it holds "
            f"{_shown(entries)}. Nothing was changed; choose a new or empty folder"
        ) from None
    if foreign:
        raise FileExistsError(
            f"--out {out}: holds files that are not part of its `wsol data` dataset: {_shown(foreign)}. "
            "Nothing was changed; move them away or choose a new or empty folder"
        )
    if not force:
        raise FileExistsError(
            f"--out {out}: holds the dataset {read_dataset_info(out).name!r}; pass --force to replace it"
        )
