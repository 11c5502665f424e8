"""edgeq.export of branching models (blob 1.1): residual adds, torch.cat, average and global
average pools, grouped / depthwise convolutions, per-axis stride and padding, 1-D padding.

Every export here is proved by `edgeq.export` itself (the runtime's scores equal the exported
graph's integer forward `int_forward` bit for bit; the model's float64 eval forward gives the
graph's activation at every quantizer except within rounding of a threshold), and the tests add
the numpy reference (`edgeq.reference.refnet`) and torch's eval classes.  The runtime is the C host
runtime where it loads 1.1 blobs, else refnet (until the C runtime for blob 1.1 is in the tree)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgeq
import edgeq.nn as qnn
from edgeq.errors import EdgeqError, UnsupportedError
from edgeq.format import pack
from edgeq.reference import refnet
from edgeq.train import export, models
from test_own_model import _rand_bn, _train, mnist  # noqa: F401 - mnist is a fixture

torch.set_num_threads(1)


def _c_loads(blob) -> bool:
    try:
        from edgeq.native.runtime import Model

        Model(blob)
        return True
    except (ImportError, EdgeqError):
        return False


def _refnet_scores(blob, gin):
    s, c = refnet.run(pack.read_blob(blob), gin)
    return c, s


@pytest.fixture
def prove(monkeypatch):
    """export + proof; the runtime is C when it loads the blob, refnet otherwise.  Returns
    (result, runtime name) after checking refnet == int_forward on the example batch too."""

    def run(model, x, **kw):
        x = torch.as_tensor(x)
        res = edgeq.export(model, x, verify=False, **kw)
        on_c = _c_loads(res.blob)
        if not on_c:
            monkeypatch.setattr(export, "_blob_scores", _refnet_scores)
        res.report = export.verify_blob(model, res.folded, res.blob, x)
        gin = export.graph_input(res.folded, x.numpy())
        ref, _ = refnet.run(pack.read_blob(res.blob), gin[:16])
        np.testing.assert_array_equal(ref, res.scores(x[:16]))
        assert res.report["class_agreement"] == 1.0
        with torch.no_grad():  # torch's own eval forward (float64) gives the blob's classes
            np.testing.assert_array_equal(model.double()(x).argmax(1).numpy(), res.predict(x))
        model.float()
        return res, "C" if on_c else "refnet"

    return run


def _kinds(res) -> list:
    return [type(layer).__name__ for layer in res.graph.layers]


# ---------------------------------------------------------------------------------------------
# per-op models: a small stem, the construct, a linear head
class Net(nn.Module):
    def __init__(self, body, c=8, head_in=None, n=5, inp="RAW", stem_act=None):
        super().__init__()
        self.inp = qnn.Input(inp)
        self.stem = qnn.QConv2d(1, c, 3, padding=1, wq="int8")
        self.bn0 = nn.BatchNorm2d(c)
        self.act0 = stem_act or qnn.Sign()
        self.body = body
        self.fc = qnn.QLinear(head_in or c * 64, n, wq="sign")
        self.bn = nn.BatchNorm1d(n)

    def forward(self, x):
        x = self.act0(self.bn0(self.stem(self.inp(x))))
        return self.bn(self.fc(torch.flatten(self.body(x), 1)))


class Fn(nn.Module):
    """body(x) = fn(self, x) with the given submodules."""

    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def cbq(cin, cout, k=3, act=None, **kw):
    """conv -> batch norm -> quantizer (act=False: conv -> batch norm only)."""
    layers = [qnn.QConv2d(cin, cout, k, **kw), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([] if act is False else [act or qnn.Sign()]))


CASES = {
    # residual adds: conv branch + quantized skip, two quantized values, two conv branches,
    # a sum read twice (an int32 value: Bi-Real style), operator / torch / method forms
    "add conv+skip": lambda: Net(Fn(lambda s, x: s.q(s.b(x) + x), b=cbq(8, 8, act=False, padding=1), q=qnn.Sign())),
    "add two quantized": lambda: Net(Fn(lambda s, x: s.q(s.bn(x + s.b(x))), b=cbq(8, 8, padding=1, act=qnn.DoReFa(2)),
                                        bn=nn.BatchNorm2d(8), q=qnn.Sign())),
    "add two conv branches": lambda: Net(Fn(lambda s, x: s.q(torch.add(s.a(x), s.b(x))),
                                            a=cbq(8, 16, 3, act=False, padding=1, stride=2),
                                            b=cbq(8, 16, 1, act=False, stride=2), q=qnn.Sign()), head_in=16 * 16),
    "add read twice": lambda: Net(Fn(_bireal, a=cbq(8, 8, act=False, padding=1), b=cbq(8, 8, act=False, padding=1),
                                     q0=qnn.Sign(), q1=qnn.Sign(), q2=qnn.DoReFa(2))),
    "add method and iadd": lambda: Net(Fn(_iadd, a=cbq(8, 8, act=False, padding=1), q=qnn.HWGQ(2, "uniform"))),
    "add of max-pooled branches": lambda: Net(Fn(lambda s, x: s.q(F.max_pool2d(s.a(x), 2) + s.p(x)),
                                                 a=cbq(8, 8, act=False, padding=1), p=nn.MaxPool2d(2), q=qnn.Sign()),
                                              head_in=8 * 16),
    "add after bn of a sum": lambda: Net(Fn(lambda s, x: s.q(s.bn(s.a(x) + x)), a=cbq(8, 8, act=False, padding=1),
                                            bn=nn.BatchNorm2d(8), q=qnn.DoReFa(3))),
    # concatenation along channels
    "cat B1": lambda: Net(Fn(lambda s, x: torch.cat([x, s.a(x)], 1), a=cbq(8, 8, padding=1)), head_in=16 * 64),
    "cat U8 three": lambda: Net(Fn(lambda s, x: torch.cat((x, s.a(x), s.b(x)), dim=-3),
                                   a=cbq(8, 4, padding=1, act=qnn.DoReFa(2)),
                                   b=cbq(8, 4, 1, act=qnn.DoReFa(2))), head_in=16 * 64, stem_act=qnn.DoReFa(2)),
    "cat of sums": lambda: Net(Fn(lambda s, x: s.q(s.bn(torch.cat([s.a(x) + x, s.b(x)], 1))),
                                  a=cbq(8, 8, act=False, padding=1), b=cbq(8, 4, act=False, padding=1),
                                  bn=nn.BatchNorm2d(12), q=qnn.Sign()), head_in=12 * 64),
    "cat of two stems on the input": lambda: _TwoStems(),
    "add as the scores": lambda: _Heads("add"),
    "avgpool as the scores": lambda: _Heads("gap"),
    # average pools: AVGPOOL with thresholds (1/k folded), global pool into a linear (tiled
    # weights) or into a quantizer, adaptive pools with equal windows, a mean
    "avgpool + bn + sign": lambda: Net(Fn(lambda s, x: s.q(s.bn(s.p(x))), p=nn.AvgPool2d(2), bn=nn.BatchNorm2d(8),
                                          q=qnn.Sign()), head_in=8 * 16),
    "avg_pool2d 3 stride 1 (U8)": lambda: Net(Fn(lambda s, x: s.q(s.bn(F.avg_pool2d(x, 3, 1))), bn=nn.BatchNorm2d(8),
                                                 q=qnn.DoReFa(2)), head_in=8 * 36, stem_act=qnn.DoReFa(2)),
    "avgpool of a conv": lambda: Net(Fn(lambda s, x: s.q(s.p(s.a(x))), a=cbq(8, 8, act=False, padding=1),
                                        p=nn.AvgPool2d((2, 4)), q=qnn.Sign()), head_in=8 * 8),
    "gap + bn + sign": lambda: Net(Fn(lambda s, x: s.q(s.bn(s.p(x))), p=nn.AdaptiveAvgPool2d(1), bn=nn.BatchNorm2d(8),
                                      q=qnn.Sign()), head_in=8),
    "mean into a linear": lambda: Net(Fn(lambda s, x: x.mean((2, 3))), head_in=8),
    "adaptive 2x2": lambda: Net(Fn(lambda s, x: s.q(s.bn(F.adaptive_avg_pool2d(x, 2))), bn=nn.BatchNorm2d(8),
                                   q=qnn.Sign()), head_in=8 * 4),
    "bn + quantizer on a quantized value": lambda: Net(Fn(lambda s, x: s.q(s.bn(x)), bn=nn.BatchNorm2d(8),
                                                          q=qnn.DoReFa(2))),
    # grouped / depthwise convolutions, every weight encoding
    "groups 2": lambda: Net(cbq(8, 8, padding=1, groups=2)),
    "depthwise twn": lambda: Net(cbq(8, 8, padding=1, groups=8, wq="twn")),
    "depthwise x2 int8": lambda: Net(cbq(8, 16, padding=1, groups=8, wq="int8"), head_in=16 * 64),
    "depthwise dorefa2 on U8": lambda: Net(cbq(8, 8, padding=1, groups=8, wq="dorefa2"), stem_act=qnn.DoReFa(2)),
    "depthwise on hwgq": lambda: Net(cbq(8, 8, padding=1, groups=8, wq="sign"), stem_act=qnn.HWGQ(2)),
    "depthwise float": lambda: Net(cbq(8, 8, padding=1, groups=8, wq="float"), stem_act=qnn.DoReFa(2)),
    # dilation: the kernel with zero weights between its taps
    "dilation 2 twn": lambda: Net(cbq(8, 8, padding=2, dilation=2, wq="twn")),
    "dilation (1, 2) same int8 on U8": lambda: Net(cbq(8, 8, padding="same", dilation=(1, 2), wq="int8"),
                                                   stem_act=qnn.DoReFa(2)),
    "dilation 2 depthwise float": lambda: Net(cbq(8, 8, 3, padding=2, dilation=2, groups=8, wq="float"),
                                              stem_act=qnn.DoReFa(2)),
    "dilation 2 ternary on hwgq (lut)": lambda: Net(cbq(8, 8, 2, padding="same", dilation=2, wq="tern5"),
                                                    stem_act=qnn.HWGQ(2)),
    # per-axis stride and padding
    "stride (1, 2)": lambda: Net(cbq(8, 8, padding=1, stride=(1, 2)), head_in=8 * 32),
    "padding same 5x5": lambda: Net(cbq(8, 8, 5, padding="same", wq="tern5")),
    "kernel (3, 5) padding (1, 2)": lambda: Net(cbq(8, 8, (3, 5), padding=(1, 2))),
    "kernel (1, 3) stride (2, 1) padding (0, 1)": lambda: Net(cbq(8, 8, (1, 3), padding=(0, 1), stride=(2, 1)),
                                                               head_in=8 * 32),
    "maxpool (2, 1)": lambda: Net(nn.MaxPool2d((2, 1)), head_in=8 * 32),
}


class _TwoStems(nn.Module):
    """The input read by two convolutions (value 0 read twice), their outputs concatenated."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.Input("QUANT", 4)
        self.a = nn.Sequential(qnn.QConv2d(1, 4, 3, padding=1, wq="int8"), nn.BatchNorm2d(4), qnn.Sign())
        self.b = nn.Sequential(qnn.QConv2d(1, 4, 5, padding=2, wq="twn"), nn.BatchNorm2d(4), qnn.Sign())
        self.fc = qnn.QLinear(8 * 64, 5)

    def forward(self, x):
        x = self.inp(x)
        return self.fc(torch.cat([self.a(x), self.b(x)], 1).flatten(1))


class _Heads(nn.Module):
    """Scores that are a sum of two linear heads, or the global average of 1x1-conv class maps
    (an all-convolutional net): the last layer is an ADD / AVGPOOL."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.body = nn.Sequential(qnn.Input("RAW"), qnn.QConv2d(1, 8, 3, padding=1, wq="int8"), nn.BatchNorm2d(8),
                                  qnn.Sign())
        self.fa, self.fb = qnn.QLinear(8 * 64, 5, wq="twn"), qnn.QLinear(8 * 64, 5, wq="int8")
        self.bn = nn.BatchNorm1d(5)
        self.cls = qnn.QConv2d(8, 5, 1, wq="int8", bias=True)

    def forward(self, x):
        x = self.body(x)
        if self.how == "add":
            f = x.flatten(1)
            return self.fa(f) + self.bn(self.fb(f))
        return self.cls(x).mean((2, 3))


def _bireal(s, x):
    y = s.a(x) + x  # an int32 sum, read by a quantizer and by the next add
    z = s.b(s.q0(y)) + y
    return s.q1(z)


def _iadd(s, x):
    y = s.a(x)
    y += x.add(x)  # x.add(x): a sum of two quantized values, then an in-place add
    return s.q(y)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dag_op_exports_exactly(case, prove):
    torch.manual_seed(sorted(CASES).index(case))
    model = _rand_bn(CASES[case]())
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    res, _ = prove(model, x)
    kinds = _kinds(res)
    want = {"add": "Add", "cat": "Concat", "avg": "AvgPool", "gap": "AvgPool", "adaptive": "AvgPool",
            "bn + quantizer": "AvgPool"}
    for key, kind in want.items():
        if case.startswith(key):
            assert kind in kinds, (case, kinds)
    if "groups" in case or "depthwise" in case:
        assert any(getattr(layer, "groups", 1) > 1 for layer in res.graph.layers)
    if case in ("add conv+skip", "add two conv branches"):
        # a convolution read only by the add stores its accumulator as is (identity AFFINE): the
        # rescaling is the ADD's multiplier, no intermediate rounding and no stage to run
        layers = res.graph.layers
        adds = [i for i, layer in enumerate(layers) if type(layer).__name__ == "Add"]
        feeding = {v - 1 for i in adds for v in layers[i].src if v > 0}  # value v = layer v - 1's output
        raw = [j for j in feeding if type(layers[j]).__name__ == "Conv" and layers[j].out == "AFFINE"]
        assert raw, (case, kinds)
        for j in raw:
            c = layers[j]
            assert c.shift == 0 and np.all(np.asarray(c.mul) == 1) and np.all(np.asarray(c.add) == 0), (case, j)


class FloatResNet(nn.Module):
    """A plain float CNN with a residual add, a depthwise conv and a global average pool."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.dw, self.b3 = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.relu(self.b2(self.c2(x)) + x)
        x = F.relu(self.b3(self.dw(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_quantized_float_resnet_exports(prove):
    """edgeq.quantize of a float model with a residual add and a depthwise conv: the QReLU after
    the add becomes the ADD's thresholds."""
    torch.manual_seed(12)
    fm = _rand_bn(FloatResNet())
    x = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8)
    q = edgeq.quantize(fm, x, act_bits=2)
    res, _ = prove(q, x)
    assert _kinds(res) == ["Conv", "Conv", "Add", "Conv", "Conv"]
    assert res.graph.layers[2].out in ("MULTI", "REQUANT") and res.graph.layers[3].groups == 8


@pytest.mark.parametrize("ternary", ["dense", "sparse"])
def test_depthwise_ternary_storage(ternary, prove):
    """A depthwise ternary layer stored as bit-planes (TERN) or skip-zero stream (TERN_SPARSE)."""
    torch.manual_seed(11)
    model = _rand_bn(Net(cbq(8, 8, padding=1, groups=8, wq="twn"), stem_act=qnn.DoReFa(2)))
    res, _ = prove(model, torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), ternary=ternary)
    assert res.graph.layers[1].w_enc == {"dense": "TERN", "sparse": "TERN_SPARSE"}[ternary]
    assert res.graph.layers[1].groups == 8


def test_blob_version_is_1_1_only_when_needed():
    """A chain with square strides/padding (1-D strides included: one row) stays a 1.0 blob; a
    residual add, groups or a per-axis stride make it 1.1."""
    x2, x1 = torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 23, dtype=torch.uint8)
    minor = lambda m, x: pack.read_header(export.export_blob(_rand_bn(m), example=x))["version_minor"]
    chain1d = _seq1d(qnn.QConv1d(3, 8, 5, stride=2, wq="int8"), nn.BatchNorm1d(8), qnn.Sign(),
                     nn.Flatten(), qnn.QLinear(8 * 10, 4))
    assert minor(chain1d, x1) == 0
    assert minor(Net(cbq(8, 8, padding=1)), x2) == 0
    assert minor(CASES["add conv+skip"](), x2) == 1
    assert minor(CASES["depthwise twn"](), x2) == 1
    assert minor(CASES["stride (1, 2)"](), x2) == 1


def test_stride_1_2_is_not_stride_1():
    """A (1, 2) stride is exported as such (it used to be exported as stride 1)."""
    model = _rand_bn(Net(cbq(8, 8, padding=1, stride=(1, 2)), head_in=8 * 32))
    g = export.to_graph(model, example=torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    conv = g.layers[1]
    assert (conv.stride, conv.sw, conv.pad, conv.pw) == (1, 2, 1, 1)


def _seq1d(*layers):
    return nn.Sequential(qnn.Input("QUANT", 4), *layers)


CASES_1D = {
    "conv1d padding": lambda: _seq1d(qnn.QConv1d(3, 8, 5, padding=2, wq="int8"), nn.BatchNorm1d(8), qnn.Sign(),
                                     qnn.QConv1d(8, 8, 3, padding="same", wq="twn"), nn.BatchNorm1d(8), qnn.Sign(),
                                     nn.Flatten(), qnn.QLinear(8 * 23, 4)),
    "conv1d dilation": lambda: _seq1d(qnn.QConv1d(3, 8, 3, padding=2, dilation=2, wq="int8"), nn.BatchNorm1d(8),
                                      qnn.Sign(), nn.Flatten(), qnn.QLinear(8 * 23, 4)),
    "conv1d groups, stride, pools": lambda: _seq1d(
        qnn.QConv1d(3, 6, 3, padding=1, wq="int8"), nn.BatchNorm1d(6), qnn.DoReFa(2),
        qnn.QConv1d(6, 6, 3, stride=2, padding=1, groups=6, wq="dorefa2"), nn.BatchNorm1d(6), qnn.DoReFa(2),
        nn.MaxPool1d(2), nn.AvgPool1d(3, 1), nn.BatchNorm1d(6), qnn.Sign(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
        qnn.QLinear(6, 4)),
}


@pytest.mark.parametrize("case", sorted(CASES_1D))
def test_conv1d_ops_export_exactly(case, prove):
    torch.manual_seed(7)
    model = _rand_bn(CASES_1D[case]())
    res, _ = prove(model, torch.randint(0, 256, (30, 3, 23), dtype=torch.uint8))
    assert res.graph.input_shape == (3, 1, 23)
    conv = res.graph.layers[0]
    if case == "conv1d padding":
        assert (conv.pad, conv.pw) == (0, 2)


class SkipBlock(models.QBlock):
    """A QBlock subclass whose forward adds a skip connection (the silent-drop case of issue 14)."""

    def forward(self, x):
        return self.act(self.bn(self.conv(x)) + x)


def test_qnet_with_skip_block_exports_the_skip(prove):
    """The skip is in the graph (an ADD), the QNet's eval forward (the exported graph) is the blob,
    and the model's float forward agrees (edgeq.export's proof)."""
    m = models.build_model("bnn-cnn", (1, 8, 8), list(range(10)))
    m.blocks.insert(1, SkipBlock(32, 32, 3, pad=1, wq="sign", act=models._act("sign")))
    _rand_bn(m)
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    res, _ = prove(m, x)
    assert _kinds(res)[:3] == ["Conv", "Conv", "Add"] and res.graph.layers[1].out == "AFFINE"
    assert res.graph.layers[2].src == (2, 1)  # the conv branch + the first block's output
    np.testing.assert_array_equal(res.scores(x), m(x).numpy().astype(np.int64))  # QNet eval == graph


# ---------------------------------------------------------------------------------------------
# what is refused: UnsupportedError naming the node and why
class _Sub(nn.Module):
    def __init__(self, fn, act=None, cin=8):
        super().__init__()
        self.net = Net(Fn(fn, a=cbq(8, 8, act=act, padding=1), f=qnn.QConv2d(8, 8, 3, padding=1, wq="float"),
                          bn=nn.BatchNorm2d(8), q=qnn.Sign(), d=qnn.DoReFa(2)))

    def forward(self, x):
        return self.net(x)


REFUSED = {
    "subtraction": (lambda s, x: s.q(s.a(x) - x), False, r"node 'sub in net.body.forward'.*arithmetic"),
    "torch.stack": (lambda s, x: torch.stack([x, x], 1).flatten(1, 2), None, r"node 'stack.*'.*only torch.cat"),
    "cat along width": (lambda s, x: torch.cat([x, s.a(x)], 3)[..., :8], None, r"node 'cat.*'.*concatenates channels"),
    "add with a constant": (lambda s, x: s.q(s.a(x) + 1.0), False, r"node 'add.*'.*only the sum of two tensors"),
    "add with alpha": (lambda s, x: s.q(torch.add(s.a(x), x, alpha=2)), False, r"node 'add.*'.*alpha"),
    "conv of a sum": (lambda s, x: s.q(s.bn(s.a(x + x))), None,
                      r"node 'net.body.a.0'.*pre-activation of 'net.body.add'"),
    "cat of different scales": (lambda s, x: torch.cat([s.d(x), s.h(s.bn(x))], 1)[:, :8], None,
                                r"node 'cat.*'.*different levels/scales"),
    "float layer into an add": (lambda s, x: s.q(s.bn(s.f(s.d(x))) + x), None,
                                r"node 'add.*'.*float \(F32\) layer 'net.body.f'"),
    "avgpool of non-uniform levels": (lambda s, x: s.q(s.bn(F.avg_pool2d(s.h(x), 1))), None, r"non-uniform levels"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_dag_constructs_that_are_refused(case):
    fn, act, pattern = REFUSED[case]
    m = _Sub(fn, act)
    m.net.body.h = qnn.HWGQ(2)
    _rand_bn(m)
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with pytest.raises(UnsupportedError, match=pattern):
        edgeq.export(m, x)


def test_layer_arguments_refused_at_construction():
    with pytest.raises(UnsupportedError, match="padding='same' needs stride 1"):
        qnn.QConv2d(8, 8, 3, stride=2, padding="same")
    with pytest.raises(UnsupportedError, match="groups=3 must be a positive int dividing"):
        qnn.QConv2d(8, 8, 3, groups=3)


# ---------------------------------------------------------------------------------------------
# user-style models trained on MNIST
class ResBinaryCNN(nn.Module):
    """A residual binary CNN as a user writes it: an int8 stem on raw pixels, a residual block
    with an identity skip, a strided block whose shortcut is a strided 1x1 conv, global average
    pool and a binary linear layer."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.Input("RAW")
        self.stem = qnn.QConv2d(1, 16, 3, padding=1, stride=2, wq="int8")
        self.bn0 = nn.BatchNorm2d(16)
        self.act0 = qnn.Sign()
        self.conv1 = qnn.QConv2d(16, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.Sign()
        self.conv2 = qnn.QConv2d(16, 32, 3, padding=1, stride=2)
        self.bn2 = nn.BatchNorm2d(32)
        self.short = qnn.QConv2d(16, 32, 1, stride=2)
        self.bns = nn.BatchNorm2d(32)
        self.act2 = qnn.Sign()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = qnn.QLinear(32, 10)
        self.bn3 = nn.BatchNorm1d(10)

    def forward(self, x):
        x = self.act0(self.bn0(self.stem(self.inp(x))))  # 14x14
        x = self.act1(self.bn1(self.conv1(x)) + x)  # identity skip
        x = self.act2(self.bn2(self.conv2(x)) + self.bns(self.short(x)))  # 7x7, projection shortcut
        return self.bn3(self.fc(torch.flatten(self.pool(x), 1)))


class DSCNN(nn.Module):
    """A depthwise-separable CNN (DS-CNN style): depthwise 3x3 + pointwise 1x1 blocks, an average
    pool between them, ternary and binary weights, 2-bit activations, global average pool."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.Input("RAW")
        self.stem = qnn.QConv2d(1, 16, 3, padding="same", wq="int8")
        self.bn0 = nn.BatchNorm2d(16)
        self.act0 = qnn.DoReFa(2)
        self.dw1 = qnn.QConv2d(16, 16, 3, padding=1, groups=16, wq="twn")
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = qnn.DoReFa(2)
        self.pw1 = qnn.QConv2d(16, 32, 1, wq="sign")
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.AvgPool2d(2)
        self.bnp = nn.BatchNorm2d(32)
        self.act2 = qnn.Sign()
        self.dw2 = qnn.QConv2d(32, 32, 3, stride=2, padding=1, groups=32, wq="twn")
        self.bn3 = nn.BatchNorm2d(32)
        self.act3 = qnn.DoReFa(2)
        self.pw2 = qnn.QConv2d(32, 64, 1, wq="sign")
        self.bn4 = nn.BatchNorm2d(64)
        self.act4 = qnn.Sign()
        self.fc = qnn.QLinear(64, 10, wq="sign")
        self.bn5 = nn.BatchNorm1d(10)

    def forward(self, x):
        x = self.act0(self.bn0(self.stem(self.inp(x))))
        x = self.act1(self.bn1(self.dw1(x)))
        x = self.act2(self.bnp(self.pool(self.bn2(self.pw1(x)))))  # 14x14: average of pre-activations
        x = self.act3(self.bn3(self.dw2(x)))  # 7x7
        x = self.act4(self.bn4(self.pw2(x)))
        return self.bn5(self.fc(x.mean((2, 3))))


@pytest.mark.parametrize("net", [ResBinaryCNN, DSCNN])
def test_user_dag_cnn_on_mnist_equals_torch_eval(net, mnist, prove):  # noqa: F811 - the fixture
    """Trained a few steps on MNIST, exported; the runtime's classes and scores equal int_forward
    and torch's eval forward on every test image used."""
    xtr, ytr, xte, yte = mnist
    torch.manual_seed(0)
    model = _train(net(), xtr, ytr, steps=200, lr=5e-3)
    res, runtime = prove(model, xte)
    gin = export.graph_input(res.folded, xte)
    cls, scores = export._blob_scores(res.blob, gin) if runtime == "C" else _refnet_scores(res.blob, gin)
    np.testing.assert_array_equal(scores, res.scores(xte))
    with torch.no_grad():
        t64 = model.double()(torch.as_tensor(xte)).argmax(1).numpy()
    np.testing.assert_array_equal(cls, t64)
    acc = float((cls == yte).mean())
    kinds = _kinds(res)
    print(f"{net.__name__}: {len(xte)} MNIST test images, {runtime} runtime == int_forward == torch eval "
          f"(float64 classes) on all; accuracy {100 * acc:.1f}% after 200 steps; layers {kinds}; "
          f"report {res.report}")
    assert acc > 0.4  # 200 steps of a small binary net: far above chance (10 %)
    assert ("Add" in kinds) if net is ResBinaryCNN else ("AvgPool" in kinds)
