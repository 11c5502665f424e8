"""Export is exact: for every arch (short trainings on digits), the blob run by the C host runtime
predicts the same class as the torch model in eval mode for every test image, with identical
integer scores, and the numpy reference's accumulators equal the torch-computed ones."""

import numpy as np
import pytest
import torch

from edgeq.train import data, export, loop as train, models
from edgeq.format import pack
from edgeq.reference import refnet
from edgeq.errors import EdgeqError, UnsupportedError

torch.set_num_threads(1)

ARCHS = ["bnn-mlp", "bnn-cnn", "xnor-cnn", "twn-cnn", "twn5-cnn", "dorefa-w1a2", "dorefa-w2a2", "hwgq-cnn",
         "hwgq-uniform"]


@pytest.fixture(scope="module")
def digits():
    return data.load_split("digits")


def _runtime():
    try:
        from edgeq.native.runtime import Model

        Model  # noqa: B018
        from edgeq import _native  # noqa: F401
    except (ImportError, EdgeqError) as e:  # pragma: no cover
        pytest.skip(f"C host runtime not built: {e}")
    return Model


def _check_exact(model, xte, n_ref=6, ternary="auto"):
    Model = _runtime()
    model.eval()
    g = export.to_graph(model, ternary=ternary)
    blob = pack.write_blob(g)
    gin = export.graph_input(model, xte)
    cls, scores = Model(blob).predict(gin)
    ts = train.predict(model, xte)
    tscores, accs = export.int_forward(model, torch.as_tensor(xte), return_accs=True)
    np.testing.assert_array_equal(cls, ts)
    np.testing.assert_array_equal(scores, tscores.numpy().astype(np.int64))
    # the blob read back is the same graph; refnet accumulators == torch accumulators
    g2 = pack.read_blob(blob)
    for k in range(n_ref):
        ref = [a for a in refnet.layer_accs(g2, gin[k]) if a is not None]
        mine = export.accs_hwc(accs, k)
        assert len(ref) == len(mine)
        for j, (r, m) in enumerate(zip(ref, mine)):
            np.testing.assert_array_equal(r, m, err_msg=f"image {k} conv {j}")
    return blob, float((cls == ts).mean())


@pytest.mark.parametrize("arch", ARCHS)
def test_export_exact(arch, digits):
    xtr, ytr, xte, yte, classes = digits
    model, _hist = train.build_and_train(arch, xtr, ytr, classes, epochs=3, seed=1)
    _blob, _ = _check_exact(model, xte)
    acc = train.accuracy(model, xte, yte)
    assert acc > 0.3, f"{arch}: accuracy {acc} after 3 epochs"
    # float eval (unfolded batch norm) and integer eval agree on almost every image
    with torch.no_grad():
        fl = model.float_forward(torch.as_tensor(xte)).argmax(1).numpy()
    assert (fl == train.predict(model, xte)).mean() >= 0.97


def test_thresholds_flip_for_negative_gamma(digits):
    """Negative BN gammas (flip) and every encoding path stay exact."""
    xtr, _ytr, xte, _yte, classes = digits
    for arch in ("bnn-cnn", "twn-cnn", "hwgq-cnn"):
        torch.manual_seed(0)
        model = models.build_model(arch, (1, 8, 8), classes)
        model.train()
        with torch.no_grad():
            for _ in range(3):
                model(torch.as_tensor(xtr[:256]))  # running statistics
            for b in model.blocks:
                b.bn.weight.mul_(torch.where(torch.rand_like(b.bn.weight) < 0.5, -1.0, 1.0))
                b.bn.bias.uniform_(-0.5, 0.5)
        g = export.to_graph(model)
        assert any(bool(np.any(layer.flip)) for layer in g.layers if getattr(layer, "flip", None) is not None)
        _check_exact(model, xte[:64], n_ref=3)


def test_first_last_precision_and_pruned_sparse(digits):
    xtr, ytr, xte, _yte, classes = digits
    model, _ = train.build_and_train("twn-cnn", xtr, ytr, classes, epochs=4, prune=0.85, first_wq="int16",
                                     last_wq="int8")
    # default "auto": bit-planes on B1 input and on U8 input of > 3 channels (faster there)
    dense = export.to_graph(model)
    assert "TERN_SPARSE" not in [getattr(layer, "w_enc", "") for layer in dense.layers]
    assert "TERN_SPARSE" not in [getattr(layer, "w_enc", "") for layer in
                                 export.to_graph(model, ternary="dense").layers]
    forced = export.to_graph(model, ternary="sparse")
    assert all(layer.w_enc == "TERN_SPARSE" for layer in forced.layers
               if getattr(layer, "w_enc", "") in ("TERN", "TERN_SPARSE"))
    with pytest.raises(EdgeqError, match="ternary storage"):
        export.to_graph(model, ternary="zip")
    g = export.to_graph(model, ternary="smallest")
    encs = [layer.w_enc for layer in g.layers if hasattr(layer, "w_enc")]
    assert encs[0] == "I16" and encs[-1] == "I8"
    assert "TERN_SPARSE" in encs
    for layer in g.layers[1:]:
        if getattr(layer, "w_enc", "") == "TERN_SPARSE":
            assert (layer.weight == 0).mean() >= 0.84
    _check_exact(model, xte, ternary="smallest")
    info = pack.blob_info(pack.write_blob(g))
    sparse = [r for r in info["layers"] if r.get("w_enc") == "TERN_SPARSE"]
    assert all(r["bits_per_weight"] < 1.0 for r in sparse if r["weights"] > 5000)
    # export_model (the `edgeq train --ternary-storage` path) takes the same choice and proves it
    proved = export.export_model(model, xte[:32], ternary="smallest")
    assert proved.blob == pack.write_blob(g) and proved.report["images"] == 32


def test_ternary_storage_auto_takes_skip_zero_only_on_few_channel_u8_input():
    """'auto': TERN_SPARSE where it runs faster on the Cortex-M4 (the 1-channel U8 first layer of
    twn-cnn; its stream is smaller too), TERN bit-planes on the wider layers; 'sparse' and
    'dense' force one form; the graphs compute the same integers."""
    torch.manual_seed(0)
    model = models.build_model("twn-cnn", (1, 8, 8), [str(i) for i in range(10)]).eval()
    encs = {t: [layer.w_enc for layer in export.to_graph(model, ternary=t).layers if hasattr(layer, "w_enc")]
            for t in export.TERNARY_STORAGE}
    assert encs["auto"][0] == "TERN_SPARSE" and set(encs["auto"][1:]) == {"TERN"}
    assert set(encs["dense"]) == {"TERN"} and set(encs["sparse"]) == {"TERN_SPARSE"}
    px = np.random.default_rng(0).integers(0, 256, (8, 1, 8, 8), dtype=np.uint8)
    gin = export.graph_input(model, px)
    Model = _runtime()
    scores = [Model(export.export_blob(model, ternary=t)).predict(gin)[1] for t in export.TERNARY_STORAGE]
    for sc in scores[1:]:
        np.testing.assert_array_equal(sc, scores[0])


@pytest.mark.parametrize("arch", ["bnn-cnn", "dorefa-w2a2"])
def test_float_first_and_last_layers_export_exactly(arch, digits):
    """'float' first/last layers become F32 layers whose float32 sums (fixed tap order) equal
    torch's eval forward bit for bit, accumulators included; a float layer on non-uniform input
    levels is refused with a clear message."""
    xtr, ytr, xte, yte, classes = digits
    model, _ = train.build_and_train(arch, xtr, ytr, classes, epochs=2, first_wq="float", last_wq="float")
    g = export.to_graph(model)
    encs = [layer.w_enc for layer in g.layers if hasattr(layer, "w_enc")]
    assert encs[0] == "F32" and encs[-1] == "F32" and "F32" not in encs[1:-1]
    assert g.layers[0].thr.dtype == np.float32
    _blob, _ = _check_exact(model, xte)
    assert train.accuracy(model, xte, yte) > 0.5
    hw = models.build_model("hwgq-cnn", (1, 8, 8), classes, last_wq="float")
    with pytest.raises(UnsupportedError, match="float"):
        export.to_graph(hw.eval())


def test_shift_bn_exports_exactly(digits):
    xtr, ytr, xte, _yte, classes = digits
    torch.manual_seed(0)
    model = models.build_model("bnn-cnn", (1, 8, 8), classes, bn="shift")
    train.train_model(model, xtr, ytr, epochs=2, lr=3e-3)
    _check_exact(model, xte[:100], n_ref=2)


def test_checkpoint_roundtrip(tmp_path, digits):
    xtr, ytr, xte, _yte, classes = digits
    model, _ = train.build_and_train("dorefa-w2a2", xtr, ytr, classes, epochs=1)
    train.save_checkpoint(model, tmp_path / "m.pt")
    m2 = train.load_checkpoint(tmp_path / "m.pt")
    np.testing.assert_array_equal(train.predict(m2, xte), train.predict(model, xte))
    assert export.export_blob(m2) == export.export_blob(model)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeqError):
        train.load_checkpoint(tmp_path / "bad.pt")


def test_unexportable_and_unknown():
    with pytest.raises(UnsupportedError):
        models.build_model("nope", (1, 8, 8), list(range(10)))
    m = models.build_model("bnn-cnn", (1, 8, 8), list(range(10)))
    blk = m.blocks[1]
    blk.conv = models.QConv2d(32, 64, 3, padding=2, dilation=2)  # dilation has no IR op
    m.eval()
    with pytest.raises(UnsupportedError, match=r"node 'blocks\.1\.conv'.*dilation=\(2, 2\)"):
        export.to_graph(m)


def test_cli_train_digits(tmp_path, capsys):
    from edgeq import cli

    out = tmp_path / "m.eqb"
    rc = cli.main(["train", "--arch", "bnn-mlp", "--epochs", "2", "--threads", "1", "--out", str(out)])
    assert rc == 0 and out.is_file() and out.with_suffix(".pt").is_file()
    text = capsys.readouterr().out
    assert "test accuracy" in text and "agreement 100.00%" in text
    g = pack.read_blob(out.read_bytes())
    assert g.meta["arch"] == "bnn-mlp" and g.meta["image_shape"] == [1, 8, 8]
    assert cli.main(["train", "--arch", "bnn-mlp", "--data", "npz:/no/file.npz", "--out", str(out)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bnn-cnn", "twn-cnn", "hwgq-cnn"])
def test_digits_default_accuracy(arch, digits):
    xtr, ytr, xte, yte, classes = digits
    model, _ = train.build_and_train(arch, xtr, ytr, classes)
    assert train.accuracy(model, xte, yte) >= 0.9


def test_hwgq_alternating_finetune_stays_exact(digits):
    xtr, ytr, xte, _yte, classes = digits
    model, _ = train.build_and_train("hwgq-cnn", xtr, ytr, classes, epochs=2)
    res = train.alternating_finetune(model, xtr[:128], iters=1, max_rows=512)
    assert res and all(after <= before for before, after in res.values())
    _check_exact(model, xte[:100], n_ref=2)


def test_cli_arch_list_matches_models_and_cli_starts_without_torch():
    import subprocess
    import sys

    from edgeq.cli import build_parser
    from edgeq.train.models import ARCHS, arch_names

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    arch = next(a for a in train._actions if a.dest == "arch")
    assert list(arch.choices) == arch_names() and set(ARCHS) <= set(arch.choices)
    code = "import sys, edgeq.cli; edgeq.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "`edgeq --help` must not import torch"
