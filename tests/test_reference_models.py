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
