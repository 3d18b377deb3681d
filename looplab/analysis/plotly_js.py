"""plotly.js written once beside the run folders, and the relative path a page loads it by.

Light to import (plotly itself is imported only to write the file), so that commands which copy run
folders (the Hub's push and pull) need no plotting library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from looplab import io


def library_dir(paths: Any) -> Path:
    """Where the pages of a run find plotly.js: the folder holding the run folder (the data folder)."""
    return paths.root.parent


def plotly_src(page: Path, lib_dir: Path) -> str:
    """The relative path from `page` to plotly.js in `lib_dir`, written there first if it is missing."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    lib = Path(lib_dir) / f"plotly-{get_plotlyjs_version()}.min.js"
    if not lib.exists():
        io.write_text(lib, get_plotlyjs())
    return Path(os.path.relpath(lib, Path(page).parent)).as_posix()


def missing_plotly_note(src: str) -> str:
    """A line shown on a page whose plotly.js is not where it points (a run folder moved on its own)."""
    return (f"<script>if (!window.Plotly) document.body.insertAdjacentHTML('afterbegin', '<p style=\"color:#d62728\">"
            f"plotly.js not found at {src}: <code>looplab report RUN_DIR</code> writes it beside the run folder.</p>');"
            "</script>")
