"""docs/embedding.md as a user follows it: `edgeq export-c` writes the blob as a C header, the
page's Makefile builds libedgeq.a for a Cortex-M4F, the page's classify.c example is compiled and
linked against it, and the image runs on QEMU mps2-an386, printing classes and scores over
semihosting that must equal the host runtime's bit for bit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.format import pack
from edgeq.reference import testing
from edgeq.deploy.export_c import blob_to_c, c_identifier

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "embedding.md"
BOARD = "qemu-mps2-an386"  # a Cortex-M4F: the example's target, and QEMU runs it
N_IMAGES = 6


def _blocks(lang: str) -> list:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)


def _header_macros(text: str) -> dict:
    return {k: v for k, v in re.findall(r"^#define (\w+) (\S+)", text, flags=re.M)}


# ---- export-c (host only) --------------------------------------------------------------------
def test_export_c_header_matches_the_blob(tmp_path):
    blob = U.small_blob(seed=0)
    (tmp_path / "m.eqb").write_bytes(blob)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "edgeq", "export-c", "m.eqb", "-o", "my-model.h"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "my-model.h").read_text()
    m = _header_macros(text)
    hdr = pack.read_header(blob)
    assert m["MY_MODEL_SIZE"] == f"{len(blob)}u" and m["MY_MODEL_CRC32"] == f"0x{hdr['crc32']:08x}u"
    assert m["MY_MODEL_ALIGN"] == "64u" and m["MY_MODEL_ARENA_SIZE"] == f"{hdr['arena_size']}u"
    assert m["MY_MODEL_INPUT_PIXELS"] == "784u" and m["MY_MODEL_INPUT_WIRE"] == "98u"
    assert m["MY_MODEL_N_CLASSES"] == "10u" and m["MY_MODEL_N_LAYERS"] == "4u"
    assert "EQ_ALIGNED(64) static const uint8_t my_model[MY_MODEL_SIZE] = {" in text
    body = text.split("= {", 1)[1].split("};", 1)[0]
    assert bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2}),", body)) == blob
    assert c_identifier("2nd model-v1") == "m_2nd_model_v1"


def test_export_c_class_names_are_c_strings():
    g = U.small_graph(seed=1)
    g.classes = ['say "hi"', "back\\slash", "caf\u00e9", "a??=b"] + [str(i) for i in range(4, 10)]
    text = blob_to_c(pack.write_blob(g), "m")
    line = next(t for t in text.splitlines() if t.startswith("#define M_CLASS_NAMES"))
    assert r'"say \042hi\042"' in line and r'"back\134slash"' in line and r'"caf\303\251"' in line
    assert r'"a\077\077=b"' in line  # no trigraphs


def test_export_c_refuses_bad_input_in_one_line(tmp_path):
    bad = bytearray(U.small_blob(seed=0))
    bad[200] ^= 1
    (tmp_path / "bad.eqb").write_bytes(bytes(bad))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for argv, msg in ((["bad.eqb"], "CRC mismatch"), (["nope.eqb"], "not found")):
        p = subprocess.run([sys.executable, "-m", "edgeq", "export-c", *argv, "-o", "x.h"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=False)
        assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.h").exists()
    (tmp_path / "good.eqb").write_bytes(U.small_blob(seed=0))
    p = subprocess.run([sys.executable, "-m", "edgeq", "export-c", "good.eqb", "--name", "1x"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "not a C identifier" in p.stderr, p.stderr


# ---- the documented build, for a Cortex-M4F, run on QEMU ----------------------------------------
@pytest.fixture(scope="module")
def libedgeq(tmp_path_factory):
    """libedgeq.a built by the Makefile printed in docs/embedding.md, unchanged."""
    why = boards.toolchain_missing(BOARD)
    if why:
        pytest.skip(f"the Cortex-M4 build needs arm-none-eabi-gcc and make: {why}")
    out = tmp_path_factory.mktemp("embed")
    (make,) = _blocks("make")
    (out / "Makefile").write_text(make)
    arch = " ".join(boards.get(BOARD).cflags)
    p = subprocess.run(["make", "-s", f"-j{os.cpu_count() or 1}", f"EDGEQ={boards.ROOT}", f"ARCH={arch}"],
                       cwd=out, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    lib = out / "libedgeq.a"
    nm = subprocess.run([boards.CROSS + "nm", "-u", str(lib)], capture_output=True, text=True, check=True)
    undefined = {ln.split()[-1] for ln in nm.stdout.splitlines() if ln.strip().startswith("U ")}
    undefined -= {ln.split()[-1] for ln in subprocess.run([boards.CROSS + "nm", "--defined-only", str(lib)],
                                                          capture_output=True, text=True).stdout.splitlines()
                  if len(ln.split()) == 3}
    # only what docs/embedding.md says: memset/memcpy (plus compiler helpers)
    assert {s for s in undefined if not s.startswith("__aeabi")} <= {"memset", "memcpy", "memmove"}, undefined
    (classify,) = [b for b in _blocks("c") if "int classify(" in b]
    (out / "classify.c").write_text(classify)
    return out


def _build_and_run(lib_dir: Path, blob: bytes, images: np.ndarray, tag: str):
    b = boards.get(BOARD)
    work = lib_dir / tag
    work.mkdir()
    (work / "model_blob.h").write_text(blob_to_c(blob, "model_blob"))
    n, px = images.shape[0], int(np.prod(images.shape[1:]))
    rows = ",\n".join("{" + ",".join(str(int(v)) for v in img.reshape(-1)) + "}" for img in images)
    (work / "embed_inputs.h").write_text(
        f"#define EMBED_N {n}u\n#define EMBED_PIXELS {px}u\n#define EMBED_N_CLASSES MODEL_N_CLASSES\n"
        f"static const uint8_t embed_inputs[EMBED_N][EMBED_PIXELS] = {{\n{rows}\n}};\n")
    boards.generate(b, work)  # eq_board.h + memory.ld: the startup code's vector table and memory map
    common = boards.BOARDS_DIR / "common" / "cortexm"
    fw = boards.ROOT / "firmware"
    inc = [f"-I{work}", f"-I{fw / 'include'}", f"-I{fw / 'runtime'}", f"-I{fw / 'kernels'}"]
    flags = [*b.cflags, "-std=gnu99", "-O2", "-ffp-contract=off", "-ffunction-sections", "-fdata-sections",
             "-Wall", "-Wextra", "-Werror"]
    n_cls = pack.read_header(blob)["n_classes"]
    elf = work / "embed.elf"
    cmd = [boards.CROSS + "gcc", *flags, *inc, f"-DMODEL_N_CLASSES={n_cls}u",
           str(lib_dir / "classify.c"), str(ROOT / "tests" / "c" / "embed_main.c"), str(common / "startup.c"),
           "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", f"-L{work}", "-T",
           str(common / "sections.ld"), str(lib_dir / "libedgeq.a"), "-o", str(elf)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    size = subprocess.run([boards.CROSS + "size", "-A", str(elf)], capture_output=True, text=True, check=True)
    sec = {ln.split()[0]: int(ln.split()[1]) for ln in size.stdout.splitlines()
           if len(ln.split()) >= 3 and ln.split()[1].isdigit()}
    if not shutil.which(boards.QEMU):
        return None, sec
    q = subprocess.run([boards.QEMU, "-M", b.qemu["machine"], "-nographic", "-monitor", "none", "-serial", "null",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                       capture_output=True, text=True, timeout=120, check=False)
    # semihosting output arrives on QEMU's stderr (target=native); rows are whitespace-separated ints
    lines = [ln.split() for ln in (q.stdout + q.stderr).splitlines()]
    return [[int(v) for v in ln] for ln in lines if ln and all(re.fullmatch(r"-?\d+", v) for v in ln)], sec


def _compare(lib_dir, blob, images, tag):
    from edgeq.native.runtime import Model

    rows, sec = _build_and_run(lib_dir, blob, images, tag)
    flash = sec.get(".text", 0) + sec.get(".data", 0)
    code = flash - len(blob) - images.size  # runtime, kernels, example, test main and startup
    print(f"{tag}: flash {flash:,} B = blob {len(blob):,} + test images {images.size:,} + code {code:,}; "
          f"RAM .bss {sec.get('.bss', 0):,} B (arena {pack.read_header(blob)['arena_size']:,}) + stack")
    if rows is None:
        pytest.skip(f"linked for Cortex-M4 ({flash:,} B flash); {boards.QEMU} not found to run it")
    cls, scores = Model(blob).predict(images)
    assert len(rows) == len(images), rows
    for i, row in enumerate(rows):
        assert row[0] == cls[i] and row[1:] == scores[i].tolist(), (tag, i, row, cls[i], scores[i])


def test_embedding_example_on_cortex_m4_equals_host(libedgeq):
    rng = np.random.default_rng(3)
    x = U.mnist_test(N_IMAGES)
    images = x[0] if x is not None else rng.integers(0, 256, (N_IMAGES, 28, 28), dtype=np.uint8)
    _compare(libedgeq, U.small_blob(seed=0), images, "bnn")


@pytest.mark.parametrize("seed", (1, 2, 4, 5, 7, 8, 15))
def test_embedding_example_random_graphs(libedgeq, seed):
    """Random graphs (8x8 inputs) that together use every weight encoding (B1, TERN, TERN_SPARSE,
    KBIT, I8, I16, F32 on the FPU), output stage and input preprocessing (tests/test_boards.py)."""
    g = testing.random_graph(seed)
    blob = pack.write_blob(g)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N_IMAGES, *g.input_shape), dtype=np.uint8)
    _compare(libedgeq, blob, images, f"graph{seed}")
