"""Firmware builds for every board (real boards compile and link too) and the `sim` board end to
end: the firmware's app + main loop + runtime compiled for the host with ASan/UBSan, over a pty."""

from __future__ import annotations

import subprocess

import boardutil as U
import numpy as np
import pytest

from edgeq.deploy import boards
from edgeq.deploy.client import Board
from edgeq.errors import BoardError


def _skip_without(name):
    why = boards.toolchain_missing(name)
    if why:
        pytest.skip(f"{name}: {why}")


@pytest.fixture(scope="module", autouse=True)
def private_state(private_board_state):
    """Boards started here live in a private state folder (tests/conftest.py)."""


@pytest.mark.parametrize("name", boards.names())
def test_firmware_builds(name):
    _skip_without(name)
    res = boards.build(name)
    assert res.image.exists()
    b = boards.get(name)
    if b.kind == "sim":
        return
    # static memory only: no heap, and everything (buffers + stack) fits the board's RAM
    assert 0 < res.flash_used <= res.flash_total and 0 < res.ram_used <= res.ram_total
    nm = subprocess.run(["arm-none-eabi-nm", str(res.image)], capture_output=True, text=True, check=False).stdout
    assert "_sbrk" not in nm and " malloc" not in nm
    syms = {line.split()[-1]: int(line.split()[0], 16) for line in nm.splitlines() if len(line.split()) == 3}
    assert syms["eq_vectors"] == b.memory["flash"][0]  # vector table at the start of flash
    assert "eq_model_load" in syms and "eq_conv2d_row" in syms  # runtime + kernels linked
    print(res.summary())


def test_board_definitions_are_consistent():
    for b in boards.all_boards():
        fw = b.firmware
        assert fw["max_payload"] <= 4096 and fw["rx_ring"] & (fw["rx_ring"] - 1) == 0
        # INFER inputs larger than a frame are staged in input_buf (INPUT_CHUNK)
        assert fw["input_buf"] == 0 or fw["input_buf"] > fw["max_payload"], b.name
        if b.kind != "sim":
            fo, fl = b.memory["flash"]
            mo, ml = b.model_region
            assert fo + fl <= mo or mo + ml <= fo, f"{b.name}: model region overlaps code"
            ram = b.memory["ram"][1]
            used = fw["model_buf"] + fw["arena"] + fw["rx_ring"] + fw["stack"] + fw["input_buf"]
            assert used < ram, b.name
            # ticks: a known source; under QEMU nothing may interrupt an inference (exact ticks),
            # on real boards the UART interrupt must stay on (a real UART would overrun)
            assert b.ticks.get("source") in boards.TICK_SOURCES, b.name
            assert bool(b.ticks.get("hold_uart")) == (b.kind == "qemu"), b.name
            assert b.tick_hz > 0 and (b.ticks["source"] != "dwt" or b.tick_hz == b.cpu_hz), b.name
        assert b.description


@pytest.fixture(scope="module")
def sim_model():
    _skip_without("sim")
    from edgeq.native.runtime import Model

    blob = U.small_blob(seed=3)
    return blob, Model(blob)


@pytest.fixture(scope="module")
def sim(sim_model, tmp_path_factory):
    blob, _ = sim_model
    path = tmp_path_factory.mktemp("m") / "m.eqb"
    path.write_bytes(blob)
    run, _ = boards.flash("sim", path, log=lambda s: None)
    yield run
    boards.stop("sim")
    with open(run.log, errors="replace") as fh:
        log = fh.read()
    assert "ERROR: AddressSanitizer" not in log and "runtime error" not in log, log[-2000:]


def test_sim_matches_host_runtime_on_mnist(sim, sim_model):
    data = U.mnist_test(600)
    if data is None:
        pytest.skip("../shared/data/mnist not present")
    _, model = sim_model
    with Board(sim.url) as b:
        info = b.info()
        assert info.board == "sim" and info.model.source == "flash"
        n, bad_cls, bad_scores, first = U.compare_on_board(b, model, data[0])
    assert n == 600 and bad_cls == 0 and bad_scores == 0, first


def test_sim_profile_and_reload(sim, sim_model):
    _, model = sim_model
    other = U.small_blob(seed=4, c1=8)
    from edgeq.native.runtime import Model

    with Board(sim.url) as b:
        b.infer(bytes(98))
        prof = b.profile()
        assert len(prof.ticks) == model.n_layers and prof.tick_hz == 10**9 and prof.total > 0
        s = b.load(other)
        assert s.source == "ram" and s.size == len(other)
        img = U.mnist_test(1)[0] if U.mnist_test(1) else [np.zeros((28, 28), np.uint8)]
        m2 = Model(other)
        assert U.compare_on_board(b, m2, img)[1:3] == (0, 0)
        assert b.reset().source == "flash"
        with pytest.raises(BoardError, match="input size"):
            b.infer(bytes(97))
