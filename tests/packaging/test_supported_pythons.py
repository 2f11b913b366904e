"""The Python versions the package declares: an older Python is refused at install time
with a message naming the Python required, and the declaration is consistent (the
oldest classifier is the `requires-python` floor, and the classifiers, which are the
versions `make test-python` tests, have no gap).

Needs the core staged by `make` (pip prepares the package's metadata, which runs the
cffi build script, before it checks the Python version).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pythons  # tests/pythons.py


def minor(version: str) -> tuple[int, int]:
    major, minor_ = version.split(".")
    return int(major), int(minor_)


def test_the_classifiers_start_at_the_floor_and_have_no_gap() -> None:
    versions = pythons.declared()
    assert versions, "python/pyproject.toml declares no Python 3.X classifier"
    assert pythons.requires_python() == f">={versions[0]}"
    first = minor(versions[0])
    assert [minor(v) for v in versions] == [(3, first[1] + i) for i in range(len(versions))]


def test_an_older_python_is_refused_at_install_time() -> None:
    floor = minor(pythons.declared()[0])
    older = f"{floor[0]}.{floor[1] - 1}"
    # A missing interpreter fails the test: skipping would leave the refusal unchecked.
    try:
        python = pythons.find(older)
    except pythons.NoInterpreter as missing:
        pytest.fail(str(missing))
    # pip refuses the package in the resolution step of an install, before it fetches
    # dependencies or builds anything, with the same message with these options as
    # without (measured: 4.5-6 s either way, most of it pip making the build
    # environment). --dry-run keeps a regression from installing the package into
    # that interpreter, --no-deps keeps pip from fetching the dependencies first.
    done = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--disable-pip-version-check",
            str(pythons.ROOT / "python"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "requires a different Python" in output, output
    assert f"not in '>={pythons.declared()[0]}'" in output, output
