"""Bring your own model: an nn.Module written with edgeq.nn layers, trained, exported by
`edgeq.export` and run on the C host runtime, equal to torch's eval forward on every image; and
every construct the IR cannot express raises UnsupportedError naming its node."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgeq
import edgeq.nn as qnn
from edgeq.train import data, export, models, quant
from edgeq.format import pack
from edgeq.errors import EdgeqError, ExportMismatchError, UnsupportedError

torch.set_num_threads(1)
MNIST = __import__("conftest").MNIST


def _runtime():
    try:
        from edgeq import _native  # noqa: F401
        from edgeq.native.runtime import Model
    except (ImportError, EdgeqError) as e:  # pragma: no cover
        pytest.skip(f"C host runtime not built: {e}")
    return Model


class BinaryCNN(nn.Module):
    """A user's plain binary CNN: int8 first layer on raw pixels, binary everything else."""

    def __init__(self, n=10):
        super().__init__()
        self.inp = qnn.Input("RAW")
        self.conv1 = qnn.QConv2d(1, 16, 3, padding="same", wq="int8")
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.Sign()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = qnn.QConv2d(16, 32, 3, padding=1, wq="sign")
        self.bn2 = nn.BatchNorm2d(32)
        self.act2 = qnn.Sign()
        self.flat = nn.Flatten()
        self.fc1 = qnn.QLinear(32 * 7 * 7, 64, wq="sign")
        self.bn3 = nn.BatchNorm1d(64)
        self.act3 = qnn.Sign()
        self.drop = nn.Dropout(0.1)
        self.fc2 = qnn.QLinear(64, n, wq="sign")
        self.bn4 = nn.BatchNorm1d(n)

    def forward(self, x):
        x = self.pool1(self.act1(self.bn1(self.conv1(self.inp(x)))))
        x = self.act2(F.max_pool2d(self.bn2(self.conv2(x)), 2))  # pool before the quantizer
        x = self.drop(self.act3(self.bn3(self.fc1(self.flat(x)))))
        return self.bn4(self.fc2(x))


def _train(model, x, y, steps, lr=3e-3, seed=0, batch=64):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (batch,), generator=gen)  # shuffled: train5k is sorted by class
        loss = F.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        quant.clip_latent_weights(model)
    with torch.no_grad():  # batch-norm statistics of the final weights (a few steps move them a lot)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        for _ in range(8):
            model(xt[torch.randint(0, len(xt), (256,), generator=gen)])
    return model.eval()


@pytest.fixture(scope="module")
def mnist():
    if not (MNIST / "train5k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{MNIST} not present")
    xtr, ytr, _ = data.load_idx(str(MNIST / "train5k"))
    xte, yte, _ = data.load_idx(str(MNIST / "test8k"))
    return xtr, ytr, xte[6000:7000], yte[6000:7000]


def test_user_binary_cnn_on_mnist_equals_torch_eval(mnist, tmp_path):
    Model = _runtime()
    xtr, ytr, xte, yte = mnist
    torch.manual_seed(0)
    model = _train(BinaryCNN(), xtr, ytr, steps=150)
    res = edgeq.export(model, xte, tmp_path / "own.eqb")
    assert (tmp_path / "own.eqb").read_bytes() == res.blob
    cls, scores = Model(res.blob).predict(export.graph_input(res.folded, xte))
    # the torch eval forward (float64: rounding far below any threshold gap) gives the blob's classes
    with torch.no_grad():
        t64 = model.double()(torch.as_tensor(xte)).argmax(1).numpy()
        t32 = model.float()(torch.as_tensor(xte)).argmax(1).numpy()
    np.testing.assert_array_equal(cls, t64)
    np.testing.assert_array_equal(scores, res.scores(xte))
    assert res.report["images"] == len(xte) and res.report["class_agreement"] == 1.0
    acc = float((cls == yte).mean())
    print(f"own binary CNN: {len(xte)} MNIST images, runtime == torch float64 eval on all, "
          f"float32 eval agreement {100 * (t32 == cls).mean():.2f}%, accuracy {100 * acc:.1f}%")
    assert (t32 == cls).mean() >= 0.99
    assert acc > 0.8
    encs = [layer.w_enc for layer in res.graph.layers if hasattr(layer, "w_enc")]
    assert encs == ["I8", "B1", "B1", "B1"]
    assert [type(layer).__name__ for layer in res.graph.layers] == ["Conv", "MaxPool", "Conv", "MaxPool",
                                                                    "Conv", "Conv"]


def _rand_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 2)
            m.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))  # negative scales too
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.5)
    return model.eval()


def _seq(*layers, inp=None):
    return nn.Sequential(inp or qnn.Input("RAW"), *layers)


ACTS = {"sign": lambda: qnn.Sign(), "dorefa2": lambda: qnn.DoReFa(2), "dorefa3": lambda: qnn.DoReFa(3),
        "hwgq2": lambda: qnn.HWGQ(2), "hwgq2u": lambda: qnn.HWGQ(2, "uniform")}


@pytest.mark.parametrize("wq", ["sign", "bwn", "twn", "tern5", "dorefa1", "dorefa2", "int8", "int16"])
@pytest.mark.parametrize("act", sorted(ACTS))
def test_every_quantizer_pair_exports_exactly(wq, act):
    """Random weights and batch-norm statistics (negative scales included), every weight quantizer
    after every activation quantizer; edgeq.export's proof passes (runtime == graph, torch == graph)."""
    _runtime()
    torch.manual_seed(1)
    model = _seq(qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.BatchNorm2d(8), ACTS[act](),
                 qnn.QConv2d(8, 12, 3, stride=2, padding="valid", wq=wq, bias=True), nn.BatchNorm2d(12),
                 nn.MaxPool2d(2), ACTS[act](), nn.Flatten(), qnn.QLinear(12 * 3 * 3, 5, wq=wq), nn.BatchNorm1d(5))
    _rand_bn(model)
    x = torch.randint(0, 256, (40, 1, 16, 16), dtype=torch.uint8)
    if wq == "int16" and act == "hwgq2":  # Lloyd-Max levels need a KBIT lut; 65536 rows cannot be
        with pytest.raises(UnsupportedError, match="node '4'.*int16 weights need"):
            edgeq.export(model, x)
        return
    res = edgeq.export(model, x)
    assert res.report["class_agreement"] == 1.0 and res.report["images"] == 40


def test_conv1d_same_padding_bias_and_1x1_outputs():
    Model = _runtime()
    torch.manual_seed(2)
    m1 = _rand_bn(nn.Sequential(qnn.Input("QUANT", 4), qnn.QConv1d(3, 8, 5, stride=2, wq="twn"), nn.BatchNorm1d(8),
                                qnn.DoReFa(2), qnn.QConv1d(8, 8, 3, wq="sign", bias=True), nn.BatchNorm1d(8),
                                qnn.Sign(), nn.Flatten(), qnn.QLinear(8 * 8, 4, wq="int8", bias=True)))
    x = torch.randint(0, 256, (30, 3, 23), dtype=torch.uint8)
    res = edgeq.export(m1, x)
    assert res.graph.input_shape == (3, 1, 23)
    cls, _ = Model(res.blob).predict(export.graph_input(res.folded, x.numpy()))
    with torch.no_grad():
        np.testing.assert_array_equal(cls, m1.double()(x).argmax(1).numpy())
    m2 = _rand_bn(_seq(qnn.QConv2d(3, 6, 5, padding="same", wq="bwn"), nn.BatchNorm2d(6), qnn.Sign(),
                       qnn.QConv2d(6, 4, 12, wq="sign"), nn.BatchNorm2d(4), nn.Flatten(),
                       inp=qnn.Input("THRESH", 100)))
    x2 = torch.randint(0, 256, (30, 3, 12, 12), dtype=torch.uint8)
    res2 = edgeq.export(m2, x2)
    assert res2.graph.layers[0].pad == 2 and res2.report["class_agreement"] == 1.0


# ---------------------------------------------------------------------------------------------
# What export refuses: UnsupportedError naming the node and why
class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.Input("RAW")
        self.c1 = qnn.QConv2d(1, 8, 3, padding=1, wq="int8")
        self.b1 = nn.BatchNorm2d(8)
        self.a1 = qnn.Sign()
        self.c2 = qnn.QConv2d(8, 8, 3, padding=1)
        self.b2 = nn.BatchNorm2d(8)
        self.a2 = qnn.Sign()
        self.fc = qnn.QLinear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.a1(self.b1(self.c1(self.inp(x))))
        y = self.a2(self.b2(self.c2(x)))
        return self.fc(torch.flatten(x + y, 1))


class Cat(Residual):
    def forward(self, x):
        x = self.a1(self.b1(self.c1(self.inp(x))))
        y = self.a2(self.b2(self.c2(x)))
        return self.fc(torch.flatten(torch.cat([x, y], 1)[:, :8], 1))


class Branch(Residual):
    def forward(self, x):
        x = self.a1(self.b1(self.c1(self.inp(x))))
        self.a2(self.b2(self.c2(x)))  # a dead branch is a branch too
        return self.fc(torch.flatten(x, 1))


def _body(*layers, n=10, hw=8, feat=None):
    return nn.Sequential(qnn.Input("RAW"), qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.BatchNorm2d(8),
                         *layers, nn.Flatten(), qnn.QLinear(feat or 8 * hw * hw, n))


class SkipConv(qnn.QConv2d):
    """A skip inside a leaf layer's forward: torch.fx does not look inside, so export must refuse."""

    def forward(self, x):
        return super().forward(x) + x


REFUSED = {
    "skip in an unexported forward": (lambda: _body(qnn.Sign(), SkipConv(8, 8, 3, padding=1), nn.BatchNorm2d(8),
                                                    qnn.Sign()), r"node '4'.*SkipConv overrides forward"),
    "a sum into a linear layer": (Residual, r"node 'flatten'.*pre-activation"),
    "indexing": (Cat, r"node 'getitem'.*indexing"),
    "nn.ReLU": (lambda: _body(nn.ReLU()), r"node '3'.*ReLU is unbounded"),
    "F.relu": (lambda: _FnModel(F.relu), r"node 'relu'.*ReLU is unbounded"),
    "unknown activation": (lambda: _body(nn.Tanh()), r"node '3'.*Tanh: an activation without an integer form"),
    "AvgPool2d with padding": (lambda: _body(qnn.Sign(), nn.AvgPool2d(3, 1, padding=1), nn.BatchNorm2d(8), qnn.Sign()),
                               r"node '4'.*average pooling with padding"),
    "AdaptiveAvgPool2d(3)": (lambda: _body(qnn.Sign(), nn.AdaptiveAvgPool2d(3), nn.BatchNorm2d(8), qnn.Sign(), hw=3),
                             r"node '4'.*windows of unequal size"),
    "dilation": (lambda: _body(qnn.Sign(), qnn.QConv2d(8, 8, 3, padding=2, dilation=2)), r"node '4'.*dilation"),
    "plain Conv2d": (lambda: _body(qnn.Sign(), nn.Conv2d(8, 8, 3, padding=1)), r"node '4'.*plain torch Conv2d"),
    "even 'same'": (lambda: _body(qnn.Sign(), qnn.QConv2d(8, 8, 4, padding="same")), r"node '4'.*even kernel"),
    "no Input": (lambda: nn.Sequential(qnn.QConv2d(1, 8, 3), nn.Flatten(), qnn.QLinear(288, 10)),
                 r"node '0'.*edgeq.nn.Input"),
    "no quantizer": (lambda: _body(qnn.QConv2d(8, 8, 3, padding=1)), r"node '3'.*no activation quantizer"),
    "quantized output": (lambda: nn.Sequential(_body(qnn.Sign()), qnn.Sign()), r"output must be"),
    "quantizer without an integer form": (lambda: _body(Tanhish()), r"node '3'.*Tanhish does not declare"),
    "arithmetic": (lambda: _FnModel(lambda y: y * 2), r"node 'mul'.*arithmetic other than an add"),
    "pool before a negative batch norm": (lambda: _neg_bn(nn.Sequential(
        qnn.Input("RAW"), qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.MaxPool2d(2), nn.BatchNorm2d(8),
        qnn.Sign(), nn.Flatten(), qnn.QLinear(8 * 4 * 4, 10))), r"node '3'.*negative scales"),
}


def test_a_dead_branch_is_not_exported():
    """A value computed and never used changes nothing: the blob is the one without it."""
    _runtime()
    x = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    m = _rand_bn(Branch())
    res = edgeq.export(m, x)
    assert [layer.name for layer in res.graph.layers] == ["c1", "fc"]
    assert res.report["class_agreement"] == 1.0


def _neg_bn(model):
    with torch.no_grad():
        model[3].weight[0] = -1.0
    return model


class KwFlatten(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(qnn.Input("RAW"), qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.MaxPool2d(2),
                                  nn.BatchNorm2d(8), qnn.Sign())
        self.fc = qnn.QLinear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(input=self.body(x), start_dim=1))


def test_keyword_arguments_and_pool_before_positive_bn():
    _runtime()
    m = _rand_bn(KwFlatten())
    with torch.no_grad():
        m.body[3].weight.abs_()  # a max-pool commutes with a non-negative batch norm
    x = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    assert edgeq.export(m, x).report["class_agreement"] == 1.0


class Tanhish(qnn.ActQuantizer):
    """A user's activation 'quantizer' that never says what its integer form is."""

    def forward(self, y):
        return torch.tanh(y)


class _FnModel(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.body = _body(qnn.Sign())

    def forward(self, x):
        return self.fn(self.body(x))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_constructs_raise_with_node_name(case):
    make, pattern = REFUSED[case]
    model = make()
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    if case != "no Input":  # (that one takes float input)
        with torch.no_grad():
            model.eval()(x)  # each is a valid torch model
    with pytest.raises(UnsupportedError, match=pattern):
        edgeq.export(model, x)


def test_import_edgeq_and_runtime_cli_do_not_load_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys, edgeq, edgeq.native.runtime, edgeq.cli; edgeq.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'edgeq.train.nn', 'edgeq.train.export') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    m = _seq(qnn.QConv2d(1, 4, 3, wq="int8"), nn.BatchNorm2d(4), qnn.Sign(), nn.Flatten(), qnn.QLinear(4 * 36, 3))
    path = tmp_path / "m.eqb"
    edgeq.export(_rand_bn(m), torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8), path)
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 8, 8), np.uint8))
    for argv, shows in ((["info", str(path)], "I8"), (["run", str(path), "--input", str(tmp_path / "x.npy")], "score")):
        code = ("import sys, runpy; sys.argv = ['edgeq'] + %r\n"
                "try:\n    runpy.run_module('edgeq', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                "print('TORCH', 'torch' in sys.modules)") % argv
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert "TORCH False" in out and shows in out, (argv, out)


def test_bias_folds_exactly_and_checkpointless_graph_input(tmp_path):
    _runtime()
    m = models.build_model("bnn-cnn", (1, 8, 8), list(range(10)))
    for b in m.blocks:
        b.conv.bias = nn.Parameter(torch.randn(b.conv.out_channels))
    _rand_bn(m)
    x = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    res = edgeq.export(m, x)
    np.testing.assert_array_equal(res.scores(x), m(x).numpy().astype(np.int64))  # QNet eval == graph
    assert pack.read_blob(res.blob).meta["arch"] == "bnn-cnn"


class LyingSign(qnn.Sign):
    """A quantizer whose declared thresholds are not what its forward does."""

    thresholds = np.array([0.75])


def test_the_proof_fails_when_the_graph_is_not_the_model():
    _runtime()
    torch.manual_seed(3)
    model = _rand_bn(_seq(qnn.QConv2d(1, 8, 3, wq="int8"), nn.BatchNorm2d(8), LyingSign(), nn.Flatten(),
                          qnn.QLinear(8 * 36, 4)))
    x = torch.randint(0, 256, (20, 1, 8, 8), dtype=torch.uint8)
    with pytest.raises(ExportMismatchError, match=r"node '3'.*not at a threshold"):
        edgeq.export(model, x)
    assert edgeq.export(model, x, verify=False).report is None


def test_quantize_plain_sequential_cnn():
    """edgeq.quantize: nn.ReLU modules and the functional relu become calibrated QReLUs, float
    layers edgeq.nn layers with the same weights; the result exports with its proof, and the float
    model is left as it was."""
    _runtime()
    torch.manual_seed(4)
    fm = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 2, 3))
    _rand_bn(fm)
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    before = {k: v.clone() for k, v in fm.state_dict().items()}
    for wq, bits in (("int8", 8), ("twn", 2)):
        q = edgeq.quantize(fm, x, weights=wq, act_bits=bits)
        relus = [m for m in q.modules() if isinstance(m, qnn.QReLU)]
        assert len(relus) == 2 and all(r.clip > 0 and r.bits == bits for r in relus)
        assert any(isinstance(m, qnn.QLinear) and m.wq.name == wq for m in q.modules())
        res = edgeq.export(q, x)
        assert res.report["class_agreement"] == 1.0
        stage = "REQUANT" if bits >= 4 else "MULTI"  # uniform 8-bit levels: mul/add, not 255 thresholds
        assert [layer.out for layer in res.graph.layers if hasattr(layer, "out")] == [stage, stage, "AFFINE"]
    with torch.no_grad():
        q8 = edgeq.quantize(fm, x, act_bits=8)
        agree = (q8(x).argmax(1) == fm(x.float() / 255).argmax(1)).float().mean()
    assert agree >= 0.9  # int8 weights, 8-bit activations: close to the float model
    for k, v in fm.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(UnsupportedError, match="torch.fx cannot trace"):
        edgeq.quantize(_Untraceable(), x)


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.c(x)
        return x


class GapNet(nn.Module):
    """Conv -> quantizer -> global average pool -> linear, the head of ResNet-8 / DS-CNN."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.body = nn.Sequential(qnn.Input("RAW"), qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.BatchNorm2d(8),
                                  qnn.HWGQ(2, "uniform"), qnn.QConv2d(8, 16, 3, stride=2, padding=1, wq="twn"),
                                  nn.BatchNorm2d(16), qnn.Sign())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.avg = nn.AvgPool2d(4)
        self.fc = qnn.QLinear(16, 10, wq="dorefa2")
        self.conv1x1 = qnn.QConv2d(16, 10, 1, wq="sign")
        self.bn = nn.BatchNorm1d(10)

    def forward(self, x):
        x = self.body(x)
        if self.how == "adaptive":
            return self.bn(self.fc(torch.flatten(self.gap(x), 1)))
        if self.how == "mean":
            return self.bn(self.fc(x.mean((2, 3))))
        if self.how == "avgpool":
            return self.bn(self.fc(self.avg(x).flatten(1)))
        if self.how == "functional":
            return self.bn(self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        return self.conv1x1(self.gap(x)).flatten(1)  # a 1x1 conv after the pool


@pytest.mark.parametrize("how", ["adaptive", "mean", "avgpool", "functional", "conv1x1"])
def test_global_average_pool_before_a_linear_folds_exactly(how):
    Model = _runtime()
    torch.manual_seed(5)
    m = _rand_bn(GapNet(how))
    x = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    res = edgeq.export(m, x)
    assert res.report["class_agreement"] == 1.0
    last = res.graph.layers[-1]
    assert (last.kh, last.kw) == (4, 4)  # the linear's weights at every position of the 4x4 map
    cls, _ = Model(res.blob).predict(x.numpy())
    with torch.no_grad():
        np.testing.assert_array_equal(cls, m.double()(x).argmax(1).numpy())


@pytest.mark.parametrize("bad", ["avgpool into a linear", "mean over channels"])
def test_average_pools_that_do_not_fold_are_refused(bad):
    """An average (not a global pool right before a linear layer) is a pre-activation: a linear
    layer cannot read it without a quantizer; a mean over channels is no pool at all."""
    layers, pattern = {
        "avgpool into a linear": ([nn.AvgPool2d(2), nn.Flatten(), qnn.QLinear(8 * 16, 3)], "node '5'.*pre-activation"),
        "mean over channels": ([_Mean(1), nn.Flatten(), qnn.QLinear(64, 3)],
                               "node 'mean in 4.forward'.*not a global average pool")}[bad]
    m = _seq(qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.BatchNorm2d(8), qnn.Sign(), *layers).eval()
    with pytest.raises(UnsupportedError, match=pattern):
        edgeq.export(m, torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8))


class _Mean(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.mean(self.dim, keepdim=True)


def test_user_model_blobs_on_micropython_runtime():
    """The blobs of user models (GAP folded into a linear, a 1-D conv net, pool-before-quantizer)
    give the C runtime's scores in the MicroPython runtime too (edgeq_micro run by CPython), and
    the wasm MicroPython port when it is installed."""
    import sys

    Model = _runtime()
    sys.path.insert(0, "edgeq/micro")
    sys.path.insert(0, "tests/mp_harness")
    import edgeq_micro
    import mpwasm

    torch.manual_seed(6)
    cases = {
        "gap": (_rand_bn(GapNet("adaptive")), torch.randint(0, 256, (12, 1, 8, 8), dtype=torch.uint8)),
        "conv1d": (_rand_bn(nn.Sequential(qnn.Input("QUANT", 4), qnn.QConv1d(3, 8, 5, stride=2, wq="twn"),
                                          nn.BatchNorm1d(8), qnn.DoReFa(2), nn.Flatten(), qnn.QLinear(8 * 10, 4))),
                   torch.randint(0, 256, (12, 3, 23), dtype=torch.uint8)),
        "kw": (_rand_bn(KwFlatten()), torch.randint(0, 256, (12, 1, 8, 8), dtype=torch.uint8)),
    }
    with torch.no_grad():
        cases["kw"][0].body[3].weight.abs_()
    jobs, files, refs = [], {}, []
    for name, (m, x) in cases.items():
        res = edgeq.export(m, x)
        gin = export.graph_input(res.folded, x.numpy())
        cls, sc = Model(res.blob).predict(gin)
        mm = edgeq_micro.Model(res.blob)
        assert [mm.scores(gin[i].tobytes()) for i in range(len(gin))] == sc.tolist(), name
        files[f"{name}.eqb"], files[f"{name}.bin"] = res.blob, gin.tobytes()
        jobs.append({"blob": f"{name}.eqb", "inputs": f"{name}.bin", "n": len(gin)})
        refs.append((name, cls, sc))
    try:
        mpwasm.ensure_port()
    except mpwasm.PortMissing:
        return
    for (name, cls, sc), r in zip(refs, mpwasm.run_jobs(jobs, files)):
        assert r["ok"], f"{name}: {r}"
        assert r["scores"] == sc.tolist() and r["classes"] == cls.tolist(), name
