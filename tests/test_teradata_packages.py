"""byom_score.py in a database Python that lacks one of byom's packages (issue 16).

`tdpython3` holds only what its administrator installed. Each test runs the script as a
process with PYTHONPATH putting a stand-in package first: one that raises what Python raises
when the package is absent, or a broken install's ImportError. The script must name the
package and the fix in one line on stderr and exit 1; a PMML model must not need onnxruntime.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import IRIS_FEATURES, LINEAR_PMML, linear_pmml_expected
from teradata_server import LAUNCHER, REPO
from test_teradata_hardening import one_line_error, pmml_rows, read_output

ABSENT = "raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n"
BROKEN = "raise ImportError('libfoo.so.1: cannot open shared object file')\n"


def shadow(root: Path, name: str, body: str) -> Path:
    """A package `name` under `root` whose import raises, found before the real one."""
    pkg = root / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(body.format(name=name))
    return root


def launch(args: list[str], stdin: bytes, shadows: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shadows), str(REPO)])
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def pmml_call(tmp_path: Path) -> tuple[list[str], bytes, np.ndarray]:
    """A PMML scoring call: its arguments, its stdin and the model's expected values."""
    model = tmp_path / "lin.pmml"
    model.write_bytes(LINEAR_PMML)
    rows = pmml_rows(30)
    lines = [
        f"{r}\t{x!r}\t{'' if z is None else repr(z)}\t{c}\n"
        for r, x, z, c in zip(*(rows[c].to_pylist() for c in rows.column_names), strict=True)
    ]
    args = ["--columns", "_row BIGINT, x FLOAT, z FLOAT, color VARCHAR(5)", "--model-id", "lin"]
    args += ["--model-file", f"lin={model}", "--accumulate", "_row", "--outputs", "score"]
    z = rows["z"].to_numpy(zero_copy_only=False)
    want = linear_pmml_expected(rows["x"].to_numpy(), z, rows["color"].to_pylist())
    return args, "".join(lines).encode(), want


def onnx_call(tmp_path: Path, blob: bytes) -> tuple[list[str], bytes]:
    model = tmp_path / "iris.onnx"
    model.write_bytes(blob)
    columns = ", ".join(f"{c} FLOAT" for c in IRIS_FEATURES)
    args = ["--columns", columns, "--model-id", "iris", "--model-file", f"iris={model}"]
    return [*args, "--inputs", ",".join(IRIS_FEATURES)], b"5.1\t3.5\t1.4\t0.2\n"


@pytest.mark.parametrize("package", ["numpy", "pyarrow", "pandas", "defusedxml"])
def test_missing_package_is_named_in_one_line(tmp_path, package):
    args, stdin, _ = pmml_call(tmp_path)
    proc = launch(args, stdin, shadow(tmp_path / "site", package, ABSENT))
    err = one_line_error(proc)
    assert f"has no {package};" in err
    assert f"`pip install {package}` into tdpython3" in err
    assert proc.stdout == b""


@pytest.mark.parametrize("package", ["onnxruntime", "onnx"])
def test_onnx_model_names_missing_onnxruntime(tmp_path, iris_logreg, package):
    args, stdin = onnx_call(tmp_path, iris_logreg[1])
    err = one_line_error(launch(args, stdin, shadow(tmp_path / "site", package, ABSENT)))
    assert f"has no {package};" in err and f"`pip install {package}`" in err


def test_broken_install_is_named_with_its_reason(tmp_path):
    args, stdin, _ = pmml_call(tmp_path)
    err = one_line_error(launch(args, stdin, shadow(tmp_path / "site", "pyarrow", BROKEN)))
    assert "cannot import pyarrow (libfoo.so.1: cannot open shared object file)" in err
    assert "`pip install --force-reinstall pyarrow`" in err


def test_pmml_scores_without_onnx_or_onnxruntime(tmp_path):
    """Both ONNX packages absent: a PMML call scores as the model's own arithmetic says."""
    args, stdin, want = pmml_call(tmp_path)
    site = shadow(tmp_path / "site", "onnxruntime", ABSENT)
    shadow(site, "onnx", ABSENT)
    proc = launch(args, stdin, site)
    assert proc.returncode == 0, proc.stderr.decode()
    out = read_output(proc.stdout, ["_row", "score"])
    assert out["_row"].to_pylist() == [str(i) for i in range(30)]
    got = np.array([float(v) for v in out["score"].to_pylist()])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_missing_core_zip_says_to_deploy():
    from udfs.teradata.byom_score import missing_package

    exc = ModuleNotFoundError("No module named 'udfs'", name="udfs")
    line = missing_package(exc)
    assert "byom_core.zip must be installed beside byom_score.py" in line
    assert "byom teradata deploy" in line
