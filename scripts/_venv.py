"""Create the project's virtual environment and install byom into it, for scripts/demo and test.

Run by the system `python3` (stdlib only), so the README's two commands work on a machine that
has nothing else: pip refuses the system Python (PEP 668), and Debian/Ubuntu ship `venv` without
`ensurepip` unless `python3-venv` is installed, in which case pip is bootstrapped from its wheel
on PyPI. A stamp file in the venv, keyed on pyproject.toml, makes a re-run skip pip entirely.

Usage: python3 scripts/_venv.py EXTRAS   (e.g. `demo` or `all,test`); prints the venv's python.
Environment: BYOM_VENV (venv folder, default .venv in the repo), BYOM_PIP_WHEEL (a local pip
wheel instead of PyPI's), BYOM_SETUP_DRY_RUN=1 (say what would happen, change nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPI_PIP = "https://pypi.org/pypi/pip/json"


class SetupError(Exception):
    """A setup step failed; the message says what to install or run."""


def say(message: str) -> None:
    print(f"byom setup: {message}", file=sys.stderr, flush=True)


def venv_dir() -> Path:
    return Path(os.environ.get("BYOM_VENV") or REPO / ".venv").absolute()


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def runs(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True).returncode == 0
    except OSError:
        return False


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv (and its pip) when it is missing or broken."""
    python = venv_python(venv)
    version_ok = "import sys; sys.exit(sys.version_info < (3, 10))"
    if python.exists() and runs([str(python), "-c", version_ok]):
        if not runs([str(python), "-m", "pip", "--version"]):
            bootstrap_pip(python)  # e.g. a venv left half-made by a failed `python3 -m venv`
        return python
    if venv.exists():
        say(f"{venv} exists but its python does not run (moved, or Python upgraded): recreating")
    say(f"creating the virtual environment {venv} with {sys.executable} ({platform_version()})")
    if runs([sys.executable, "-c", "import ensurepip"]):
        made = subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True
        )
        if made.returncode == 0:
            return python
        last = ((made.stdout + made.stderr).strip().splitlines() or ["no message"])[-1]
        say(f"`python -m venv` failed ({last}); retrying without pip")
    else:
        say(
            "this Python has no ensurepip (on Debian/Ubuntu the python3-venv package is not "
            "installed): creating the venv without pip, then installing pip from its wheel"
        )
    plain = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
    )
    if plain.returncode != 0:
        raise SetupError(
            f"cannot create a virtual environment with {sys.executable}: "
            f"{(plain.stdout + plain.stderr).strip()}\n"
            "install your system's venv package (Debian/Ubuntu: `sudo apt install "
            "python3-venv`) or point PYTHON at another Python 3.10+"
        )
    bootstrap_pip(python)
    return python


def platform_version() -> str:
    return "Python " + ".".join(map(str, sys.version_info[:3]))


def bootstrap_pip(python: Path) -> None:
    """Install pip into a venv that has none, from its wheel (pip runs from its own wheel)."""
    with tempfile.TemporaryDirectory(prefix="byom_pip_") as tmp:
        wheel = os.environ.get("BYOM_PIP_WHEEL") or download_pip_wheel(Path(tmp))
        say(f"installing pip into the venv from {Path(wheel).name}")
        done = subprocess.run(
            [str(python), f"{wheel}/pip", "install", "--quiet", "--no-index", str(wheel)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SetupError(
                f"installing pip from {wheel} failed: {(done.stdout + done.stderr).strip()}\n"
                "install python3-venv (Debian/Ubuntu: `sudo apt install python3-venv`) and rerun"
            )


def download_pip_wheel(folder: Path) -> str:
    """The newest pip wheel from PyPI, checked against the sha256 PyPI publishes."""
    say(f"downloading pip's wheel from PyPI ({PYPI_PIP})")
    try:
        with urllib.request.urlopen(PYPI_PIP, timeout=60) as response:
            release = json.load(response)
            base = response.geturl()
        files = [u for u in release["urls"] if u["packagetype"] == "bdist_wheel"]
        if not files:
            raise SetupError("PyPI lists no wheel for pip's latest release")
        # A mirror may answer with URLs relative to the JSON document.
        url = urllib.parse.urljoin(base, files[0]["url"])
        digest = files[0]["digests"]["sha256"]
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except (OSError, ValueError, KeyError) as exc:
        raise SetupError(
            f"cannot download pip from PyPI ({exc}); without network access, install "
            "python3-venv (Debian/Ubuntu: `sudo apt install python3-venv`) or set "
            "BYOM_PIP_WHEEL to a pip wheel file"
        ) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise SetupError(f"the pip wheel downloaded from {url} does not match PyPI's sha256")
    path = folder / url.rsplit("/", 1)[-1]
    path.write_bytes(data)
    return str(path)


def extras_closure(extras: set[str]) -> set[str]:
    """The extras, plus those they pull in through `byom[...]` (tomllib: Python 3.11+)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: no expansion, at worst pip runs once more
        return set(extras)
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional.get(extra, []):
            if req.startswith("byom["):
                todo.extend(e.strip() for e in req[5:].split("]")[0].split(","))
    return seen


def install_key(python: Path) -> str:
    """What an install depends on: pyproject.toml, the checkout's path and the venv's python."""
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(f"{REPO}\0{python.resolve()}".encode())
    return digest.hexdigest()


def stamp_path(venv: Path) -> Path:
    return venv / ".byom-install.json"


def installed_extras(venv: Path, key: str) -> set[str]:
    try:
        stamp = json.loads(stamp_path(venv).read_text())
    except (OSError, ValueError):
        return set()
    return set(stamp.get("extras", [])) if stamp.get("key") == key else set()


def pip_command(python: Path, extras: str) -> list[str]:
    return [
        str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-e", f"{REPO}[{extras}]",
    ]  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    extras = argv[0]
    wanted = {e.strip() for e in extras.split(",") if e.strip()}
    venv = venv_dir()
    python = venv_python(venv)
    if os.environ.get("BYOM_SETUP_DRY_RUN") == "1":
        say(f"would use the virtual environment {venv} (created by {sys.executable})")
        say("would run: " + " ".join(pip_command(python, extras)) + " (unless already current)")
        print(python)
        return 0
    try:
        python = ensure_venv(venv)
        key = install_key(python)
        have = installed_extras(venv, key)
        if not wanted <= extras_closure(have):
            say(f"installing byom[{extras}] into {venv} (the first run downloads packages)")
            done = subprocess.run(pip_command(python, extras))
            if done.returncode != 0:
                raise SetupError(f"pip could not install byom[{extras}] (see pip's output above)")
            stamp_path(venv).write_text(json.dumps({"key": key, "extras": sorted(have | wanted)}))
    except SetupError as exc:
        say(f"error: {exc}")
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
