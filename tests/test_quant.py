"""Quantizers: forward values and gradients against closed forms written in numpy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeq.train import quant as Q

torch.set_num_threads(1)


def _grad(fn, x, g):
    x = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    y.backward(torch.tensor(g, dtype=torch.float64))
    return y.detach().numpy(), x.grad.numpy()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_sign_zero_is_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-9, 3.0])
    assert Q.sign(x).tolist() == [-1, 1, 1, 1, 1]


def test_sign_ste_grad(rng):
    x = rng.normal(0, 1.5, 200)
    x[:3] = [1.0, -1.0, 0.0]  # boundaries: |x| <= 1 passes
    g = rng.normal(size=200)
    y, dx = _grad(Q.sign_ste, x, g)
    np.testing.assert_array_equal(y, np.where(x >= 0, 1, -1))
    np.testing.assert_array_equal(dx, g * (np.abs(x) <= 1))


def test_stochastic_sign_prob_and_grad(rng):
    x = rng.uniform(-2, 2, 100)
    u = rng.uniform(0, 1, 100)
    g = rng.normal(size=100)
    y, dx = _grad(lambda t: Q.stochastic_sign(t, u=torch.tensor(u)), x, g)
    p = np.clip((x + 1) / 2, 0, 1)
    np.testing.assert_array_equal(y, np.where(u < p, 1, -1))
    np.testing.assert_array_equal(dx, g * (np.abs(x) <= 1))
    # empirical probability
    xs = torch.full((20000,), 0.5, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    assert abs((Q.stochastic_sign(xs, generator=gen) > 0).double().mean().item() - 0.75) < 0.02


def test_quantize_k_and_dorefa_act(rng):
    x = rng.uniform(-0.5, 1.5, 300)
    x[:4] = [0.0, 1.0, 1 / 6, 0.5]
    g = rng.normal(size=300)
    for k in (1, 2, 3):
        n = 2**k - 1
        y, dx = _grad(lambda t, k=k: Q.dorefa_act(t, k), x, g)
        np.testing.assert_allclose(y, np.floor(np.clip(x, 0, 1) * n + 0.5) / n)
        np.testing.assert_allclose(dx, g * ((x >= 0) & (x <= 1)), rtol=1e-12)


def test_dorefa_weight_grad_closed_form(rng):
    w = rng.normal(0, 0.5, (4, 3))
    g = rng.normal(size=(4, 3))
    k = 2
    n = 2**k - 1
    y, dw = _grad(lambda t: Q.dorefa_weight(t, k), w, g)
    t = np.tanh(w)
    m = np.abs(t).max()
    mi = np.unravel_index(np.abs(t).argmax(), t.shape)
    np.testing.assert_allclose(y, 2 * np.floor((t / (2 * m) + 0.5) * n + 0.5) / n - 1)
    sech2 = 1 - t**2
    # q = 2 * (t/(2M) + 1/2) through the STE: dq_i/dw_j = d(t_i/M)/dw_j
    expect = g * sech2 / m
    expect[mi] += -np.sum(g * t) * np.sign(t[mi]) * sech2[mi] / m**2
    np.testing.assert_allclose(dw, expect, rtol=1e-10, atol=1e-12)
    # k = 1: E|w| * sign(w), straight-through
    y1, dw1 = _grad(lambda t: Q.dorefa_weight(t, 1), w, g)
    np.testing.assert_allclose(y1, np.abs(w).mean() * np.where(w >= 0, 1, -1))
    np.testing.assert_allclose(dw1, g * np.abs(w).mean())


def test_dorefa_grad_quantizer(rng):
    gr = rng.normal(size=(3, 5))
    noise = rng.uniform(-0.5, 0.5, (3, 5))
    k = 4
    n = 2**k - 1
    out = Q.dorefa_quantize_grad(torch.tensor(gr), k, noise=torch.tensor(noise)).numpy()
    m = np.abs(gr).max(axis=1, keepdims=True)
    x = np.clip(gr / (2 * m) + 0.5 + noise / n, 0, 1)
    np.testing.assert_allclose(out, 2 * m * (np.floor(x * n + 0.5) / n - 0.5))
    # the wrapper is identity forward, quantized gradient backward
    x = torch.zeros(3, 5, dtype=torch.float64, requires_grad=True)
    Q.quantize_grad(x, 8).backward(torch.tensor(gr))
    assert np.abs(x.grad.numpy() - gr).max() <= 2 * np.abs(gr).max() / 255 + 1e-12


def test_bwn_weight_grad_closed_form(rng):
    w = rng.normal(0, 0.8, (3, 2, 2, 2))
    g = rng.normal(size=w.shape)
    y, dw = _grad(Q.bwn_weight, w, g)
    wf = w.reshape(3, -1)
    gf = g.reshape(3, -1)
    s = np.where(wf >= 0, 1.0, -1.0)
    alpha = np.abs(wf).mean(1, keepdims=True)
    np.testing.assert_allclose(y.reshape(3, -1), alpha * s)
    k = wf.shape[1]
    expect = gf * alpha * (np.abs(wf) <= 1) + s / k * (gf * s).sum(1, keepdims=True)
    np.testing.assert_allclose(dw.reshape(3, -1), expect, rtol=1e-10)


def test_xnor_act_scale():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    k = Q.xnor_act_scale(x, 3, 3, 1, 1)
    a = x.abs().mean(1, keepdim=True)
    ref = F.avg_pool2d(F.pad(a, (1, 1, 1, 1)), 3, 1)
    torch.testing.assert_close(k, ref)


def test_twn_forward_and_ste(rng):
    w = rng.normal(0, 1, (4, 10))
    w[0, :3] = 0.0  # pruned zeros stay ternary zero
    g = rng.normal(size=w.shape)
    y, dw = _grad(Q.twn_weight, w, g)
    delta = 0.7 * np.abs(w).mean(1, keepdims=True)
    big = np.abs(w) > delta
    alpha = (np.abs(w) * big).sum(1, keepdims=True) / big.sum(1, keepdims=True)
    np.testing.assert_allclose(y, alpha * (np.sign(w) * big))
    assert (y[0, :3] == 0).all()
    np.testing.assert_array_equal(dw, g)
    iw = Q.TWNWeight().integer(torch.tensor(w).view(4, 10, 1, 1))
    np.testing.assert_allclose(iw.values.reshape(4, 10) * iw.scale[:, None], y)


def test_tern5_fit_is_lloyd_fixed_point(rng):
    w = torch.tensor(rng.normal(0, 1, (3, 64)))
    alpha = Q.tern5_fit(w, iters=50).reshape(3, 1)
    t = torch.floor(w / alpha + 0.5).clamp(-2, 2)
    torch.testing.assert_close(alpha, (w * t).sum(1, keepdim=True) / (t * t).sum(1, keepdim=True))
    y, dw = _grad(Q.tern5_weight, w.numpy(), np.ones((3, 64)))
    assert set(np.unique(np.round(y / alpha.numpy()))) <= {-2, -1, 0, 1, 2}
    np.testing.assert_array_equal(dw, 1)


def test_hwgq_levels_and_grad(rng):
    q = np.array(Q.hwgq_lloyd_levels(2))
    assert q[0] == 0 and np.all(np.diff(q) > 0)
    np.testing.assert_allclose(q, [0, 0.5606, 1.1881, 2.0334], atol=2e-4)
    # Lloyd-Max optimality: each level is the conditional mean of its cell (half-normal)
    from scipy import stats

    t = np.r_[(q[:-1] + q[1:]) / 2, np.inf]
    for i in range(1, 4):
        a, b = t[i - 1], t[i]
        cm = (stats.norm.pdf(a) - stats.norm.pdf(b)) / (stats.norm.cdf(b) - stats.norm.cdf(a))
        assert abs(cm - q[i]) < 1e-6
    assert abs(Q.hwgq_uniform_step(2) - 0.6508) < 2e-3
    act = Q.HWGQAct(2, "lloyd")
    lv = act.levels_int * act.scale
    x = rng.normal(0, 1.2, 400)
    x[:3] = [0.0, lv[-1], (lv[1] + lv[2]) / 2]
    g = rng.normal(size=400)
    y, dx = _grad(act, x, g)
    thr = (lv[:-1] + lv[1:]) / 2
    np.testing.assert_allclose(y, lv[(x[:, None] >= thr[None]).sum(1)])
    np.testing.assert_array_equal(dx, g * ((x > 0) & (x <= lv[-1])))
    assert (act.codes(torch.tensor(x)).numpy() == (x[:, None] >= thr[None]).sum(1)).all()


def test_int8_int16_and_integer_forms_match_forward(rng):
    w = torch.tensor(rng.normal(0, 0.3, (5, 3, 3, 3)))
    for q in (Q.SignWeight(), Q.BWNWeight(), Q.TWNWeight(), Q.Tern5Weight(), Q.DoReFaWeight(1),
              Q.DoReFaWeight(2), Q.DoReFaWeight(3), Q.Int8Weight(), Q.Int16Weight()):
        iw = q.integer(w)
        real = q(w).detach().numpy()
        np.testing.assert_allclose(iw.values * iw.scale.reshape(-1, 1, 1, 1), real, rtol=1e-6, atol=1e-9,
                                   err_msg=q.name)
        if iw.codes is not None:
            np.testing.assert_array_equal(iw.table[iw.codes], iw.values)


def test_quantized_layers_equal_float_layers_on_signed_values(rng):
    x = torch.tensor(rng.normal(size=(2, 4, 6, 6)), dtype=torch.float32)
    conv = Q.QConv2d(4, 5, 3, padding=1, wq="sign")
    ref = F.conv2d(Q.sign(x), Q.sign(conv.weight), padding=1)
    torch.testing.assert_close(conv(Q.sign(x)), ref)
    lin = Q.QLinear(12, 7, wq="sign")
    xl = torch.tensor(rng.normal(size=(3, 12)), dtype=torch.float32)
    torch.testing.assert_close(lin(Q.sign(xl)), F.linear(Q.sign(xl), Q.sign(lin.weight)))
    # and a SignAct fed into it is the same as sign
    torch.testing.assert_close(Q.SignAct()(x), Q.sign(x))


def test_clip_latent_weights():
    m = torch.nn.Sequential(Q.QConv2d(1, 2, 3, wq="sign"), Q.QConv2d(2, 2, 1, wq="twn"))
    with torch.no_grad():
        m[0].weight.fill_(3.0)
        m[1].weight.fill_(3.0)
    Q.clip_latent_weights(m)
    assert m[0].weight.max() == 1.0 and m[1].weight.max() == 3.0


def test_ap2_shift_bn_and_shift_adamax():
    x = torch.tensor([0.3, -5.0, 1.0, 0.7])
    assert Q.ap2(x).tolist() == [0.25, -4.0, 1.0, 0.5]
    bn = Q.ShiftBatchNorm2d(3)
    xi = torch.randn(8, 3, 4, 4) * 3 + 1
    bn.train()
    for _ in range(50):
        bn(xi)
    bn.eval()
    g, h = Q.bn_affine_terms(bn)
    y = bn(xi).detach().double().numpy()
    np.testing.assert_allclose(y, g.reshape(1, -1, 1, 1) * xi.double().numpy() + h.reshape(1, -1, 1, 1),
                               rtol=1e-5, atol=1e-5)
    assert np.allclose(np.log2(np.abs(g)), np.round(np.log2(np.abs(g))))
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = Q.ShiftAdaMax([p], lr=0.01)
    p.grad = torch.tensor([0.5, -2.0])
    opt.step()
    # t=1: m = 0.1 g, v = |g|; step AP2(0.01/0.1) = 0.125; update = 0.125 * 0.1 g * AP2(1/|g|)
    expect = torch.tensor([1.0 - 0.125 * 0.05 * 2.0, -1.0 + 0.125 * 0.2 * 0.5])
    torch.testing.assert_close(p.detach(), expect)


def test_alternating_fit_never_worse(rng):
    x = torch.tensor(rng.normal(size=(200, 12)))
    wt = torch.tensor(rng.normal(size=(3, 12)))
    y = x @ wt.T
    b0 = torch.where(wt >= 0, 1.0, -1.0).double()
    a0 = ((y * (x @ b0.T)).sum(0) / ((x @ b0.T) ** 2).sum(0))
    loss0 = ((y - (x @ b0.T) * a0) ** 2).sum()
    alpha, b = Q.alternating_fit(x, y, b0, iters=4)
    loss1 = ((y - (x @ b.double().T) * alpha.double()) ** 2).sum()
    assert set(b.unique().tolist()) <= {-1.0, 1.0}
    assert loss1 <= loss0 + 1e-6
