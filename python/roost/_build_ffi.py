"""cffi build script: the extension `roost._roost_ffi`, in API out-of-line mode.

The declarations come from the generated `roost.h` itself (never a hand-written copy),
and the C compiler checks them against it. The core is linked statically from
`libroost.a`, so the installed package needs no library path. Both files are staged
in `python/_native/` by the repository's `make` (build.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parent.parent / "_native"
HEADER = NATIVE / "include" / "roost.h"
LIBRARY = NATIVE / "lib" / "libroost.a"


def declarations(header: str) -> str:
    """The header's declarations as cffi's cdef accepts them: no C++ linkage block and
    no preprocessor lines but integer constants (`#define ROOST_VERSION_MAJOR 0`),
    which Python reads as `lib.ROOST_VERSION_MAJOR`. Function-like macros (and their
    continuation lines) are C conveniences; Python passes the sizes itself."""
    header = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*\n", "", header, flags=re.S)
    header = header.replace("\\\n", " ")
    constant = re.compile(r"#define [A-Z][A-Z0-9_]* -?\d+$")
    return "\n".join(
        line for line in header.splitlines() if not line.startswith("#") or constant.match(line)
    )


if not HEADER.exists() or not LIBRARY.exists():
    raise SystemExit(
        f"roost: {HEADER} or {LIBRARY} is missing; run `make` at the repository's root "
        "before `pip install ./python`"
    )

#: Python functions the core calls back (on the calling thread, during the call that
#: takes them): roost_connection_topics's visitor (roost/_topics.py).
CALLBACKS = """
extern "Python" void roost_py_collect_topic(void *context, const uint8_t *topic, size_t topic_len);
"""

ffibuilder = FFI()
ffibuilder.cdef(declarations(HEADER.read_text()) + CALLBACKS)
ffibuilder.set_source(
    "roost._roost_ffi",
    '#include "roost.h"',
    include_dirs=[str(HEADER.parent)],
    extra_objects=[str(LIBRARY)],
    # Relink when the core changes, not only when the generated C source does.
    depends=[str(LIBRARY), str(HEADER)],
    libraries=["pthread", "dl", "m"],
    # Keep the core's own symbols private to the extension.
    extra_link_args=["-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-Wl,--strip-debug"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
