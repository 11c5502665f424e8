"""Quantizers for extremely low-bit training: pure torch autograd functions plus thin modules.

Bottom layer: pure functions with custom gradients.  Every docstring states the forward function
*and* the (pseudo-)gradient used in backward, with the paper it comes from.  The thin classes only
hold configuration (bits, levels) and know the *integer form* of what they produce, which is what
`edgeq.export` writes into the graph:

* weight quantizers (`SignWeight`, `BWNWeight`, `TWNWeight`, `Tern5Weight`, `DoReFaWeight`,
  `Int8Weight`) have ``integer(w) -> IntWeights``: integer weight values `v` and a positive
  per-output-channel scale `s` with ``forward(w) == v * s[n]`` (up to float rounding), plus, for
  k-bit codes, the code -> value table;
* activation quantizers (`SignAct`, `DoReFaAct`, `HWGQAct`) produce codes ``0 .. 2**bits - 1``
  (B1: bit 1 = +1) whose *integer levels* ``levels_int[code]`` times ``scale`` are the real values
  the next layer sees, and ``thresholds`` (real, on the pre-activation) such that
  ``code = #{i : y >= thresholds[i]}``.  Non-uniform levels (HWGQ Lloyd-Max) are fixed point
  (``round(q * 2**FRAC_BITS)``) in training *and* eval, so the integer LUT of the next layer is
  exact.

Conventions (docs/blob-format.md): ``sign(0) = +1``; rounding is ``floor(x + 0.5)`` (never
half-to-even) so the folded integer thresholds reproduce it exactly.

Papers:
  [BNN]    Hubara, Courbariaux et al., "Binarized Neural Networks", NeurIPS 2016 (and arXiv:1602.02830).
  [XNOR]   Rastegari et al., "XNOR-Net: ImageNet Classification Using Binary CNNs", ECCV 2016.
  [TWN]    Li, Zhang, Liu, "Ternary Weight Networks", arXiv:1605.04711.
  [DoReFa] Zhou et al., "DoReFa-Net: Training Low Bitwidth CNNs with Low Bitwidth Gradients",
           arXiv:1606.06160.
  [HWGQ]   Cai, He, Sun, Vasconcelos, "Deep Learning with Low Precision by Half-wave Gaussian
           Quantization", CVPR 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedError

FRAC_BITS = 6  # fixed-point fraction bits of non-uniform activation levels (HWGQ Lloyd-Max)


# =============================================================================================
# Pure functions with custom gradients
# =============================================================================================
def sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 (no gradient defined; use `sign_ste` in training)."""
    return (x >= 0).to(x.dtype).mul_(2).sub_(1)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        return sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.clip is None:
            return g, None
        return g.masked_fill(x.abs() > ctx.clip, 0.0), None


def sign_ste(x: torch.Tensor, clip: float | None = 1.0) -> torch.Tensor:
    """Deterministic binarization [BNN eq. 1].

    forward:  q = sign(x) = +1 if x >= 0 else -1
    backward: dL/dx = dL/dq * 1{|x| <= clip}   (straight-through estimator of hardtanh, [BNN] eq. 4;
              ``clip=None`` passes the gradient unchanged)
    """
    return _SignSTE.apply(x, clip)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """sigma(x) = clip((x + 1) / 2, 0, 1)  [BNN eq. 3]."""
    return ((x + 1) / 2).clamp(0, 1)


class _StochasticSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, u):
        ctx.save_for_backward(x)
        return torch.where(u < hard_sigmoid(x), torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype), None


def stochastic_sign(x: torch.Tensor, generator: torch.Generator | None = None,
                    u: torch.Tensor | None = None) -> torch.Tensor:
    """Stochastic binarization [BNN eq. 2].

    forward:  q = +1 with probability p = hard_sigmoid(x) = clip((x+1)/2, 0, 1), else -1
              (``u`` uniform [0,1) samples may be given; q = +1 iff u < p)
    backward: dL/dx = dL/dq * 1{|x| <= 1}   (same straight-through estimator as `sign_ste`)
    """
    if u is None:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return _StochasticSign.apply(x, u)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, g):
        return g


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """forward: floor(x + 0.5); backward: identity (straight-through)."""
    return _RoundSTE.apply(x)


def quantize_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """[DoReFa eq. 5] quantize_k(r) = round((2**k - 1) * r) / (2**k - 1) for r in [0, 1].

    forward:  floor((2**k - 1) * r + 0.5) / (2**k - 1)
    backward: dL/dr = dL/dq   (straight-through)
    """
    n = float(2 ** k - 1)
    return round_ste(x * n) / n


class _ClipSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x >= ctx.lo) & (x <= ctx.hi)).to(g.dtype), None, None


def dorefa_act(x: torch.Tensor, k: int) -> torch.Tensor:
    """[DoReFa sec. 2.3] k-bit activation: q = quantize_k(clip(x, 0, 1)).

    forward:  floor(clip(x, 0, 1) * (2**k - 1) + 0.5) / (2**k - 1)
    backward: dL/dx = dL/dq * 1{0 <= x <= 1}
    """
    return quantize_k(_ClipSTE.apply(x, 0.0, 1.0), k)


def dorefa_weight(w: torch.Tensor, k: int) -> torch.Tensor:
    """[DoReFa eq. 8/9] k-bit weights.

    k = 1:  forward q = E(|w|) * sign(w) (E over the whole tensor); backward dL/dw = dL/dq
            (straight-through; E(|w|) treated as a constant, as in the paper).
    k > 1:  forward q = 2 * quantize_k(tanh(w) / (2 * max|tanh(w)|) + 1/2) - 1, values in
            {-1, -1 + 2/(2**k-1), ..., 1}; backward: straight-through quantize_k, exact gradient
            of the tanh normalisation (max included):
            dq_i/dw_j = sech^2(w_i)/M * [i = j] - tanh(w_i) * sign(tanh w_m) * sech^2(w_m) / M^2 * [j = m],
            M = max|tanh(w)| attained at m.
    """
    if k == 1:
        e = w.abs().mean().detach()
        return _SignSTE.apply(w, None) * e
    t = torch.tanh(w)
    x = t / (2 * t.abs().max()) + 0.5
    return 2 * quantize_k(x, k) - 1


class _QuantizeGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, generator):
        ctx.k, ctx.generator = k, generator
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return dorefa_quantize_grad(g, ctx.k, ctx.generator), None, None


def dorefa_quantize_grad(g: torch.Tensor, k: int, generator: torch.Generator | None = None,
                         noise: torch.Tensor | None = None) -> torch.Tensor:
    """[DoReFa eq. 12] k-bit gradient quantizer (plain function applied to a gradient tensor):

    f(dr) = 2 * max0(|dr|) * [quantize_k(dr / (2 max0(|dr|)) + 1/2 + N(k)) - 1/2]
    where max0 is taken per sample (over all dims but the first) and N(k) = sigma / (2**k - 1),
    sigma ~ Uniform(-0.5, 0.5).  The result is clipped to [0, 1] before quantize_k.
    """
    m = g.abs().flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, *([1] * (g.dim() - 1)))
    n = float(2 ** k - 1)
    if noise is None:
        noise = torch.rand(g.shape, generator=generator, device=g.device, dtype=g.dtype) - 0.5
    x = (g / (2 * m) + 0.5 + noise / n).clamp(0, 1)
    return 2 * m * (torch.floor(x * n + 0.5) / n - 0.5)


def quantize_grad(x: torch.Tensor, k: int | None, generator: torch.Generator | None = None):
    """Identity in forward; in backward the incoming gradient is replaced by
    `dorefa_quantize_grad(g, k)` [DoReFa sec. 2.4].  ``k=None`` disables it."""
    if not k:
        return x
    return _QuantizeGrad.apply(x, k, generator)


def bwn_weight(w: torch.Tensor) -> torch.Tensor:
    """[XNOR] Binary-Weight-Network weights, per output channel n:
    forward:  q = alpha_n * sign(w), alpha_n = mean_j |w_nj|  (eq. 6, optimal L2 scale)
    backward: exact derivative with the sign's STE [XNOR eq. 7 before simplification]:
              dL/dw_nj = dL/dq_nj * alpha_n * 1{|w_nj| <= 1} + sign(w_nj)/K * sum_i dL/dq_ni * sign(w_ni)
              (K = weights per output channel).
    """
    alpha = w.abs().flatten(1).mean(dim=1).view(-1, *([1] * (w.dim() - 1)))
    return alpha * sign_ste(w)


def xnor_act_scale(x: torch.Tensor, kh: int, kw: int, stride: int = 1, pad: int = 0) -> torch.Tensor:
    """[XNOR sec. 3.2] activation scale K = (mean_c |I|) * k, k = box filter 1/(kh*kw),
    with the same stride/padding as the convolution it scales.  Output (N, 1, H', W').

    forward as stated; backward is plain autograd of that expression.  Note: K depends on the
    real-valued input, which the integer runtime never sees, so models that multiply by K are
    trainable but not exportable (`edgeq.export` raises UnsupportedError for them).
    """
    a = x.abs().mean(dim=1, keepdim=True)
    box = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=x.dtype, device=x.device)
    return F.conv2d(a, box, stride=stride, padding=pad)


def twn_threshold_scale(w: torch.Tensor, delta_factor: float = 0.7):
    """[TWN eq. 9/10] per output channel: Delta = 0.7 * mean|w|, alpha = mean(|w| : |w| > Delta).
    Returns (delta, alpha), each shaped to broadcast against w."""
    a = w.detach().abs().flatten(1)
    delta = delta_factor * a.mean(dim=1, keepdim=True)
    big = (a > delta).to(a.dtype)
    alpha = (a * big).sum(dim=1, keepdim=True) / big.sum(dim=1, keepdim=True).clamp_min(1)
    shape = (-1,) + (1,) * (w.dim() - 1)
    return delta.view(shape), alpha.view(shape)


class _Ternary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, delta, alpha):
        t = (w > delta).to(w.dtype) - (w < -delta).to(w.dtype)
        return alpha * t

    @staticmethod
    def backward(ctx, g):
        return g, None, None


def twn_weight(w: torch.Tensor, delta_factor: float = 0.7) -> torch.Tensor:
    """[TWN] ternary weights, per output channel n:
    forward:  q = alpha_n * t, t = +1 if w > Delta_n, -1 if w < -Delta_n, else 0,
              Delta_n = 0.7 * mean|w_n|, alpha_n = mean(|w_nj| : |w_nj| > Delta_n)
    backward: dL/dw = dL/dq  (straight-through, as in the paper's training; Delta, alpha constant)
    A weight that is exactly 0 (pruned) always quantizes to 0.
    """
    delta, alpha = twn_threshold_scale(w, delta_factor)
    return _Ternary.apply(w, delta, alpha)


def tern5_fit(w: torch.Tensor, iters: int = 10):
    """Scale of the 5-level {-2,-1,0,1,2} quantizer, per output channel: alternate
    t = clip(floor(w/alpha + 1/2), -2, 2) and alpha = <w, t> / <t, t> (Lloyd iterations for
    min ||w - alpha t||^2; thresholds are alpha/2 and 3 alpha/2).  Init alpha = mean|w| / 1.5
    (so that |w| ~ mean lands between levels 1 and 2)."""
    a = w.detach().flatten(1)
    alpha = (a.abs().mean(dim=1, keepdim=True) / 1.5).clamp_min(1e-12)
    for _ in range(iters):
        t = torch.floor(a / alpha + 0.5).clamp(-2, 2)
        tt = (t * t).sum(dim=1, keepdim=True)
        alpha = torch.where(tt > 0, (a * t).sum(dim=1, keepdim=True) / tt.clamp_min(1), alpha)
        alpha = alpha.clamp_min(1e-12)
    return alpha.view((-1,) + (1,) * (w.dim() - 1))


class _Tern5(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, alpha):
        return alpha * torch.floor(w / alpha + 0.5).clamp(-2, 2)

    @staticmethod
    def backward(ctx, g):
        return g, None


def tern5_weight(w: torch.Tensor) -> torch.Tensor:
    """5-level ternary variant: forward q = alpha_n * clip(floor(w/alpha_n + 1/2), -2, 2) with
    alpha_n from `tern5_fit`; backward dL/dw = dL/dq (straight-through, as TWN)."""
    return _Tern5.apply(w, tern5_fit(w))


def int8_weight(w: torch.Tensor, qmax: int = 127) -> torch.Tensor:
    """Symmetric per-output-channel integers: s_n = max|w_n| / qmax, q = s_n * floor(w/s_n + 1/2)
    (qmax 127: int8, 32767: int16). backward: straight-through (dL/dw = dL/dq)."""
    s = (w.detach().abs().flatten(1).max(dim=1).values / qmax).clamp_min(1e-12)
    s = s.view((-1,) + (1,) * (w.dim() - 1))
    return round_ste(w / s) * s


# ---------------------------------------------------------------------------------------------
# HWGQ
def _cond_mean(a: float, b: float) -> float:
    from scipy import stats

    den = stats.norm.cdf(b) - stats.norm.cdf(a)
    return float((stats.norm.pdf(a) - stats.norm.pdf(b)) / den)


@cache
def hwgq_lloyd_levels(bits: int, iters: int = 300) -> tuple:
    """Lloyd-Max levels of the half-wave Gaussian quantizer [HWGQ sec. 3.3]: 2**bits levels
    q_0 = 0 < q_1 < ... on the half-normal density (x > 0 of N(0,1)), q_0 held at 0 so that
    x <= t_1 maps to 0.  Iterates t_i = (q_{i-1} + q_i)/2, q_i = E[x | t_i < x <= t_{i+1}]
    (truncated-normal means via scipy.stats).  2 bits: (0, 0.5606, 1.1881, 2.0334)."""
    n = 2 ** bits
    q = np.linspace(0.0, 2.0, n)
    for _ in range(iters):
        t = (q[:-1] + q[1:]) / 2
        edges = list(t) + [np.inf]
        q = np.array([0.0] + [_cond_mean(edges[i], edges[i + 1]) for i in range(n - 1)])
    return tuple(float(v) for v in q)


@cache
def hwgq_uniform_step(bits: int) -> float:
    """Step D of the uniform HWGQ quantizer q_i = i*D (i < 2**bits) minimising the mean squared
    error on the half-normal density (closed-form cell integrals with scipy.stats.norm, bounded
    scalar search).  2 bits: D = 0.6508 (used by the '2-bit uniform' variant)."""
    from scipy import optimize, stats

    n = 2 ** bits

    def prim(x, c):  # antiderivative of (x - c)^2 * phi(x)
        phi = stats.norm.pdf(x)
        xphi = np.where(np.isinf(x), 0.0, np.nan_to_num(x, posinf=0.0) * phi)
        return stats.norm.cdf(x) - xphi + 2 * c * phi + c * c * stats.norm.cdf(x)

    def mse(d):
        lv = np.arange(n) * d
        e = np.r_[0.0, (lv[:-1] + lv[1:]) / 2, np.inf]
        return float(2 * np.sum(prim(e[1:], lv) - prim(e[:-1], lv)))

    return float(optimize.minimize_scalar(mse, bounds=(0.01, 4.0), method="bounded",
                                          options={"xatol": 1e-7}).x)


class _LevelQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, levels, thr, hi):
        ctx.save_for_backward(x)
        ctx.hi = hi
        code = torch.zeros_like(x, dtype=torch.long)
        for t in thr:
            code += (x >= t).long()
        return levels.to(x.dtype)[code]

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x > 0) & (x <= ctx.hi)).to(g.dtype), None, None, None


def hwgq_act(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """[HWGQ eq. 5/9] half-wave Gaussian quantizer with levels q_0 = 0 < q_1 < ... < q_m:
    forward:  Q(x) = q_i for t_i <= x < t_{i+1} (t_i = (q_{i-1} + q_i)/2, t_0 = -inf)
              (ties go up, matching the exported thresholds 'acc >= thr')
    backward: clipped ReLU: dL/dx = dL/dQ * 1{0 < x <= q_m}
    """
    thr = ((levels[:-1] + levels[1:]) / 2).tolist()
    return _LevelQuant.apply(x, levels, thr, float(levels[-1]))


# =============================================================================================
# Weight quantizer modules (configuration + integer form)
# =============================================================================================
@dataclass
class IntWeights:
    """Integer form of a quantized weight: real weight = values * scale[n] (n = output channel).

    values: int64 ndarray shaped like the weight (N, C, kh, kw);
    scale:  float64 (N,) positive;
    codes/table: for k-bit codes (KBIT), codes uint8 shaped like values and the int table with
            table[codes] == values; None otherwise.
    kind:   'B1' (values +-1), 'TERN' (-1/0/1), 'KBIT', 'I8', 'I16', or 'F32' (values are the
            float32 weights themselves, scale 1: a layer kept at full precision).
    """

    values: np.ndarray
    scale: np.ndarray
    kind: str
    codes: np.ndarray | None = None
    table: np.ndarray | None = None
    wbits: int = 0


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


class WeightQuantizer(nn.Module):
    """Base: `forward(w)` gives the real quantized weight used in training."""

    name = "float"
    clip_latent = False  # clip latent weights to [-1, 1] after each step ([BNN] sec. 1.3)
    values_table: tuple | None = None

    def integer(self, w: torch.Tensor) -> IntWeights:
        raise UnsupportedError(f"weight quantizer {self.name!r} has no integer form")

    def forward(self, w):
        return w

    def extra_repr(self):
        return self.name


class SignWeight(WeightQuantizer):
    """[BNN] w_b = sign(w), STE with hardtanh-clipped gradient, latent w clipped to [-1, 1]."""

    name = "sign"
    clip_latent = True

    def forward(self, w):
        return sign_ste(w)

    def integer(self, w):
        v = np.where(_np(w) >= 0, 1, -1).astype(np.int64)
        return IntWeights(v, np.ones(w.shape[0]), "B1")


class BWNWeight(WeightQuantizer):
    """[XNOR] w_b = alpha_n * sign(w), alpha_n = mean|w_n| (see `bwn_weight`)."""

    name = "bwn"
    clip_latent = True

    def forward(self, w):
        return bwn_weight(w)

    def integer(self, w):
        wn = _np(w)
        v = np.where(wn >= 0, 1, -1).astype(np.int64)
        return IntWeights(v, np.abs(wn).reshape(len(wn), -1).mean(1), "B1")


class TWNWeight(WeightQuantizer):
    """[TWN] ternary alpha_n * {-1, 0, +1} (see `twn_weight`)."""

    name = "twn"

    def __init__(self, delta_factor: float = 0.7):
        super().__init__()
        self.delta_factor = delta_factor

    def forward(self, w):
        return twn_weight(w, self.delta_factor)

    def integer(self, w):
        delta, alpha = twn_threshold_scale(w, self.delta_factor)
        wn, d = _np(w), _np(delta)
        v = (wn > d).astype(np.int64) - (wn < -d).astype(np.int64)
        return IntWeights(v, _np(alpha).reshape(-1), "TERN")


class Tern5Weight(WeightQuantizer):
    """5-level {-2..2} * alpha_n (see `tern5_weight`); exported as 3-bit KBIT codes."""

    name = "tern5"

    def forward(self, w):
        return tern5_weight(w)

    def integer(self, w):
        alpha = tern5_fit(w)
        v = np.clip(np.floor(_np(w) / _np(alpha) + 0.5), -2, 2).astype(np.int64)
        table = np.array([-2, -1, 0, 1, 2, 0, 0, 0], np.int64)
        return IntWeights(v, _np(alpha).reshape(-1), "KBIT", (v + 2).astype(np.uint8), table, 3)


class DoReFaWeight(WeightQuantizer):
    """[DoReFa] k-bit weights (see `dorefa_weight`).  Integer values for k > 1 are the odd
    integers 2*code - (2**k - 1), scale 1/(2**k - 1); for k = 1, +-1 with scale E|w|."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits
        self.name = f"dorefa{bits}"

    def forward(self, w):
        return dorefa_weight(w, self.bits)

    def integer(self, w):
        wn = _np(w)
        if self.bits == 1:
            v = np.where(wn >= 0, 1, -1).astype(np.int64)
            return IntWeights(v, np.full(len(wn), np.abs(wn).mean()), "B1")
        n = 2 ** self.bits - 1
        t = np.tanh(wn)
        codes = np.floor((t / (2 * np.abs(t).max()) + 0.5) * n + 0.5).astype(np.int64)
        table = 2 * np.arange(n + 1, dtype=np.int64) - n
        return IntWeights(table[codes], np.full(len(wn), 1.0 / n), "KBIT", codes.astype(np.uint8),
                          table, self.bits)


class Int8Weight(WeightQuantizer):
    """Symmetric per-channel int8 weights (for a high-precision first/last layer)."""

    name = "int8"
    qmax, kind = 127, "I8"

    def forward(self, w):
        return int8_weight(w, self.qmax)

    def integer(self, w):
        wn = _np(w)
        s = np.maximum(np.abs(wn).reshape(len(wn), -1).max(1) / self.qmax, 1e-12)
        v = np.floor(wn / s.reshape(-1, 1, 1, 1) + 0.5).astype(np.int64)
        return IntWeights(np.clip(v, -self.qmax, self.qmax), s, self.kind)


class Int16Weight(Int8Weight):
    """Symmetric per-channel int16 weights (I16 in the blob; with raw-pixel input a layer may
    have K <= 256 taps, the int32 accumulator bound)."""

    name = "int16"
    qmax, kind = 32767, "I16"


class FloatWeight(WeightQuantizer):
    """No quantization: exported as an F32 layer (float32 weights, float32 accumulator)."""

    name = "float"

    def integer(self, w):
        wn = _np(w).astype(np.float32)
        return IntWeights(wn, np.ones(len(wn)), "F32")


def make_weight_quantizer(spec: str) -> WeightQuantizer:
    """'sign' | 'bwn' | 'twn' | 'tern5' | 'dorefaK' (K bits) | 'int8' | 'int16' | 'float'."""
    if spec == "sign":
        return SignWeight()
    if spec == "bwn":
        return BWNWeight()
    if spec == "twn":
        return TWNWeight()
    if spec == "tern5":
        return Tern5Weight()
    if spec == "int8":
        return Int8Weight()
    if spec == "int16":
        return Int16Weight()
    if spec == "float":
        return FloatWeight()
    if spec.startswith("dorefa"):
        return DoReFaWeight(int(spec[6:]))
    raise UnsupportedError(f"unknown weight quantizer {spec!r}")


# =============================================================================================
# Activation quantizer modules
# =============================================================================================
class ActQuantizer(nn.Module):
    """Base of activation quantizers.  Attributes:
    enc 'B1' | 'U8'; bits; levels_int (int per code); scale (real value = level * scale);
    thresholds (real, increasing): code = #{i : y >= thresholds[i]}."""

    enc = "U8"
    bits = 0
    scale = 1.0

    @property
    def levels_int(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def thresholds(self) -> np.ndarray:
        raise NotImplementedError

    def codes(self, y: torch.Tensor) -> torch.Tensor:
        c = torch.zeros_like(y, dtype=torch.long)
        for t in self.thresholds.tolist():
            c += (y >= t).long()
        return c


class SignAct(ActQuantizer):
    """[BNN] binary activation sign(y) (STE, hardtanh-clipped gradient); stochastic=True uses the
    hard-sigmoid stochastic binarization in training only (eval is always deterministic)."""

    enc = "B1"
    bits = 1

    def __init__(self, stochastic: bool = False):
        super().__init__()
        self.stochastic = stochastic

    levels_int = np.array([-1, 1], np.int64)
    thresholds = np.array([0.0])

    def forward(self, y):
        if self.stochastic and self.training:
            return stochastic_sign(y)
        return sign_ste(y)


class DoReFaAct(ActQuantizer):
    """[DoReFa] k-bit activations on [0, 1]: levels code/(2**k-1); grad_bits quantizes the
    gradient flowing back through this activation (None: off)."""

    def __init__(self, bits: int = 2, grad_bits: int | None = None):
        super().__init__()
        self.bits = bits
        self.grad_bits = grad_bits
        self.scale = 1.0 / (2 ** bits - 1)

    @property
    def levels_int(self):
        return np.arange(2 ** self.bits, dtype=np.int64)

    @property
    def thresholds(self):
        n = 2 ** self.bits - 1
        return (np.arange(1, n + 1) - 0.5) / n

    def forward(self, y):
        q = dorefa_act(y, self.bits)
        return quantize_grad(q, self.grad_bits) if self.training else q

    def extra_repr(self):
        return f"bits={self.bits}, grad_bits={self.grad_bits}"


class QReLU(ActQuantizer):
    """Uniform k-bit quantized ReLU on [0, clip]: q = clip/(2**k - 1) * floor(clamp(y, 0, clip) /
    step + 1/2) (step = clip / (2**k - 1)); backward: dL/dy = dL/dq * 1{0 <= y <= clip}
    (straight-through inside the clip range, as PACT / DoReFa).  `edgeq.quantize` calibrates clip;
    clip=None passes y through a float ReLU while `observe` records a clip from the data."""

    def __init__(self, bits: int = 8, clip: float | None = None):
        super().__init__()
        if not 1 <= bits <= 8:
            raise UnsupportedError(f"QReLU bits must be 1..8, got {bits}")
        self.bits = bits
        self.clip = None if clip is None else float(clip)
        self.observed: list = []

    @property
    def scale(self):
        if self.clip is None:
            raise UnsupportedError("QReLU without a clip (calibrate it: edgeq.quantize)")
        return self.clip / (2 ** self.bits - 1)

    @property
    def levels_int(self):
        return np.arange(2 ** self.bits, dtype=np.int64)

    @property
    def thresholds(self):
        return (np.arange(1, 2 ** self.bits) - 0.5) * self.scale

    def forward(self, y):
        if self.clip is None:
            self.observed.append(y.detach().flatten().float().cpu())
            return F.relu(y)
        s = self.scale
        return round_ste(_ClipSTE.apply(y, 0.0, self.clip) / s) * s

    def extra_repr(self):
        return f"bits={self.bits}, clip={self.clip}"


class HWGQAct(ActQuantizer):
    """[HWGQ] half-wave Gaussian quantizer (BN before it makes y ~ N(0, 1)).
    levels='lloyd': Lloyd-Max levels (`hwgq_lloyd_levels`) in fixed point
    round(q * 2**FRAC_BITS) -> exported through a KBIT LUT; levels='uniform': q_i = i * D
    (`hwgq_uniform_step`), integer levels = codes, scale D (B1/TERN weights need no LUT)."""

    def __init__(self, bits: int = 2, levels: str = "lloyd"):
        super().__init__()
        self.bits = bits
        self.kind = levels
        if levels == "lloyd":
            self._lv = np.round(np.array(hwgq_lloyd_levels(bits)) * 2 ** FRAC_BITS).astype(np.int64)
            self.scale = 2.0 ** -FRAC_BITS
        elif levels == "uniform":
            self._lv = np.arange(2 ** bits, dtype=np.int64)
            self.scale = hwgq_uniform_step(bits)
        else:
            raise UnsupportedError(f"HWGQ levels must be 'lloyd' or 'uniform', got {levels!r}")
        self.register_buffer("levels_real", torch.tensor(self._lv * self.scale, dtype=torch.float32),
                             persistent=False)

    @property
    def levels_int(self):
        return self._lv

    @property
    def thresholds(self):
        lv = self._lv * self.scale
        return (lv[:-1] + lv[1:]) / 2

    def forward(self, y):
        return hwgq_act(y, self.levels_real.to(y.dtype))

    def extra_repr(self):
        return f"bits={self.bits}, levels={self.kind}"


# =============================================================================================
# Quantized layers
# =============================================================================================
def _wq(spec) -> "WeightQuantizer":
    return make_weight_quantizer(spec) if isinstance(spec, str) else spec


class _QConv:
    """Mixin: a torch ConvNd whose weight goes through `wq` in forward (see QConv2d)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, padding_mode="zeros", wq: str | WeightQuantizer = "sign"):
        if isinstance(padding, str) and padding == "same" and any(s != 1 for s in np.atleast_1d(stride)):
            raise UnsupportedError(
                f"padding='same' needs stride 1 (got stride={stride}): with a stride the output size is "
                "not the input's; give the padding explicitly (e.g. padding=kernel_size // 2)")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or in_channels % groups \
                or out_channels % groups:
            raise UnsupportedError(f"groups={groups!r} must be a positive int dividing in_channels "
                                   f"({in_channels}) and out_channels ({out_channels})")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)
        self.wq = _wq(wq)

    def qweight(self):
        return self.wq(self.weight)

    def forward(self, x):
        return self._conv_forward(x, self.qweight(), self.bias)


class QConv2d(_QConv, nn.Conv2d):
    """Conv2d whose weight goes through `wq` (a WeightQuantizer or spec string, see
    `make_weight_quantizer`) in forward.  The latent float weight is what the optimizer updates.
    Takes every nn.Conv2d argument; `edgeq.export` maps onto the IR's CONV: stride (int or
    (sh, sw)), padding (int, (ph, pw), 'valid', or 'same' with stride 1 and an odd kernel; each
    padding < max(kh, kw)), groups (grouped and depthwise: groups = in_channels, out_channels a
    multiple), dilation (the kernel with zero weights between its taps: weights that have a zero)
    and bias (folded).  Padding modes other than zeros and dilation of weights without a zero
    raise UnsupportedError at export, as does 'same' with an even kernel (torch pads it
    unequally); 'same' with a stride raises it here."""


class QConv1d(_QConv, nn.Conv1d):
    """Conv1d with a quantized weight (see QConv2d).  Exported as a (1 x k) convolution over a
    (C, 1, L) activation: stride and padding along L only, groups as QConv2d."""


class QLinear(nn.Linear):
    """Linear whose weight goes through `wq` in forward (see QConv2d)."""

    def __init__(self, in_features, out_features, bias=False, wq: str | WeightQuantizer = "sign"):
        super().__init__(in_features, out_features, bias=bias)
        self.wq = _wq(wq)

    def qweight(self):
        return self.wq(self.weight)

    def forward(self, x):
        return F.linear(x, self.qweight(), self.bias)


@torch.no_grad()
def clip_latent_weights(model: nn.Module, bound: float = 1.0) -> None:
    """[BNN] clip the latent real weights of sign/BWN-quantized layers to [-bound, bound]."""
    for m in model.modules():
        if isinstance(m, (QConv1d, QConv2d, QLinear)) and m.wq.clip_latent:
            m.weight.clamp_(-bound, bound)


# =============================================================================================
# Shift-based batch norm and AdaMax [BNN Algorithms 2/3/4]
# =============================================================================================
def ap2(x: torch.Tensor) -> torch.Tensor:
    """AP2(x) = sign(x) * 2**round(log2|x|): nearest power of two [BNN]; backward straight-through."""
    p = torch.sign(x) * torch.pow(2.0, torch.floor(torch.log2(x.abs().clamp_min(1e-30)) + 0.5))
    return x + (p - x).detach()


class ShiftBatchNorm2d(nn.BatchNorm2d):
    """Shift-based batch norm [BNN Alg. 3]: the per-channel multiplier gamma / sqrt(var + eps) is
    replaced by AP2 of it (a power of two, i.e. a shift), so y = AP2(gamma/sigma) * (x - mu) + beta.
    Backward: straight-through on AP2.  Folds to integer thresholds like an ordinary BN."""

    def affine_terms(self):
        """(g, h) with y = g * x + h in eval mode."""
        sigma = torch.sqrt(self.running_var + self.eps)
        g = ap2(self.weight / sigma)
        return g, self.bias - g * self.running_mean

    def forward(self, x):
        if self.training:
            mu = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                n = x.numel() / x.shape[1]
                self.num_batches_tracked += 1
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(f * mu)
                self.running_var.mul_(1 - f).add_(f * var * n / max(n - 1, 1))
        else:
            mu, var = self.running_mean, self.running_var
        g = ap2(self.weight / torch.sqrt(var + self.eps))
        return g.view(1, -1, 1, 1) * (x - mu.view(1, -1, 1, 1)) + self.bias.view(1, -1, 1, 1)


def bn_affine_terms(bn: nn.Module):
    """(g, h) float64 numpy with eval-mode bn(x) = g * x + h, for BatchNorm2d/ShiftBatchNorm2d."""
    if isinstance(bn, ShiftBatchNorm2d):
        g, h = bn.affine_terms()
        return _np(g), _np(h)
    sigma = torch.sqrt(bn.running_var.double() + bn.eps)
    g = (bn.weight.double() if bn.affine else 1.0) / sigma
    h = (bn.bias.double() if bn.affine else 0.0) - g * bn.running_mean.double()
    return _np(g), _np(h)


class ShiftAdaMax(torch.optim.Optimizer):
    """Shift-based AdaMax [BNN Alg. 4]:
    m = b1 m + (1 - b1) g;  v = max(b2 v, |g|);
    theta -= AP2(lr / (1 - b1**t)) * m * AP2(1 / v)   (multiplications by powers of two = shifts)."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                st["t"] += 1
                m, v = st["m"], st["v"]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                torch.maximum(v * b2, p.grad.abs(), out=v)
                step = float(ap2(torch.tensor(group["lr"] / (1 - b1 ** st["t"]))))
                p.sub_(step * m * ap2(1.0 / (v + group["eps"])))
        return loss


# =============================================================================================
# HWGQ layer-wise alternating fine-tune of scales and binary weights
# =============================================================================================
@torch.no_grad()
def alternating_fit(x_cols: torch.Tensor, y: torch.Tensor, b: torch.Tensor, iters: int = 5):
    """Layer-wise alternating fit of binary weights and their scale (used by HWGQ-style BWN
    fine-tuning): per output channel n minimise ||y_n - alpha_n * X b_n||^2 over alpha_n > 0 and
    b_n in {-1, +1}^K, alternating
      alpha_n = <y_n, X b_n> / ||X b_n||^2           (closed form, clipped >= 1e-8)
      b_nj    = sign(<X_j, r_n + alpha_n X_j b_nj>)   for every j (coordinate sweep, r = residual)
    x_cols (M, K) are the layer's (im2col'ed) inputs, y (M, N) its target outputs, b (N, K) +-1 the
    starting binary weights.  Returns (alpha (N,), b (N, K)); the loss never increases.
    """
    x = x_cols.double()
    y = y.double()
    b = b.double().clone()
    n, k = b.shape
    xx = (x * x).sum(0)  # (K,)
    alpha = torch.zeros(n, dtype=torch.float64)
    for _ in range(iters):
        z = x @ b.T  # (M, N)
        alpha = ((y * z).sum(0) / (z * z).sum(0).clamp_min(1e-12)).clamp_min(1e-8)
        r = y - z * alpha  # residual (M, N)
        for j in range(k):
            xj = x[:, j]
            # contribution of b_j removed: r_j = r + alpha * xj * b_j
            c = (xj @ r) + alpha * xx[j] * b[:, j]  # (N,)
            newb = torch.where(c >= 0, 1.0, -1.0).double()
            delta = newb - b[:, j]
            if delta.abs().sum() > 0:
                r -= torch.outer(xj, alpha * delta)
                b[:, j] = newb
    z = x @ b.T
    alpha = ((y * z).sum(0) / (z * z).sum(0).clamp_min(1e-12)).clamp_min(1e-8)
    return alpha.float(), b.float()

