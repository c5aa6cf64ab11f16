"""SCRIPT and APPLY entry point, installed in Teradata beside byom_core.zip:

    SCRIPT_COMMAND('tdpython3 ./mydb/byom_score.py --columns ... --model-id ...')

It puts the core (the zip installed next to it) on sys.path and runs udfs.teradata.script.
Only the standard library is imported here, so a package missing from the database's Python
is named in one line on stderr (the AMP's script log) instead of a traceback on every AMP.
"""

from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_core = os.path.join(_here, "byom_core.zip")
if os.path.exists(_core):
    sys.path.insert(0, _core)

#: Import names whose pip package is called something else.
_PIP_NAMES = {"google": "protobuf", "yaml": "pyyaml", "sklearn": "scikit-learn"}
_OWN = ("byom", "udfs", "__main__", "importlib", "byom_score")


def _failing_module(exc: ImportError) -> str | None:
    """The package an ImportError came from: the name Python could not find, else the first
    module outside byom whose code raised it (a broken install raises from its __init__)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name
    tb = exc.__traceback__
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name and name.split(".")[0] not in _OWN and not name.startswith("_frozen"):
            return name
        tb = tb.tb_next
    return exc.name


def missing_package(exc: ImportError) -> str:
    """One line naming the package the database's Python lacks and how to get it."""
    module = _failing_module(exc)
    top = (module or "").split(".")[0]
    if top in ("byom", "udfs"):
        return (
            f"byom_score.py: cannot import {module} ({exc}); byom_core.zip must be installed "
            "beside byom_score.py: rerun `byom teradata deploy` and its CALLs"
        )
    if not top:
        return (
            f"byom_score.py: an import failed ({exc}); ask the administrator to install "
            "byom's requirements into tdpython3"
        )
    package = _PIP_NAMES.get(top, top)
    found = isinstance(exc, ModuleNotFoundError) and exc.name == top  # not a broken install
    what = f"has no {package}" if found else f"cannot import {package} ({exc})"
    fix = f"pip install {package}" if found else f"pip install --force-reinstall {package}"
    return (
        f"byom_score.py: the database's Python {what}; ask the administrator to `{fix}` "
        "into tdpython3 (or install byom's requirements)"
    ).replace("\n", " ")


def _run() -> int:
    try:
        from udfs.teradata.script import main

        return main()
    except ImportError as exc:  # at start-up, or a format's lazy import (onnxruntime)
        sys.stdout.flush()
        print(missing_package(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_run())
