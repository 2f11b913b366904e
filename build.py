#!/usr/bin/env python3
"""Builds Roost's core and stages it for its consumers.

    python3 build.py                  build the core (cargo, release), refresh
                                      rust-core/include/roost.h (cbindgen), stage the
                                      library and header in build/ and python/_native/
    python3 build.py check-header     fail if the committed header is stale
    python3 build.py install PREFIX   install libroost.so, libroost.a, roost.h and
                                      roost.pc under PREFIX

cbindgen is pinned; when the pinned version is missing it is installed with cargo.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CORE = ROOT / "rust-core"
HEADER = CORE / "include" / "roost.h"
STAGE = ROOT / "build"
# The Python package builds its cffi extension from these (pip builds in place).
PYTHON_STAGE = ROOT / "python" / "_native"
CBINDGEN_VERSION = "0.29.4"
LIBRARIES = ("libroost.so", "libroost.a")


def run(*cmd: str | Path, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True)


def cbindgen() -> str:
    """Path of the pinned cbindgen, installing it when absent or of another version."""
    found = shutil.which("cbindgen")
    if found:
        out = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
        if out.split()[-1:] == [CBINDGEN_VERSION]:
            return found
    run("cargo", "install", "cbindgen", "--version", CBINDGEN_VERSION, "--locked")
    return str(Path.home() / ".cargo" / "bin" / "cbindgen")


def generate_header(target: Path) -> None:
    run(
        cbindgen(),
        "--quiet",
        "--config",
        "cbindgen.toml",
        "--crate",
        "roost-core",
        "--output",
        target,
        cwd=CORE,
    )


def build() -> None:
    run("cargo", "build", "--release", "--locked", cwd=CORE)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "roost.h"
        generate_header(fresh)
        if not HEADER.exists() or not filecmp.cmp(fresh, HEADER, shallow=False):
            shutil.copyfile(fresh, HEADER)
            print("refreshed", HEADER.relative_to(ROOT))
    for stage in (STAGE, PYTHON_STAGE):
        (stage / "lib").mkdir(parents=True, exist_ok=True)
        (stage / "include").mkdir(parents=True, exist_ok=True)
        for name in LIBRARIES:
            shutil.copyfile(CORE / "target" / "release" / name, stage / "lib" / name)
        shutil.copyfile(HEADER, stage / "include" / "roost.h")


def check_header() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "roost.h"
        generate_header(fresh)
        if filecmp.cmp(fresh, HEADER, shallow=False):
            print("roost.h is up to date")
            return 0
    print("rust-core/include/roost.h is stale: run `make` and commit it", file=sys.stderr)
    return 1


def install(prefix: Path) -> None:
    build()
    lib, include, pkgconfig = prefix / "lib", prefix / "include", prefix / "lib" / "pkgconfig"
    for d in (lib, include, pkgconfig):
        d.mkdir(parents=True, exist_ok=True)
    for name in LIBRARIES:
        shutil.copyfile(STAGE / "lib" / name, lib / name)
    shutil.copyfile(HEADER, include / "roost.h")
    version = (
        subprocess.run(["cargo", "pkgid"], cwd=CORE, capture_output=True, text=True, check=True)
        .stdout.strip()
        .rsplit("@", 1)[-1]
        .rsplit("#", 1)[-1]
    )
    (pkgconfig / "roost.pc").write_text(
        f"prefix={prefix}\n"
        "libdir=${prefix}/lib\n"
        "includedir=${prefix}/include\n\n"
        "Name: roost\n"
        "Description: WebSocket server library\n"
        f"Version: {version}\n"
        "Libs: -L${libdir} -lroost\n"
        "Libs.private: -lpthread -ldl -lm\n"
        "Cflags: -I${includedir}\n"
    )
    print("installed into", prefix)


def main(argv: list[str]) -> int:
    if not argv:
        build()
        return 0
    if argv == ["check-header"]:
        return check_header()
    if len(argv) == 2 and argv[0] == "install":
        install(Path(argv[1]).resolve())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
