"""What the database's Python can import of byom's needs, installed beside byom_score.py:

    SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_check.py')
    APPLY_COMMAND('python3 byom_check.py --operator apply')

One row per package (the interpreter first): name, version ("missing" when it does not
import), the models that need it, a status (ok, missing, broken, too old) and the one-line fix.
Standard library only: it must run where nothing is installed, which is when it is needed.
`byom teradata check` prints the queries.
"""

from __future__ import annotations

import csv
import platform
import re
import sys

#: (distribution, import name, minimum version, the models that need it). The minimums are
#: pyproject.toml's (a test compares them).
PACKAGES = (
    ("numpy", "numpy", "1.24", "all"),
    ("pyarrow", "pyarrow", "14", "all"),
    ("pandas", "pandas", "2.0", "all"),
    ("scipy", "scipy", "1.11", "all"),
    ("defusedxml", "defusedxml", "0.7", "all"),
    ("onnx", "onnx", "1.15", "ONNX"),
    ("onnxruntime", "onnxruntime", "1.17", "ONNX"),
    ("llvmlite", "llvmlite", "0.45", "fast trees"),  # optional: else the numpy tree path
)
PYTHON_MIN = "3.10"
#: The RETURNS columns, in the order each row is written.
COLUMNS = (
    ("package", "VARCHAR(32)"),
    ("version", "VARCHAR(64)"),
    ("needed_for", "VARCHAR(16)"),
    ("status", "VARCHAR(16)"),
    ("fix", "VARCHAR(512)"),
)


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version (`2.1.0rc1` -> (2, 1, 0)), enough to compare minimums."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group().split(".")) if match else ()


def _fix(dist: str, minimum: str, operator: str) -> str:
    spec = f"{dist}>={minimum}"
    if operator == "apply":
        return f"run `byom teradata deploy --env <env>`, or env.install_lib('{spec}')"
    return f"the DBA runs `pip install '{spec}'` into tdpython3 on every node"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


def check_package(dist: str, module: str, minimum: str, operator: str) -> tuple[str, str, str]:
    """(version, status, fix) of one package, from importing it: an install that cannot be
    imported (a missing shared library) is as good as missing."""
    try:
        mod = __import__(module)
    except ModuleNotFoundError as exc:
        if (exc.name or module).split(".")[0] == module:
            return "missing", "missing", _fix(dist, minimum, operator)
        why = f"needs {exc.name}, which is missing; "  # e.g. pandas without numpy
        return "missing", "broken", why + _fix(dist, minimum, operator)
    except Exception as exc:  # installed but not importable (a shared library is missing)
        why = f"{type(exc).__name__}: {_one_line(str(exc))}; reinstall: "
        return "missing", "broken", why + _fix(dist, minimum, operator)
    version = str(getattr(mod, "__version__", "") or _installed_version(dist))
    if _release(version) < _release(minimum):
        return version, "too old", _fix(dist, minimum, operator)
    return version, "ok", ""


def _installed_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "unknown"


def rows(operator: str = "script") -> list[tuple[str, str, str, str, str]]:
    """The interpreter's row, then one row per package."""
    python = platform.python_version()
    ok = _release(python) >= _release(PYTHON_MIN)
    fix = "" if ok else f"byom needs Python {PYTHON_MIN} or later"
    out = [("python", python, "all", "ok" if ok else "too old", fix)]
    for dist, module, minimum, needed_for in PACKAGES:
        version, status, fix = check_package(dist, module, minimum, operator)
        out.append((dist, version, needed_for, status, fix))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    operator = args[args.index("--operator") + 1] if "--operator" in args else "script"
    if not sys.stdin.isatty():  # the ON query's rows, if any: read them all, use none
        sys.stdin.buffer.read()
    # SCRIPT reads tab-separated text, APPLY's CSV style RFC 4180 with commas.
    delimiter = "," if operator == "apply" else "\t"
    writer = csv.writer(sys.stdout, delimiter=delimiter, lineterminator="\n")
    writer.writerows(rows(operator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
