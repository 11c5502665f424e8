"""cffi (API, out-of-line mode) build of the edgeq C sources for the host.

The very same files under firmware/ are compiled into the microcontroller firmware; host/ only
adds host glue (CPU-feature dispatch of SIMD kernel variants). Declarations exposed to Python are
the plain-C prototypes in host/cdef_*.h (cffi cannot parse the preprocessor-heavy headers).

    python host/build_cffi.py      # rebuild edgeq/_native*.so in place (development)
    pip install -e .               # does the same through setuptools
"""

from __future__ import annotations

import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _sources(absolute: bool) -> list:
    found = sorted(
        glob.glob(os.path.join(ROOT, "firmware", "kernels", "*.c"))
        + glob.glob(os.path.join(ROOT, "firmware", "runtime", "*.c"))
        + glob.glob(os.path.join(ROOT, "host", "*.c"))
    )
    # setuptools insists on paths relative to the project; compile() runs in a temporary folder
    return found if absolute else [os.path.relpath(p, ROOT) for p in found]


CDEF = "\n".join(open(p).read() for p in sorted(glob.glob(os.path.join(HERE, "cdef_*.h"))))
INCLUDE = [os.path.join(ROOT, d) for d in ("firmware/include", "firmware/kernels", "firmware/runtime", "host")]


def make_builder(absolute: bool = False) -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        "edgeq._native",
        '#include "eq_kernels.h"\n#include "eq_runtime.h"\n#include "eq_host.h"\n'
        '#include "eq_host_exec.h"\n',
        sources=_sources(absolute),
        include_dirs=INCLUDE,
        extra_compile_args=["-O3", "-std=c99", "-fno-strict-aliasing", "-ffp-contract=off",
                            "-pthread"],
        extra_link_args=["-pthread"],
    )
    return ffi


ffibuilder = make_builder()

if __name__ == "__main__":
    os.chdir(ROOT)
    import shutil

    tmp = os.path.join(ROOT, "build", f"cffi-{os.getpid()}")  # private dir: parallel builds are safe
    out = make_builder(absolute=True).compile(tmpdir=tmp, verbose="-v" in sys.argv)
    dst = os.path.join(ROOT, "edgeq", os.path.basename(out))
    shutil.copy2(out, dst + ".tmp")
    os.replace(dst + ".tmp", dst)  # atomic: a concurrent import never sees half a file
    for other in glob.glob(os.path.join(ROOT, "edgeq", "_native*.so")):
        if os.path.abspath(other) != os.path.abspath(dst):
            os.remove(other)  # a stale build with another suffix would shadow this one
    shutil.rmtree(tmp, ignore_errors=True)
    print(dst)
