"""The zoo's reference models (MLPerf Tiny's ResNet-8, DS-CNN and MobileNetV1-0.25, binary and
ternary): built with edgeq.nn at their benchmark inputs, with the benchmarks' layer structure and
parameter counts."""

import numpy as np
import pytest
import torch

from edgeq.train import models
from edgeq.train.archs import ARCHS, REFERENCE_MODELS, arch_names, get_arch
from edgeq.train.nn import QConv2d, QLinear

torch.set_num_threads(1)

# conv weights of the MLPerf Tiny reference networks (the dense layer, biases and batch norms not
# counted), computed layer by layer from the networks' definitions
CONV_WEIGHTS = {
    "resnet8": 3 * 16 * 9 + 2 * 16 * 16 * 9 + (16 * 32 * 9 + 32 * 32 * 9 + 16 * 32)
    + (32 * 64 * 9 + 64 * 64 * 9 + 32 * 64),
    "ds-cnn": 64 * 10 * 4 + 4 * (64 * 9 + 64 * 64),
    "mobilenet": 3 * 8 * 9 + sum(i * 9 + i * o for i, o in [(8, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128)]
                                 + [(128, 128)] * 5 + [(128, 256), (256, 256)]),
}


def _weights(m):
    return sum(int(q.weight.numel()) for q in m.modules() if isinstance(q, (QConv2d, QLinear)))


@pytest.mark.parametrize("arch", REFERENCE_MODELS)
def test_reference_model_structure(arch):
    spec = get_arch(arch)
    m = models.reference_model(arch, calib=8)
    c, h, w = spec.extra["input_shape"]
    n = len(m.classes)
    assert m.config["input_shape"] == [c, h, w] and n == {"resnet8": 10, "ds-cnn": 12, "mobilenet": 2}[spec.kind]
    convs = [q for q in m.modules() if isinstance(q, QConv2d)]
    fc = m.head.fc.weight
    assert fc.shape[0] == n and _weights(m) - fc.numel() == CONV_WEIGHTS[spec.kind]
    if spec.kind == "resnet8":  # conv + 3 stages of two 3x3 convs, 1x1 strided shortcuts in stages 2, 3
        assert [q.out_channels for q in convs] == [16, 16, 16, 32, 32, 32, 64, 64, 64]
        assert [q.stride[0] for q in convs if q.kernel_size == (1, 1)] == [2, 2]
    else:  # depthwise-separable: every depthwise conv has groups = channels
        dw = [q for q in convs if q.groups > 1]
        assert dw and all(q.groups == q.in_channels == q.out_channels for q in dw)
        assert len(dw) == {"ds-cnn": 4, "mobilenet": 13}[spec.kind]
    if spec.kind == "mobilenet":  # 0.25 x (32, 64, ..., 1024) filters, 5 stride-2 steps
        assert [q.out_channels for q in convs if q.groups == 1][-1] == 256
        assert sum(q.stride[0] == 2 for q in convs) == 5
    # weights: the arch's quantizer in the hidden layers; activations binary or 2-bit
    assert {q.wq.name for q in convs[1:]} == {spec.wq}
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (3, c, h, w), dtype=np.uint8))
    m.train()
    y = m(x.float())
    assert y.shape == (3, n)
    y.sum().backward()
    assert all(q.weight.grad is not None for q in convs)


def test_reference_models_in_the_cli_table():
    for a in REFERENCE_MODELS:
        assert a in ARCHS and a in arch_names()
    for alias in ("resnet8", "ds-cnn", "mobilenet-v1-0.25"):
        assert alias in arch_names() and get_arch(alias) is get_arch(alias + "-bnn")


@pytest.mark.parametrize("arch", REFERENCE_MODELS)
def test_reference_model_exports_and_fits_the_reference_board(arch, capsys):
    """From random init + a batch-norm calibration pass: edgeq.export writes the blob and proves it
    (C host runtime == the integer graph, == the torch model) on random inputs; the blob and its
    peak arena fit qemu-mps2-an386."""
    import edgeq
    from edgeq.deploy import boards
    from edgeq.format import pack
    from edgeq.native.runtime import Model

    spec = get_arch(arch)
    m = models.reference_model(arch, calib=32)
    shape = tuple(spec.extra["input_shape"])
    x = np.random.default_rng(5).integers(0, 256, (6,) + shape, dtype=np.uint8)
    res = edgeq.export(m, x)
    assert res.report["images"] == 6
    ops = {type(layer).__name__ for layer in res.graph.layers}
    if spec.kind == "resnet8":
        assert "Add" in ops
    else:
        assert any(getattr(layer, "groups", 1) > 1 for layer in res.graph.layers)
    cls, scores = Model(res.blob).predict(x)
    assert np.array_equal(np.asarray(scores, np.int64), res.scores(x))
    with torch.no_grad():  # the model's eval forward is the integer graph
        assert np.array_equal(m(torch.as_tensor(x)).numpy().astype(np.int64), res.scores(x))
    board = boards.get("qemu-mps2-an386")
    hdr = pack.read_header(res.blob)
    assert len(res.blob) <= board.model_region[1] and len(res.blob) <= int(board.firmware["model_buf"])
    assert int(hdr["arena_size"]) <= int(board.firmware["arena"])
    with capsys.disabled():
        print(f"\n{arch}: blob {len(res.blob):,} B, peak arena {int(hdr['arena_size']):,} B "
              f"(qemu-mps2-an386: {board.model_region[1]:,} B model region, {int(board.firmware['arena']):,} B arena)")


# --------------------------------------------------------------------------------------------
# on the reference board (qemu-mps2-an386, the real firmware under QEMU -icount)

BOARD = "qemu-mps2-an386"
BOARD_INPUTS = 3  # random inputs per model


@pytest.fixture(scope="module")
def reference_blobs():
    """arch -> blob of every reference model (random init, batch norms calibrated; exported and
    proved on 4 random inputs)."""
    import edgeq

    out = {}
    for arch in REFERENCE_MODELS:
        m = models.reference_model(arch, calib=16)
        x = np.random.default_rng(2).integers(0, 256, (4,) + tuple(m.config["input_shape"]), dtype=np.uint8)
        out[arch] = edgeq.export(m, x).blob
    return out


@pytest.mark.qemu
def test_reference_models_run_bit_exact_on_the_board(reference_blobs, private_board_state, tmp_path):
    """Each reference model, uploaded to the running firmware, gives the C host runtime's class and
    scores on random inputs; the MobileNets' 27,648-byte inputs reach the board in INPUT_CHUNK
    frames (more than one frame's payload)."""
    from boardutil import need_board

    from edgeq.deploy import boards
    from edgeq.deploy.client import Board
    from edgeq.format import pack
    from edgeq.native.runtime import Model

    need_board(BOARD)
    first = tmp_path / "first.eqb"
    first.write_bytes(reference_blobs[REFERENCE_MODELS[0]])
    run, _ = boards.flash(BOARD, first, log=lambda s: None)
    chunked = []
    try:
        with Board(run.url, timeout=60) as b:
            for arch, blob in reference_blobs.items():
                summary = b.load(blob)
                assert summary.arena_need == pack.read_header(blob)["arena_size"], arch
                model = Model(blob)
                if model.input_wire_bytes > b.max_payload:
                    chunked.append(arch)
                x = np.random.default_rng(7).integers(0, 256, (BOARD_INPUTS,) + model.input_shape, dtype=np.uint8)
                for i, img in enumerate(x):
                    wire = model.wire_input(img)
                    cls, scores = b.infer(wire, timeout=300)
                    hcls, hscores = model.predict_wire(wire)
                    assert cls == hcls and np.array_equal(scores, hscores), (arch, i, scores, hscores)
                prof = b.profile()
                assert len(prof.ticks) == model.n_layers and prof.total > 0, arch
    finally:
        boards.stop(BOARD)
    assert chunked == [a for a in REFERENCE_MODELS if get_arch(a).kind == "mobilenet"] and chunked


@pytest.mark.qemu
def test_edgeq_profile_gives_per_layer_instructions_on_qemu(reference_blobs, private_board_state, tmp_path):
    """`edgeq flash` + `edgeq profile` of the binary ResNet-8 on qemu-mps2-an386: one row per blob
    layer, counted in executed instructions (QEMU -icount), never called cycles."""
    import json

    from boardutil import need_board
    from cliutil import edgeq

    from edgeq.deploy import boards
    from edgeq.format import pack

    need_board(BOARD)
    blob = reference_blobs["resnet8-bnn"]
    path = tmp_path / "resnet8.eqb"
    path.write_bytes(blob)
    try:
        assert "verified on the board" in edgeq("flash", path, "--board", BOARD).stdout
        out = edgeq("profile", "--board", BOARD, "--model", path, "--runs", "1",
                    "--json", tmp_path / "p.json").stdout
    finally:
        boards.stop(BOARD)
    rep = json.loads((tmp_path / "p.json").read_text())
    names = [row["name"] for row in pack.blob_info(blob)["layers"]]
    assert rep["unit"] == "instructions" and [x["name"] for x in rep["layers"]] == names
    assert all(x["cycles"] > 0 for x in rep["layers"]) and rep["total_cycles"] >= rep["layer_sum_cycles"] > 0
    assert "instructions" in out and "cycles" not in out.replace("not cycles", ""), out
