"""The blob layout and protocol are declared once (edgeq/spec.py); C and MicroPython agree."""

import re
import struct
import subprocess

import pytest

from edgeq import spec


def test_generated_files_are_current():
    assert spec.main(["--check"]) == 0, "run `python -m edgeq.spec` and commit the result"


def test_c_compiler_sees_the_same_offsets(tmp_path):
    """Compile a C program that prints every offset/size/enum as the C compiler sees them."""
    lines = ['#include <stdio.h>', '#include "eq_spec.h"', "int main(void){"]
    expect = []
    for rname, rec in spec.RECORDS.items():
        lines.append(f'printf("%u\\n", (unsigned)EQ_{rname}_SIZE_BYTES);')
        expect.append(spec.size(rec))
        for f, off in spec.offsets(rec).items():
            lines.append(f'printf("%u\\n", (unsigned)EQ_{rname}_{f.upper()});')
            expect.append(off)
    for ename, enum in spec.ENUMS.items():
        for k, (v, _) in enum.items():
            cname = f"EQ_{k}" if ename == "STATUS" else f"EQ_{ename}_{k}"
            lines.append(f'printf("%u\\n", (unsigned){cname});')
            expect.append(v)
    lines.append("return 0;}")
    src = tmp_path / "t.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "t"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-Ifirmware/include", str(src), "-o", str(exe)],
                   check=True)
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == expect


def test_micro_constants_match():
    ns = {}
    exec(spec.MICRO_SPEC_PATH.read_text(), ns)
    assert ns["HEADER_FMT"] == spec.fmt(spec.HEADER)
    assert ns["LAYER_SIZE"] == spec.LAYER_SIZE and ns["CRC_OFFSET"] == spec.CRC_OFFSET
    for k, (v, _) in spec.ENC.items():
        assert ns[f"ENC_{k}"] == v


def test_records_are_aligned_and_unique():
    for rec in (spec.HEADER, spec.TENSOR, spec.LAYER):
        assert spec.size(rec) % spec.BLOB_ALIGN == 0
        names = [f for f, _, _ in rec]
        assert len(names) == len(set(names))
    for enum in spec.ENUMS.values():
        vals = [v for v, _ in enum.values()]
        assert len(vals) == len(set(vals))
    assert struct.calcsize(spec.fmt(spec.HEADER)) == spec.HEADER_SIZE


def test_docs_name_every_status():
    doc = open("docs/blob-format.md").read()
    for k in ("B1", "TERN", "TERN_SPARSE", "KBIT", "I8", "SIGN", "MULTI", "AFFINE", "THRESH", "QUANT"):
        assert re.search(rf"\b{k}\b", doc), f"docs/blob-format.md does not describe {k}"


@pytest.mark.parametrize("name", list(spec.STATUS))
def test_status_strings_in_c_header(name):
    text = spec.C_HEADER_PATH.read_text()
    assert spec.STATUS[name][1] in text
