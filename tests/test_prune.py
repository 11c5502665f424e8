"""Pruning: masks, exact zeros through optimizer steps, sensitivity, structured pruning."""

import numpy as np
import torch
from torch import nn

from edgeq.train import prune as P
from edgeq.train.quant import QConv2d

torch.set_num_threads(1)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(QConv2d(1, 8, 3, padding=1, wq="twn"), nn.ReLU(), QConv2d(8, 16, 3, wq="twn"),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 3))


def test_layer_and_global_magnitude_masks():
    m = _net()
    masks = P.magnitude_masks(m, 0.75, "layer")
    for name, p in P.prunable(m).items():
        keep = masks[name]
        assert abs(1 - keep.float().mean().item() - 0.75) < 0.02
        assert p.detach().abs()[~keep].max() <= p.detach().abs()[keep].min()
    g = P.magnitude_masks(m, 0.5, "global")
    allw = torch.cat([p.detach().abs().flatten() for p in P.prunable(m).values()])
    kept = torch.cat([g[n].flatten() for n in P.prunable(m)])
    assert abs(1 - kept.float().mean().item() - 0.5) < 0.01
    assert allw[~kept].max() <= allw[kept].min()


def test_masks_stay_exactly_zero_through_optimizer_steps():
    m = _net()
    masks = P.magnitude_masks(m, 0.8, "layer")
    P.apply_masks(m, masks)
    for opt in (torch.optim.Adam(m.parameters(), lr=0.1), torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9)):
        P.enforce_masks(opt, m, masks)
        x = torch.randn(16, 1, 6, 6)
        for _ in range(5):
            loss = m(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        for n, p in P.prunable(m).items():
            assert (p[~masks[n]] == 0).all()
            assert not torch.signbit(p[~masks[n]]).any()  # +0.0, never -0.0
            assert (p[masks[n]] != 0).float().mean() > 0.9
    assert P.sparsity(m)["total"] > 0.75


def test_pruned_ternary_weights_quantize_to_zero():
    m = _net()
    masks = P.magnitude_masks(m, 0.9, "layer")
    P.apply_masks(m, masks)
    conv = m[2]
    iw = conv.wq.integer(conv.weight)
    assert (iw.values[~masks["2"].numpy()] == 0).all()
    assert (iw.values == 0).mean() >= 0.9


def test_filter_pruning_zeroes_whole_filters():
    m = _net()
    masks = P.filter_masks(m, "2", 0.5)
    P.apply_masks(m, masks)
    w = m[2].weight.detach()
    norms = w.abs().flatten(1).sum(1)
    assert int((norms == 0).sum()) == 8


def test_sensitivity_restores_model_and_reports_rows():
    m = _net()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.randn(32, 1, 6, 6)
    ref = m(x).detach()

    def evaluate(model):
        return -float((model(x).detach() - ref).pow(2).mean())

    sens = P.sensitivity(m, evaluate, sparsities=(0.5, 0.9))
    assert sens["baseline"] == 0.0
    assert set(sens) == {"baseline", "0", "2", "4"}
    assert all(len(r) == 2 and r[1][1] <= r[0][1] + 1e-9 for k, r in sens.items() if k != "baseline")
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])
    chosen = P.layer_sparsity_from_sensitivity(sens, max_drop=1e9)
    assert all(v == 0.9 for v in chosen.values())


def test_iterative_prune_keeps_earlier_zeros():
    m = _net()
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    x = torch.randn(16, 1, 6, 6)
    seen = []

    def retrain(model):
        for _ in range(3):
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        seen.append({n: (p == 0).clone() for n, p in P.prunable(model).items()})

    masks = P.iterative_prune(m, opt, retrain, steps=[0.5, 0.8])
    for n in seen[0]:
        assert (seen[1][n] | ~seen[0][n]).all()  # zero after step 1 => zero after step 2
        assert abs(seen[1][n].float().mean().item() - 0.8) < 0.05
        assert torch.equal(~masks[n], seen[1][n])
    assert np.isclose(P.gradual_schedule(0.8, 10, 0, 10), 0.8) and P.gradual_schedule(0.8, 0, 2, 10) == 0
