#!/usr/bin/env python3
"""The Python versions the package declares, their interpreters, and a test environment
for each (used by `make test-python` and tests/packaging).

    python3 tests/pythons.py declared   the minor versions that python/pyproject.toml
                                        declares in its trove classifiers, one line
    python3 tests/pythons.py find X.Y   the path of an interpreter of Python X.Y
    python3 tests/pythons.py env X.Y    the path of a Python X.Y into which the package
                                        and tests/requirements.txt were just installed

An interpreter is the running python3 when it is X.Y, else pyenv's newest X.Y.N, else
`pythonX.Y` on PATH. The running python3's own version is tested in python3 itself
(where `make python` installs the package); every other version in a virtualenv,
build/venv-X.Y. A version with no interpreter is an error, never a skip: the package
would then claim a Python that nothing tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "python" / "pyproject.toml"
REQUIREMENTS = ROOT / "tests" / "requirements.txt"
CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)$")
PIP = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check")


class NoInterpreter(Exception):
    pass


def declared() -> list[str]:
    """The minor versions of the classifiers, oldest first."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [m.group(1) for c in project.get("classifiers", []) if (m := CLASSIFIER.match(c))]
    return sorted(found, key=lambda v: tuple(map(int, v.split("."))))


def requires_python() -> str:
    return str(tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"])


def _version_of(python: str) -> str | None:
    """X.Y of an interpreter, or None when it does not run (a pyenv shim of a version
    that is installed but not selected fails like this)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find(version: str) -> str:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    patches = []
    if pyenv.is_dir():
        for entry in pyenv.iterdir():
            m = re.fullmatch(re.escape(version) + r"\.(\d+)", entry.name)
            if m and (entry / "bin" / f"python{version}").exists():
                patches.append((int(m.group(1)), entry / "bin" / f"python{version}"))
    candidates = [str(path) for _, path in sorted(patches, reverse=True)]
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for python in candidates:
        if _version_of(python) == version:
            return python
    raise NoInterpreter(
        f"no Python {version} interpreter: looked for {pyenv}/{version}.*/bin/python{version} "
        f"and python{version} on PATH. Install one (e.g. `pyenv install {version}`)"
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _venv_matches(venv: Path, python: str) -> bool:
    """Whether `venv` exists, runs, and was made from `python` (a venv made from an
    interpreter since removed or replaced by another patch release is made anew)."""
    cfg = venv / "pyvenv.cfg"
    if not cfg.exists():
        return False
    home = next(
        (
            line.split("=", 1)[1].strip()
            for line in cfg.read_text().splitlines()
            if line.split("=", 1)[0].strip() == "home"
        ),
        None,
    )
    if home is None or Path(home).resolve() != Path(python).resolve().parent:
        return False
    return _version_of(str(venv / "bin" / "python")) is not None


def env(version: str) -> str:
    python = find(version)
    if python == sys.executable:
        target = python
        _log(f"Python {version}: {python}")
    else:
        venv = ROOT / "build" / f"venv-{version}"
        if not _venv_matches(venv, python):
            _log(f"Python {version}: making {venv.relative_to(ROOT)} from {python}")
            subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        target = str(venv / "bin" / "python")
        _log(f"Python {version}: {venv.relative_to(ROOT)}")
    # Always reinstalled: pip rebuilds the extension from the current tree and libroost.a.
    subprocess.run(
        [target, *PIP, str(ROOT / "python"), "-r", str(REQUIREMENTS)], check=True, cwd=ROOT
    )
    return target


def main(argv: list[str]) -> int:
    if len(argv) == 1 and argv[0] == "declared":
        print(" ".join(declared()))
        return 0
    if len(argv) == 2 and argv[0] in ("find", "env"):
        try:
            print(find(argv[1]) if argv[0] == "find" else env(argv[1]))
        except NoInterpreter as missing:
            _log(f"pythons.py: {missing}")
            if argv[0] == "env":
                _log(
                    f"(make test-python tests every declared version: {' '.join(declared())}; "
                    "PYTHONS=... names others)"
                )
            return 1
        except subprocess.CalledProcessError as failed:
            _log(f"pythons.py: {' '.join(map(str, failed.cmd))} failed ({failed.returncode})")
            return 1
        return 0
    _log(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
