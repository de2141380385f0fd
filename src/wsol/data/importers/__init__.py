"""Importers from the official layouts of real datasets into the library's format (``wsol data import``).

``IMPORTERS`` maps each importer's name to its class; :func:`import_dataset` runs one.
"""

from __future__ import annotations

from pathlib import Path

from wsol.data.importers.base import Importer, ImportReport, SourceLayoutError, run_import
from wsol.data.importers.busi import BUSIImporter
from wsol.data.importers.cub import CUB5Importer, CUBImporter
from wsol.data.importers.folder import FolderImporter
from wsol.data.importers.glas import GlaSImporter
from wsol.data.importers.oxford_flowers import OxfordFlowersImporter
from wsol.data.importers.oxford_pets import OxfordPetsImporter, OxfordPetsSpeciesImporter
from wsol.data.importers.ph2 import PH2Importer
from wsol.data.importers.tiny_imagenet import TinyImageNetImporter
from wsol.data.importers.wsolevaluation import ILSVRCImporter, OpenImagesImporter, WsolEvalCUBImporter

IMPORTERS: dict[str, type[Importer]] = {
    cls.name: cls
    for cls in (
        GlaSImporter,
        CUBImporter,
        CUB5Importer,
        OxfordFlowersImporter,
        PH2Importer,
        BUSIImporter,
        OxfordPetsImporter,
        OxfordPetsSpeciesImporter,
        TinyImageNetImporter,
        ILSVRCImporter,
        WsolEvalCUBImporter,
        OpenImagesImporter,
        FolderImporter,
    )
}


def import_dataset(
    name: str,
    src: Path,
    out: Path,
    *,
    seed: int | None = None,
    copy: bool = False,
    progress: bool = False,
    overwrite: bool = False,
) -> ImportReport:
    """Import dataset ``name`` from its official layout at ``src`` into ``out`` (see :func:`run_import`)."""
    if name not in IMPORTERS:
        raise KeyError(f"unknown dataset {name!r}; expected one of {sorted(IMPORTERS)}")
    importer = IMPORTERS[name](src, seed=seed)
    return run_import(importer, out, copy=copy, progress=progress, overwrite=overwrite)


__all__ = ["IMPORTERS", "ImportReport", "Importer", "SourceLayoutError", "import_dataset", "run_import"]
