"""Import pyspark (or say which extra installs it), and recover byom errors from Spark's."""

from __future__ import annotations

import re
from types import ModuleType

from byom import errors
from byom.errors import ByomError, EngineNotInstalledError
from byom.java import ensure_java


def import_pyspark() -> ModuleType:
    try:
        import pyspark
    except ImportError:
        raise EngineNotInstalledError("Spark", "spark") from None
    ensure_java()
    return pyspark


#: The last line of a Python worker's traceback, as Spark's PythonException carries it.
_WORKER_ERROR = re.compile(r"^byom\.errors\.(\w+): (.+)$", re.MULTILINE)


def byom_error(exc: BaseException) -> ByomError | None:
    """The byom error a Python worker raised, from the Spark exception that reports it.

    Spark wraps a worker's exception in its own (PythonException, Py4JJavaError) with the whole
    remote traceback as text; this gives callers back the typed error and its message.
    """
    if isinstance(exc, ByomError):
        return exc
    found = _WORKER_ERROR.findall(str(exc))
    if not found:
        return None
    name, message = found[-1]
    cls = getattr(errors, name, ByomError)
    if not (isinstance(cls, type) and issubclass(cls, ByomError)):
        cls = ByomError
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err
