"""cffi (API, out-of-line mode) build of the edgeq C sources for the host.

The very same files under firmware/ are compiled into the microcontroller firmware; host/ only
adds host glue (CPU-feature dispatch of SIMD kernel variants). The declarations exposed to Python
are generated from the real public headers (PUBLIC_HEADERS) at build time by cdef_from_headers():
the C preprocessor expands them (system headers replaced by empty stand-ins, so only our own
declarations come out), then what cffi cannot parse is stripped: `static inline` bodies and
attributes; integer `#define EQ_*` constants are kept. There is no hand copy to drift.

    python host/build_cffi.py      # rebuild edgeq/_native*.so in place (development)
    pip install -e .               # does the same through setuptools
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

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


INCLUDE = [os.path.join(ROOT, d) for d in ("firmware/include", "firmware/kernels", "firmware/runtime", "host")]
# what Python may call: every prototype, type and integer EQ_* constant these headers declare
PUBLIC_HEADERS = ("eq_kernels.h", "eq_conv_fast.h", "eq_runtime.h", "eq_host.h", "eq_host_exec.h")
SYSTEM_HEADERS = ("stdint.h", "stddef.h", "stdbool.h", "string.h", "limits.h")  # cffi knows their types
_INT_DEFINE = re.compile(r"^#define (EQ_[A-Z0-9_]+) \(?(-?(?:0x[0-9a-fA-F]+|[0-9]+))[uUlL]*\)?\s*$")


def _strip_static_inline(text: str) -> str:
    """Drop every `static inline` function (its body: braces matched) from preprocessed C."""
    out, i = [], 0
    while True:
        j = text.find("static inline", i)
        if j < 0:
            return "".join(out) + text[i:]
        out.append(text[i:j])
        k = text.index("{", j)
        depth = 0
        while True:
            ch = text[k]
            depth += ch == "{"
            depth -= ch == "}"
            k += 1
            if depth == 0:
                break
        i = k


def cdef_from_headers(cc: str | None = None) -> str:
    """The cffi declarations of PUBLIC_HEADERS: `cc -E -P -dD` over them, system headers replaced
    by empty files, then static inline bodies and attributes stripped, defines kept when they are
    integer EQ_* constants. Raises RuntimeError naming the compiler when preprocessing fails."""
    cc = cc or os.environ.get("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        for h in SYSTEM_HEADERS:
            open(os.path.join(tmp, h), "w").close()
        cmd = shlex.split(cc) + ["-E", "-P", "-dD", "-nostdinc", "-D__attribute__(x)=", f"-I{tmp}"]
        cmd += [f"-I{d}" for d in INCLUDE] + ["-"]
        src = "".join(f'#include "{h}"\n' for h in PUBLIC_HEADERS)
        try:
            r = subprocess.run(cmd, input=src, capture_output=True, text=True, check=False)
        except OSError as e:
            raise RuntimeError(f"cannot run the C preprocessor {cc!r} ({e}): install a C compiler "
                               "or set CC") from e
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr.strip()}")
    lines = []
    for line in r.stdout.splitlines():
        if line.startswith("#"):
            m = _INT_DEFINE.match(line)
            if m:
                lines.append(f"#define {m.group(1)} {int(m.group(2), 0)}")
            continue
        if line.strip():
            lines.append(line)
    return re.sub(r"\n\s*\n+", "\n", _strip_static_inline("\n".join(lines))).strip() + "\n"


def make_builder(absolute: bool = False) -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_from_headers())
    ffi.set_source(
        "edgeq._native",
        '#include "eq_kernels.h"\n#include "eq_conv_fast.h"\n#include "eq_runtime.h"\n#include "eq_host.h"\n'
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
