"""scripts/demo and scripts/test on a bare machine: python3 only, no ensurepip, no `python`.

The scripts run for real, with BYOM_VENV pointing at a scratch venv and BYOM_SETUP_DRY_RUN=1
where a full install would download hundreds of megabytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
ENGINES_THE_DEMO_MUST_NOT_PULL = ("pyspark", "teradataml", "pypmml")


@pytest.fixture
def bare_path(tmp_path):
    """A PATH whose `python3` is this interpreter and whose `python` fails loudly, as on stock
    Debian/Ubuntu (where `python` does not exist at all). Every script runs with it, so that a
    script which did call `python` fails fast instead of installing into someone's Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    fake = bin_dir / "python"
    fake.write_text("#!/bin/sh\necho 'the scripts must not call python' >&2\nexit 97\n")
    fake.chmod(0o755)
    return f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"


def run_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_demo_script_installs_only_the_demo_extra(tmp_path, bare_path):
    """The demo installs `.[demo]` (DuckDB only), found through python3, never `python`."""
    run = run_script(
        "demo", "--rows", "10",
        PATH=bare_path, BYOM_SETUP_DRY_RUN="1", BYOM_VENV=str(tmp_path / "venv"), PYTHON="",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    installs = [line for line in run.stderr.splitlines() if "pip install" in line]
    assert len(installs) == 1 and f" -e {REPO}[demo] " in installs[0], installs
    assert f"{tmp_path / 'venv'}/bin/python -m byom_cli demo --rows 10" in run.stderr


def test_the_demo_extra_pulls_in_no_other_engine():
    """`.[demo]`, expanded through its `byom[...]` references, names no Spark, Teradata or JVM
    PMML evaluator: on a fresh machine pyspark alone is a 455 MB source build."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _venv
    finally:
        sys.path.remove(str(SCRIPTS))
    extras = _venv.extras_closure({"demo"})
    assert extras == {"demo", "duckdb"}
    requirements = project["dependencies"] + [
        req for extra in extras for req in project["optional-dependencies"][extra]
    ]
    for name in ENGINES_THE_DEMO_MUST_NOT_PULL:
        assert not [req for req in requirements if req.lower().startswith(name)]


def test_test_script_installs_everything_then_lints_and_tests(tmp_path, bare_path):
    run = run_script(
        "test", "-q", "-k", "x",
        PATH=bare_path, BYOM_SETUP_DRY_RUN="1", BYOM_VENV=str(tmp_path / "venv"), PYTHON="",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    python = f"{tmp_path / 'venv'}/bin/python"
    steps = [
        line.split("would run: ", 1)[1] for line in run.stderr.splitlines() if "would run: " in line
    ]
    assert steps[1:] == [
        f"{python} -m ruff check .",
        f"{python} -m ruff format --check .",
        f"{python} -m mypy",
        f"{python} -c from importlinter.cli import lint_imports_command; lint_imports_command()",
        f"{python} -m pytest -q -k x",
    ]
    assert f"-e {REPO}[all,test]" in steps[0]


@pytest.mark.parametrize("name", ["demo", "test"])
def test_scripts_refuse_a_python_older_than_3_10(tmp_path, bare_path, name):
    old = tmp_path / "python3.8"
    old.write_text('#!/bin/sh\necho "3 8"\n')  # what a 3.8 prints for the version probe
    old.chmod(0o755)
    run = run_script(name, PYTHON=str(old), BYOM_VENV=str(tmp_path / "venv"), PATH=bare_path)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"byom setup: error: byom needs Python 3.10 or later but '{old}' is Python 3.8; "
        "set PYTHON=/path/to/python3.10 (or later)"
    )
    assert not (tmp_path / "venv").exists()


def test_scripts_name_a_missing_python(tmp_path, bare_path):
    missing = str(tmp_path / "nope")
    run = run_script("demo", PYTHON=missing, BYOM_VENV=str(tmp_path / "venv"), PATH=bare_path)
    assert run.returncode == 1 and f"'{missing}' not found" in run.stderr


def _bundled_pip_wheel() -> Path:
    """The pip wheel ensurepip would install (Debian keeps it in /usr/share/python-wheels)."""
    places = [
        Path(sysconfig.get_paths()["stdlib"]) / "ensurepip" / "_bundled",
        Path("/usr/share/python-wheels"),
    ]
    wheels = sorted(w for place in places for w in place.glob("pip-*.whl"))
    if not wheels:
        pytest.skip(f"no pip wheel bundled with this Python (looked in {places})")
    return wheels[-1]


def _no_ensurepip(tmp_path: Path) -> str:
    """A PYTHONPATH on which `import ensurepip` fails, as on Debian without python3-venv."""
    fake = tmp_path / "no_ensurepip" / "ensurepip"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('No module named ensurepip (simulated: python3-venv missing)')\n"
    )
    return str(fake.parent)


def _ensure_venv(venv: Path, **env: str) -> subprocess.CompletedProcess:
    code = "import sys, _venv; print(_venv.ensure_venv(_venv.venv_dir()))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=SCRIPTS,
        env={**os.environ, "BYOM_VENV": str(venv), **env},
        timeout=300,
    )


@pytest.mark.slow
def test_venv_without_ensurepip_gets_pip_from_its_wheel(tmp_path):
    """No ensurepip: the venv is made --without-pip and pip is installed from a pip wheel
    (BYOM_PIP_WHEEL here, to stay offline; PyPI's newest otherwise)."""
    venv = tmp_path / "venv"
    made = _ensure_venv(
        venv, PYTHONPATH=_no_ensurepip(tmp_path), BYOM_PIP_WHEEL=str(_bundled_pip_wheel())
    )
    assert made.returncode == 0, made.stderr
    assert "this Python has no ensurepip" in made.stderr
    assert "installing pip into the venv from pip-" in made.stderr
    python = venv / "bin" / "python"
    assert made.stdout.strip() == str(python)
    pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.returncode == 0 and str(venv) in pip.stdout


@pytest.mark.slow
def test_venv_without_ensurepip_downloads_pip_from_pypi(tmp_path):
    """The path a bare Debian/Ubuntu takes: pip's wheel comes from PyPI, checked by sha256."""
    import urllib.request

    try:
        urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"PyPI is not reachable: {exc}")
    venv = tmp_path / "venv"
    made = _ensure_venv(venv, PYTHONPATH=_no_ensurepip(tmp_path), BYOM_PIP_WHEEL="")
    assert made.returncode == 0, made.stderr
    assert "downloading pip's wheel from PyPI" in made.stderr
    assert subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"]).returncode == 0


@pytest.mark.slow
def test_a_current_install_skips_pip(tmp_path, bare_path):
    """A second run costs no pip call: the stamp matches pyproject.toml and the extras, and
    an install of every extra also covers the demo's."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    made = _ensure_venv(venv, BYOM_PIP_WHEEL=str(_bundled_pip_wheel()))  # adds pip
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    sys.path.insert(0, str(SCRIPTS))
    try:
        import _venv
    finally:
        sys.path.remove(str(SCRIPTS))
    stamp = {"key": _venv.install_key(python), "extras": ["all", "test"]}
    (venv / ".byom-install.json").write_text(json.dumps(stamp))
    env = {"PATH": bare_path, "BYOM_VENV": str(venv), "PYTHON": ""}
    for extras in ("all,test", "demo"):
        run = subprocess.run(
            [sys.executable, SCRIPTS / "_venv.py", extras],
            capture_output=True, text=True, env={**os.environ, **env},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == str(python)
        assert run.stderr == "", run.stderr  # nothing created, nothing installed
