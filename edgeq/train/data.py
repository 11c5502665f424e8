"""Data sets for `edgeq train`: every loader returns raw uint8 images (N, C, H, W), int64 labels
and class names.  Specs:

  digits          scikit-learn's bundled 8x8 digits (1797 images, offline; the default).
                  Pixel values 0..16 are scaled to uint8 by round(v * 255 / 16).
  idx:PREFIX      PREFIX-images-idx3-ubyte[.gz] + PREFIX-labels-idx1-ubyte[.gz] (MNIST format)
  folder:DIR      one sub-folder per class (sorted names = class names); images are read as
                  RGB when any has colour, else grey (`color` chooses); one size, or `size`
  npz:FILE        arrays x uint8 (N, H, W) or (N, C, H, W) and y (N,); optional 'classes'
  mnist:DIR       the MNIST benchmark split of `mnist_benchmark_split` (DIR holds train5k/test8k)

Every loader takes the same options: `color` ('gray' | 'rgb'; None keeps the data's own),
`size` (H, W; None keeps the data's) and `resize` (how a frame of another size is fitted, see
`edgeq.format.preprocess`).  Any conversion goes through `preprocess.apply`, the function `edgeq run`,
`eval` and `stream` use, and `preprocess.spec_for_data(x, resize)` is the spec a trainer records.

Fixed train/test split (`split`): a permutation with numpy seed 0; the last 20 % (rounded down)
is the test set.  `load_split(spec)` applies it (or the benchmark split for mnist:).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from ..format import preprocess as P
from ..errors import DataError

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits():
    try:
        from sklearn.datasets import load_digits as _ld
    except ImportError:  # pragma: no cover - depends on the install
        raise DataError("the 'digits' data set needs scikit-learn (pip install 'edgeq[train]')") from None
    d = _ld()
    x = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return x, d.target.astype(np.int64), [str(i) for i in range(10)]


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _find(prefix: str, kind: str) -> Path:
    for suf in (".gz", ""):
        p = Path(f"{prefix}-{kind}{suf}")
        if p.is_file():
            return p
    raise DataError(f"idx data: {prefix}-{kind}[.gz] not found")


def read_idx(path) -> np.ndarray:
    """One IDX file (optionally gzip) -> numpy array (uint8 data only)."""
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: only unsigned-byte IDX data is supported (type {raw[2]:#x})")
    nd = raw[3]
    if len(raw) < 4 + 4 * nd:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{nd}I", raw[4:4 + 4 * nd])
    n = int(np.prod(dims))
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * nd)
    if len(body) != n:
        raise DataError(f"{path}: expected {n} bytes of data for shape {dims}, found {len(body)}")
    return body.reshape(dims)


def load_idx(prefix: str):
    x = read_idx(_find(prefix, "images-idx3-ubyte"))
    y = read_idx(_find(prefix, "labels-idx1-ubyte")).astype(np.int64)
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"idx:{prefix}: images {x.shape} and labels {y.shape} do not match")
    return x[:, None].copy(), y, [str(i) for i in range(int(y.max()) + 1)]


IMG_EXT = P.IMAGE_EXT


def load_folder(root: str, color: str | None = None, size=None, resize: str = "crop"):
    """One sub-folder per class.  Images are read as RGB (or grey); `color` None keeps colour when
    any image has it; each image goes through `preprocess.apply` (colour, then resize to `size`,
    by default the images' common size)."""
    rootp = Path(root)
    if not rootp.is_dir():
        raise DataError(f"folder:{root}: not a directory")
    P.cv2_module()
    classes = sorted(d.name for d in rootp.iterdir() if d.is_dir())
    if not classes:
        raise DataError(f"folder:{root}: no class sub-folders")
    imgs, ys, files = [], [], []
    for ci, cname in enumerate(classes):
        for f in P.image_files(rootp / cname):
            imgs.append(P.read_image(f))
            files.append(f)
            ys.append(ci)
    if not imgs:
        raise DataError(f"folder:{root}: no images found ({', '.join(sorted(IMG_EXT))})")
    if color is None:
        color = "rgb" if any(P.is_colour(im) for im in imgs) else "gray"
    if size is None:
        sizes = {im.shape[:2] for im in imgs}
        if len(sizes) > 1:
            odd = next(f for f, im in zip(files, imgs) if im.shape[:2] != imgs[0].shape[:2])
            raise DataError(f"folder:{root}: image sizes differ ({files[0].name} "
                            f"{imgs[0].shape[1]}x{imgs[0].shape[0]}, {odd.name} ...); give a target "
                            "size with --size HxW (and --resize stretch|crop|letterbox)")
        size = imgs[0].shape[:2]
    spec = P.PreSpec(color=color, size=tuple(size), resize=resize)
    return np.stack([P.apply(im, spec) for im in imgs]), np.asarray(ys, np.int64), classes


def load_npz(path: str):
    if not os.path.isfile(path):
        raise DataError(f"npz:{path}: file not found")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise DataError(f"npz:{path}: not an .npz archive; write one with numpy.savez(path, x=images, y=labels)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise DataError(f"npz:{path}: needs arrays 'x' and 'y' (has {sorted(z.files)})")
            x, y = z["x"], z["y"]
            classes = [str(c) for c in z["classes"]] if "classes" in z else None
    except (ValueError, OSError) as e:
        raise DataError(f"npz:{path}: cannot read ({e})") from None
    if x.dtype != np.uint8:
        raise DataError(f"npz:{path}: x must be uint8 images, got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) != len(y):
        raise DataError(f"npz:{path}: x must be (N,H,W) or (N,C,H,W) with N = len(y); got {x.shape}, {y.shape}")
    if len(y) == 0:
        raise DataError(f"npz:{path}: holds no images (x has shape {x.shape}); give at least one")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise DataError(f"npz:{path}: labels must be >= 0")
    classes = classes or [str(i) for i in range(int(y.max()) + 1)]
    return np.ascontiguousarray(x), y, classes


def load(spec: str, color: str | None = None, size=None, resize: str = "crop"):
    """spec -> (x uint8 (N, C, H, W), y int64 (N,), class_names).  Raises DataError."""
    if spec.startswith("folder:") and spec[7:]:
        return load_folder(spec[7:], color, size, resize)
    x, y, classes = _load_arrays(spec)
    return _convert(x, color, size, resize), y, classes


def _convert(x, color, size, resize):
    """Loaded (N, C, H, W) images -> `color`/`size` through preprocess.apply (None: as they are)."""
    if color is None and size is None:
        return x
    base = P.spec_for_data(x, resize)
    return P.apply_chw(x, P.PreSpec(color=color or base.color, size=tuple(size or base.size), resize=resize))


def _load_arrays(spec: str):
    if spec == "digits":
        return load_digits()
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise DataError(f"bad data spec {spec!r}; use digits, idx:PREFIX, folder:DIR, npz:FILE or mnist:DIR")
    if kind == "idx":
        return load_idx(arg)
    if kind == "npz":
        return load_npz(arg)
    if kind == "mnist":
        xtr, ytr, xte, yte = mnist_benchmark_split(arg)
        return np.concatenate([xtr, xte]), np.concatenate([ytr, yte]), [str(i) for i in range(10)]
    raise DataError(f"unknown data kind {kind!r} in {spec!r}; use digits, idx:, folder:, npz: or mnist:")


def split(x, y, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """The fixed split: permutation(seed); the last floor(N * test_fraction) are the test set."""
    n = len(x)
    perm = np.random.RandomState(seed).permutation(n)
    n_test = int(n * test_fraction)
    if n_test < 1 or n - n_test < 1:
        raise DataError(f"{n} samples are too few to split into train and test")
    tr, te = perm[: n - n_test], perm[n - n_test:]
    return x[tr], y[tr], x[te], y[te]


def mnist_benchmark_split(root):
    """MNIST benchmark split: train on train5k + test8k[0:6000] (11,000 images), evaluate on
    test8k[6000:8000] (2,000 images).  Returns (xtr, ytr, xte, yte), x uint8 (N, 1, 28, 28)."""
    root = str(root)
    a_x, a_y, _ = load_idx(os.path.join(root, "train5k"))
    b_x, b_y, _ = load_idx(os.path.join(root, "test8k"))
    if len(b_x) < 8000:
        raise DataError(f"{root}/test8k has {len(b_x)} images, expected 8000")
    xtr = np.concatenate([a_x, b_x[:6000]])
    ytr = np.concatenate([a_y, b_y[:6000]])
    return xtr, ytr, b_x[6000:8000].copy(), b_y[6000:8000].copy()


def load_split(spec: str, color: str | None = None, size=None, resize: str = "crop"):
    """spec -> (xtr, ytr, xte, yte, class_names) with the fixed split (benchmark split for mnist:);
    color/size/resize as for `load`."""
    if spec.startswith("mnist:"):
        xtr, ytr, xte, yte = mnist_benchmark_split(spec[6:])
        return (_convert(xtr, color, size, resize), ytr, _convert(xte, color, size, resize), yte,
                [str(i) for i in range(10)])
    x, y, classes = load(spec, color, size, resize)
    return (*split(x, y), classes)
