"""The cffi declarations come from the real C headers (host/build_cffi.py:cdef_from_headers), so
Python's view of every struct, prototype and constant cannot drift from what the C compiles."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def build_cffi():
    spec = importlib.util.spec_from_file_location("build_cffi_under_test", ROOT / "host" / "build_cffi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _header_prototypes(build_cffi) -> set:
    """Names of the non-static functions the public headers declare, read from the header text."""
    names = set()
    for h in build_cffi.PUBLIC_HEADERS:
        path = next(Path(d) / h for d in build_cffi.INCLUDE if (Path(d) / h).exists())
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        text = re.sub(r"static inline[^{]*\{.*?\n\}", "", text, flags=re.S)
        names |= set(re.findall(r"^[A-Za-z_][\w \*]*?\b(eq_\w+)\s*\(", text, flags=re.M))
    return {n for n in names if not n.endswith("_t")}  # a type in a function-pointer declaration


def test_no_hand_written_cdef_files():
    assert not list((ROOT / "host").glob("cdef_*.h")), "cffi declarations are generated from the headers"


def test_generated_cdef_parses_and_declares_every_prototype(build_cffi):
    cdef = build_cffi.cdef_from_headers()
    ffi = FFI()
    ffi.cdef(cdef)  # cffi accepts what the generator leaves
    assert "static" not in cdef and "__attribute__" not in cdef and "#include" not in cdef
    protos = _header_prototypes(build_cffi)
    assert {"eq_model_load", "eq_model_run", "eq_conv2d_row", "eq_host_run_batch_ex"} <= protos
    missing = [n for n in sorted(protos) if not re.search(rf"\b{n}\s*\(", cdef)]
    assert not missing, f"prototypes the generated cdef lacks: {missing}"
    assert ffi.sizeof("eq_conv_shape_t") > 0 and ffi.typeof("eq_model_t *")
    # the spec's constants come through as integers
    for name in ("EQ_INPUT_PIXELS", "EQ_INPUT_WIRE", "EQ_ERR_INPUT", "EQ_ENC_KBIT"):
        assert re.search(rf"^#define {name} -?\d+$", cdef, flags=re.M), name


def test_built_module_matches_the_headers(build_cffi):
    """The compiled edgeq._native exposes every function the headers declare (fails when a header
    gained a prototype and the module was not rebuilt: run `python host/build_cffi.py`)."""
    from edgeq import _native

    from edgeq import spec

    lib_names = set(dir(_native.lib))
    missing = sorted(_header_prototypes(build_cffi) - lib_names)
    assert not missing, f"rebuild with `python host/build_cffi.py`: edgeq._native lacks {missing}"
    assert _native.lib.EQ_INPUT_WIRE == spec.value(spec.INPUT, "WIRE")
    assert _native.lib.EQ_ERR_INPUT == spec.value(spec.STATUS, "ERR_INPUT")
    # the struct layout cffi uses is the compiler's (the header's, not a copy)
    assert _native.ffi.offsetof("eq_model_t", "input_wire") > _native.ffi.offsetof("eq_model_t", "n_classes")


def test_missing_compiler_is_one_clear_error(build_cffi):
    with pytest.raises(RuntimeError, match="cannot run the C preprocessor"):
        build_cffi.cdef_from_headers(cc="/nonexistent/cc")
    with pytest.raises(RuntimeError, match="failed"):
        build_cffi.cdef_from_headers(cc=f"{sys.executable} -c 'import sys; sys.exit(3)'")
