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


def _rule_sweep():
    """(rule name, argument tuple) over every encoding / mode and awkward sizes."""
    encs = sorted(v for v, _ in spec.ENC.values()) + [0, 99]
    pres = sorted(v for v, _ in spec.PRE.values()) + [0, 99]
    dims = [0, 1, 7, 8, 31, 32, 33, 65535]
    cases = [("act_bytes", (e, h, w, c)) for e in encs for h in (1, 3, 65535) for w in (1, 5, 65535)
             for c in dims]
    cases += [("kbit_slot_bits", (b,)) for b in range(1, 9)]
    cases += [("kbit_slot_bits_for_rows", (1 << b,)) for b in range(1, 9)]
    cases += [("kbit_slot_bits_for_rows", (r,)) for r in (1, 3, 5, 17, 255)]
    cases += [("kbit_row_bytes", (k, b)) for k in (0, 1, 31, 32, 33, 1000, 2**31) for b in range(1, 9)]
    cases += [("wire_bytes", (p, n)) for p in pres for n in (0, 1, 7, 8, 9, 784, 2**31 - 1)]
    cases += [("act_code_max", (e, lv)) for e in encs for lv in (1, 2, 16, 256)]
    cases += [("weight_product_max", (e, a)) for e in encs for a in (0, 1, 15, 255)]
    cases += [("acc_fits", (k, p)) for k in (0, 1, 2**16, 2**31 - 1, 2**31) for p in (0, 1, 2, 32768 * 255)]
    ops = sorted(v for v, _ in spec.OP.values()) + [0, 99]
    outs = sorted(v for v, _ in spec.OUT.values()) + [0, 99]
    cases += [("uses_1_1", (o, st) + (0,) * 5) for o in ops for st in outs]
    cases += [("uses_1_1", (spec.value(spec.OP, "CONV"), spec.value(spec.OUT, "SIGN")) + tuple(
        v if j == i else 0 for j in range(5))) for i in range(5) for v in (1, 255, 65535)]
    cases += [("uses_1_2", (f,)) for f in (0, 1, 2, 255)]
    conv, f32 = spec.value(spec.OP, "CONV"), spec.value(spec.ENC, "F32")
    base = (conv, f32, 3, 3, 1, 0, 1, 0, 0)  # the eligible record, then each field changed
    cases += [("wino_f23_ok", base)] + [("wino_f23_ok", base[:i] + (v,) + base[i + 1:])
                                        for i in range(9) for v in (0, 1, 2, 3, 5, 255)]
    cases += [("wino_f23_scratch", (c, w, n)) for c in (1, 17, 65535) for w in (1, 2, 7, 65535)
              for n in (1, 64, 65535)]
    return cases


def test_derived_rules_agree_in_python_c_and_micropython(tmp_path):
    """Each derived rule (spec.act_bytes, kbit_slot_bits, wire_bytes, the accumulator bound...) is
    written once in spec.py and emitted for C and MicroPython: all three give the same answers."""
    cases = _rule_sweep()
    lines = ['#include <stdio.h>', '#include "eq_spec.h"', "int main(void){"]
    for name, args in cases:
        cargs = ", ".join(f"{a}ull" for a in args)
        lines.append(f'printf("%llu\\n", (unsigned long long)eq_rule_{name}({cargs}));')
    lines.append("return 0;}")
    src = tmp_path / "rules.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "rules"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-Wno-overflow", "-Ifirmware/include", str(src),
                    "-o", str(exe)], check=True)
    got_c = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    ns = {}
    exec(spec.MICRO_SPEC_PATH.read_text(), ns)
    expect = [int(getattr(spec, name)(*args)) for name, args in cases]
    got_micro = [int(ns[name](*args)) for name, args in cases]
    assert got_micro == expect
    assert got_c == expect
    # the rules are the format's: a few values the docs state
    b1, u8, i32 = (spec.value(spec.ENC, k) for k in ("B1", "U8", "I32"))
    assert spec.act_bytes(b1, 2, 3, 33) == 2 * 3 * 2 * 4 and spec.act_bytes(u8, 2, 3, 5) == 30
    assert spec.act_bytes(i32, 1, 1, 10) == 40
    assert [spec.kbit_slot_bits(b) for b in range(1, 9)] == [1, 2, 4, 4, 8, 8, 8, 8]
    assert spec.wire_bytes(spec.value(spec.PRE, "THRESH"), 784) == 98
    assert spec.wire_bytes(spec.value(spec.PRE, "RAW"), 784) == 784


def test_derived_rules_on_real_micropython(tmp_path):
    """The generated edgeq_spec.py rules, run by MicroPython itself (wasm port), give spec.py's
    answers over the same sweep (MicroPython has its own int and dict semantics to get right)."""
    import sys

    sys.path.insert(0, "tests/mp_harness")
    import mpwasm

    try:
        mpwasm.ensure_port()
    except mpwasm.PortMissing as e:
        pytest.skip(str(e))
    cases = _rule_sweep()
    script = tmp_path / "rules.py"
    script.write_text("import sys\nsys.path.insert(0, '/work')\nimport edgeq_spec as S\n"
                      f"for name, args in {[[n, list(a)] for n, a in cases]!r}:\n"
                      "    print(int(getattr(S, name)(*args)))\n")
    out = mpwasm.run_script(script, {}, runtime=True)
    got = [int(x) for x in out.split()]
    assert got == [int(getattr(spec, name)(*args)) for name, args in cases]
