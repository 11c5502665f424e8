"""Data loaders: digits, idx, npz, folder, splits and clear errors."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from edgeq.train import data
from edgeq.errors import DataError

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def test_digits_uint8_nchw():
    x, y, classes = data.load("digits")
    assert x.dtype == np.uint8 and x.shape == (1797, 1, 8, 8)
    assert x.max() == 255 and x.min() == 0
    assert y.dtype == np.int64 and set(y) == set(range(10))
    assert classes == [str(i) for i in range(10)]


def test_fixed_split_is_deterministic_and_disjoint():
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    y = np.arange(100) % 3
    a = data.split(x, y)
    b = data.split(x, y)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert len(a[0]) == 80 and len(a[2]) == 20
    assert not set(a[0].ravel()) & set(a[2].ravel())
    xtr, _ytr, xte, _yte, _cl = data.load_split("digits")
    assert len(xtr) == 1438 and len(xte) == 359


def _write_idx(path, arr, gz=True):
    arr = np.asarray(arr, np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        Path(path).write_bytes(raw)


def test_idx_roundtrip(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (7, 5, 4)).astype(np.uint8)
    y = np.arange(7) % 3
    _write_idx(tmp_path / "foo-images-idx3-ubyte.gz", x)
    _write_idx(tmp_path / "foo-labels-idx1-ubyte", y, gz=False)
    xs, ys, cl = data.load(f"idx:{tmp_path}/foo")
    np.testing.assert_array_equal(xs[:, 0], x)
    np.testing.assert_array_equal(ys, y)
    assert cl == ["0", "1", "2"]
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    _write_idx(tmp_path / "bad-labels-idx1-ubyte.gz", y)
    with pytest.raises(DataError, match="magic"):
        data.load(f"idx:{tmp_path}/bad")
    with pytest.raises(DataError, match="not found"):
        data.load(f"idx:{tmp_path}/nothing")


def test_npz(tmp_path):
    x = np.zeros((4, 6, 6), np.uint8)
    y = np.array([0, 1, 1, 0])
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["cat", "dog"]))
    xs, _ys, cl = data.load(f"npz:{tmp_path}/d.npz")
    assert xs.shape == (4, 1, 6, 6) and cl == ["cat", "dog"]
    np.savez(tmp_path / "f.npz", x=x.astype(np.float32), y=y)
    with pytest.raises(DataError, match="uint8"):
        data.load(f"npz:{tmp_path}/f.npz")
    np.savez(tmp_path / "g.npz", images=x)
    with pytest.raises(DataError, match="'x' and 'y'"):
        data.load(f"npz:{tmp_path}/g.npz")


def test_folder(tmp_path):
    cv2 = pytest.importorskip("cv2")
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / c / f"{i}.png"), np.full((5, 5), 40 * i, np.uint8))
    x, y, cl = data.load(f"folder:{tmp_path}")
    assert x.shape == (6, 1, 5, 5) and cl == ["a", "b"] and list(y) == [0, 0, 0, 1, 1, 1]
    assert x[2, 0, 0, 0] == 80


@pytest.mark.parametrize("spec,msg", [("nope", "bad data spec"), ("zip:x", "unknown data kind"),
                                      ("npz:/no/such.npz", "not found"), ("folder:/no/dir", "not a directory"),
                                      ("idx:", "bad data spec")])
def test_bad_specs(spec, msg):
    with pytest.raises(DataError, match=msg):
        data.load(spec)


@pytest.mark.skipif(not (MNIST / "train5k-images-idx3-ubyte.gz").exists(), reason="shared MNIST not present")
def test_mnist_benchmark_split():
    xtr, _ytr, xte, _yte = data.mnist_benchmark_split(MNIST)
    assert xtr.shape == (11000, 1, 28, 28) and xte.shape == (2000, 1, 28, 28)
    b_x, _b_y, _ = data.load(f"idx:{MNIST}/test8k")
    np.testing.assert_array_equal(xte, b_x[6000:8000])
    np.testing.assert_array_equal(xtr[5000:], b_x[:6000])
