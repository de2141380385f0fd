"""Real photos shipped with the package, for trying ImageNet-pretrained localization with no data set.

Both come from scikit-image's sample data and are CC0: ``chelsea`` (a cat, photo by Stefan van der Walt;
ImageNet classes 281–285) and ``coffee`` (a cup of espresso, photo by Rachel Michetti; ImageNet 967),
re-encoded as JPEG (quality 90).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_PHOTOS = ("chelsea", "coffee")


def sample_photo(name: str) -> Path:
    """Path of the shipped photo ``name`` (one of :data:`SAMPLE_PHOTOS`)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"unknown sample photo {name!r}; expected one of {list(SAMPLE_PHOTOS)}")
    return Path(str(resources.files("wsol.data").joinpath("samples", f"{name}.jpg")))
