"""Importers from the official layouts of real datasets into the library's format (``wsol data import``).

``IMPORTERS`` maps each importer's name to its class; :func:`import_dataset` runs one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wsol.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from wsol.data.importers.base import Importer, ImportReport

IMPORTERS: Registry[type[Importer]] = Registry(
    "dataset",
    {
        "glas": "wsol.data.importers.glas:GlaSImporter",
        "cub": "wsol.data.importers.cub:CUBImporter",
        "cub5": "wsol.data.importers.cub:CUB5Importer",
        "oxford_flowers": "wsol.data.importers.oxford_flowers:OxfordFlowersImporter",
        "ph2": "wsol.data.importers.ph2:PH2Importer",
        "busi": "wsol.data.importers.busi:BUSIImporter",
        "oxford_pets": "wsol.data.importers.oxford_pets:OxfordPetsImporter",
        "oxford_pets_species": "wsol.data.importers.oxford_pets:OxfordPetsSpeciesImporter",
        "tiny_imagenet": "wsol.data.importers.tiny_imagenet:TinyImageNetImporter",
        "ilsvrc": "wsol.data.importers.wsolevaluation:ILSVRCImporter",
        "cub_wsolevaluation": "wsol.data.importers.wsolevaluation:WsolEvalCUBImporter",
        "openimages": "wsol.data.importers.wsolevaluation:OpenImagesImporter",
        "folder": "wsol.data.importers.folder:FolderImporter",
    },
)
"""Importer name (the class's ``name``) -> class, loaded on lookup (``wsol.registry``)."""


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
    from wsol.data.importers.base import run_import

    importer = IMPORTERS[name](src, seed=seed)
    return run_import(importer, out, copy=copy, progress=progress, overwrite=overwrite)


_BASE_EXPORTS = ("ImportReport", "Importer", "SourceLayoutError", "run_import")
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(_BASE_EXPORTS, "wsol.data.importers.base"))
__all__ = ["IMPORTERS", "import_dataset", *_BASE_EXPORTS]
