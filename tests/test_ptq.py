"""Post-training int8 (edgeq.quantize) with REQUANT stages: the folding matches the quantizer
within its proven bound, the blob is far smaller than with MULTI thresholds, and the C runtime
equals the exported graph's integer forward on MNIST."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgeq
from edgeq.errors import EdgeqError
from edgeq.format import pack
from edgeq.train import export

torch.set_num_threads(1)


def _codes(a, b, th, acc):
    """The quantizer's code #{i : a*acc + b >= th_i} (float64) per (channel, acc), and the
    distance of a*acc + b to the nearest threshold."""
    y = a[:, None] * acc[None, :] + b[:, None]
    code = np.searchsorted(th, y, side="right")
    near = np.minimum(np.abs(y - th[np.maximum(code - 1, 0)]), np.abs(y - th[np.minimum(code, len(th) - 1)]))
    return code, near


@pytest.mark.parametrize("bits", [4, 8])
def test_requant_is_the_quantizer_except_within_its_bound(bits):
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    bound = 20000
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    for _ in range(6):
        n = 24
        step = float(rng.uniform(0.01, 3.0))
        th = (np.arange(1, top + 1) - 0.5) * step + rng.uniform(-1, 1)
        a = rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-4, 0, n) * step
        a[:3] = 0.0  # constant channels
        b = rng.uniform(-2, 2, n) * top * step
        b[3] = 1e9 * step  # always top: constant over |acc| <= bound
        b[4] = -1e9 * step  # always 0
        mul, add, s = export._requant(a, b, th, step, bits, float(bound))
        assert 0 <= s <= 31 and np.all(np.abs(mul) < 2**31) and np.all(np.abs(add) < 2**31)
        got = np.clip((acc[None, :] * mul[:, None] + add[:, None]) >> s, 0, top)
        want, dist = _codes(a, b, th, acc)
        assert np.array_equal(got[:5], want[:5])  # constant channels: exact
        assert np.array_equal(mul[:5], np.zeros(5))
        diff = got != want
        assert np.all(np.abs(got - want) <= 1)
        tol = step * (0.5 * np.abs(acc)[None, :].repeat(n, 0) + 0.5) / 2.0**s
        assert np.all(dist[diff] <= tol[diff] * (1 + 1e-9) + 1e-12), "a difference outside the bound"
        assert diff.mean() < 0.01


def _float_cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def _runtime():
    try:
        from edgeq.native.runtime import Model
    except (ImportError, EdgeqError) as e:  # pragma: no cover
        pytest.skip(f"C host runtime not built: {e}")
    return Model


def test_ptq_int8_blob_size_and_c_equals_int_forward_on_mnist(mnist_test, monkeypatch, capsys):
    Model = _runtime()
    x, y = mnist_test
    x = x[:, None]
    xtr, ytr, xte, yte = x[:3000], y[:3000], x[6000:8000], y[6000:8000]
    torch.manual_seed(0)
    fm = _float_cnn()
    opt = torch.optim.Adam(fm.parameters(), lr=3e-3)
    xt, yt = torch.as_tensor(xtr.copy()).float() / 255, torch.as_tensor(ytr.astype(np.int64))
    for _ in range(2):
        fm.train()
        for idx in torch.randperm(len(xt)).split(64):
            loss = F.cross_entropy(fm(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    fm.eval()
    q = edgeq.quantize(fm, xtr[:500])
    res = edgeq.export(q, xte[:256])  # the proof: C == int_forward, float model within the bound
    assert [layer.out for layer in res.graph.layers if hasattr(layer, "out")] == ["REQUANT", "REQUANT", "AFFINE"]
    monkeypatch.setattr(export, "REQUANT_MIN_BITS", 9)  # the thresholds of before
    old = edgeq.export(q, xte[:256])
    assert [layer.out for layer in old.graph.layers if hasattr(layer, "out")] == ["MULTI", "MULTI", "AFFINE"]
    n_w = sum(layer.weight.size for layer in res.graph.layers if hasattr(layer, "weight"))
    with capsys.disabled():
        print(f"\nPTQ int8 (8-bit activations), {n_w:,} weights: blob {len(old.blob):,} B with MULTI "
              f"thresholds -> {len(res.blob):,} B with REQUANT (float32 weights: {4 * n_w:,} B); proof on "
              f"256 images: {res.report['threshold_ties']:,} of {256 * (16 * 28 * 28 + 32 * 14 * 14):,} "
              f"activations one code off the float model within the REQUANT bound "
              f"(MULTI: {old.report['threshold_ties']})")
    # 255 int32 thresholds per channel -> mul + add (8 bytes), 48 hidden channels
    saved = len(old.blob) - len(res.blob)
    assert 48 * (255 * 4 - 8) - 64 * 4 <= saved <= 48 * (255 * 4 - 8) + 64 * 4
    assert len(res.blob) < 1.2 * n_w < 0.4 * len(old.blob)  # int8 weights + 8 B per channel: ~1 byte a weight
    info = pack.blob_info(res.blob)
    assert sum(r.get("param_bytes", 0) for r in info["layers"][:-1]) == 48 * 8
    # C runtime == the exported graph's integer forward on 2,000 MNIST test images
    cls, scores = Model(res.blob).predict(xte)
    assert np.array_equal(np.asarray(scores, np.int64), res.scores(xte))
    acc_q, acc_old = (cls == yte).mean(), (Model(old.blob).predict(xte)[0] == yte).mean()
    with torch.no_grad():
        acc_f = (fm(torch.as_tensor(xte).float() / 255).argmax(1).numpy() == yte).mean()
    with capsys.disabled():
        print(f"MNIST 2,000 test images: float {100 * acc_f:.2f} %, PTQ int8 REQUANT {100 * acc_q:.2f} %, "
              f"MULTI {100 * acc_old:.2f} %")
    assert acc_q >= acc_f - 0.01 and abs(acc_q - acc_old) <= 0.005


def test_the_proof_catches_a_wrong_requant_stage(monkeypatch):
    """The REQUANT tolerance is a bound, not a pass: a stage one code off everywhere is refused."""
    _runtime()
    from edgeq.errors import ExportMismatchError

    torch.manual_seed(2)
    fm = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                       nn.Linear(8 * 8 * 8, 4))
    x = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
    q = edgeq.quantize(fm, x, act_bits=6)
    res = edgeq.export(q, x)
    assert res.graph.layers[0].out == "REQUANT" and res.graph.layers[0].out_bits == 6
    good = export._requant

    def off_by_one(*args):
        mul, add, s = good(*args)
        return mul, add + (1 << s), s

    monkeypatch.setattr(export, "_requant", off_by_one)
    with pytest.raises(ExportMismatchError, match="not at a threshold"):
        edgeq.export(q, x)
