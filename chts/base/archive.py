"""The zipapp this code runs from: install copies it, check and the node installer name it."""

from __future__ import annotations

import os
from typing import Optional


def running_archive() -> Optional[str]:
    """The .pyz this code runs from (the first file among this module's parents); None in a source checkout."""
    path = os.path.abspath(__file__)
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if os.path.isfile(path):
            return path
    return None
