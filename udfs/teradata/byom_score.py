"""SCRIPT entry point, installed in Teradata beside byom_core.zip:

    SCRIPT_COMMAND('tdpython3 ./mydb/byom_score.py --columns ... --model-id ...')

It puts the core (the zip installed next to it) on sys.path and runs udfs.teradata.script.
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_core = os.path.join(_here, "byom_core.zip")
if os.path.exists(_core):
    sys.path.insert(0, _core)

from udfs.teradata.script import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
