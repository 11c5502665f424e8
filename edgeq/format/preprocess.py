"""Input preprocessing: one implementation for every path (training loaders, `edgeq run`,
`edgeq eval`, `edgeq stream` from files, folders, videos, cameras and the synthetic clip).

Frames are RGB (H, W, 3) or grey (H, W) uint8 arrays.  OpenCV reads and captures BGR; every
reader here converts at once (`read_image`, `video_frames`, `to_rgb`), so nothing downstream
ever sees BGR.  `apply(frame, spec)` turns one frame into the model's raw uint8 pixels (C, H, W):

  1. colour   'gray': ITU-R BT.601 luma (OpenCV's RGB2GRAY); 'rgb': grey frames are replicated
              to three channels; an alpha channel is dropped
  2. resize   to spec.size (H, W) unless the frame already has that size:
                stretch    resize the whole frame (aspect ratio not kept)
                crop       the largest centred region of the target's aspect ratio, resized
                letterbox  resize to fit inside, keeping aspect ratio, centred on spec.pad
              with OpenCV area interpolation when shrinking, bilinear when enlarging
  3. invert   255 - pixel, when spec.invert (dark digits on light paper)

The blob records the spec in its metadata (key "preprocess", `PreSpec.to_meta`).  The step from
these pixels to the network's input codes (THRESH/RAW/QUANT, blob header pre_mode/pre_param) is the
model's own first step, run by the runtime on every target.  Blobs written before the spec existed
get `legacy_spec`: the earlier streaming behaviour (centre crop, area resize).

Only numpy and OpenCV (imported when a frame needs resizing or a file is read); no torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, EdgeqError

COLORS = ("gray", "rgb")
RESIZE_MODES = ("stretch", "crop", "letterbox")
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"}
META_KEY = "preprocess"


def cv2_module():
    try:
        import cv2
    except ImportError:
        raise EdgeqError("reading images and videos needs OpenCV: pip install 'edgeq[camera]' "
                         "(opencv-python-headless)") from None
    return cv2


@dataclass(frozen=True)
class PreSpec:
    """What the host does to a frame before the model's own first step (module docstring)."""

    color: str = "gray"               # 'gray' | 'rgb' (channel order R, G, B)
    size: tuple = (28, 28)            # target (H, W)
    resize: str = "crop"              # 'stretch' | 'crop' | 'letterbox'
    invert: bool = False
    pad: int = 0                      # letterbox fill value

    def __post_init__(self):
        if self.color not in COLORS:
            raise DataError(f"colour {self.color!r} is not one of {', '.join(COLORS)}")
        if self.resize not in RESIZE_MODES:
            raise DataError(f"resize mode {self.resize!r} is not one of {', '.join(RESIZE_MODES)}")
        h, w = (int(v) for v in self.size)
        if h < 1 or w < 1:
            raise DataError(f"target size {h}x{w} must be at least 1x1")
        object.__setattr__(self, "size", (h, w))
        object.__setattr__(self, "pad", int(self.pad) & 0xFF)

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def shape(self) -> tuple:
        """(C, H, W) of the pixels `apply` returns."""
        return (self.channels, *self.size)

    def to_meta(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        d["channels"] = self.channels
        return d

    @classmethod
    def from_meta(cls, d: dict) -> "PreSpec":
        try:
            return cls(color=d["color"], size=tuple(d["size"]), resize=d.get("resize", "crop"),
                       invert=bool(d.get("invert", False)), pad=int(d.get("pad", 0)))
        except (KeyError, TypeError, ValueError, DataError) as e:
            raise DataError(f"blob metadata 'preprocess' is malformed ({e}): {json.dumps(d)[:200]}") from None

    def describe(self) -> str:
        h, w = self.size
        return f"{self.color.upper()} {h}x{w} {self.resize}" + (" inverted" if self.invert else "")


def legacy_spec(input_shape) -> PreSpec:
    """The spec of a blob without one: its (C, H, W), centre crop (the earlier stream behaviour)."""
    c, h, w = input_shape
    return PreSpec(color="gray" if c == 1 else "rgb", size=(h, w), resize="crop")


def spec_of(graph) -> PreSpec:
    """The blob's spec (its metadata), or `legacy_spec` of its input shape.  A spec whose pixels
    would not fill the model's input exactly is refused (metadata is never trusted)."""
    d = (graph.meta or {}).get(META_KEY)
    if not d:
        return legacy_spec(tuple(graph.input_shape))
    spec = PreSpec.from_meta(d) if isinstance(d, dict) else PreSpec.from_meta({})
    if math.prod(spec.shape) != math.prod(graph.input_shape):  # exact: np.prod wraps at 2**63
        raise DataError(f"blob metadata 'preprocess' gives {spec.shape} pixels for a model input of "
                        f"{tuple(graph.input_shape)}; the blob is inconsistent (re-export it)")
    return spec


def spec_for_data(x: np.ndarray, resize: str = "crop") -> PreSpec:
    """The spec that reproduces loaded training images x (N, C, H, W) unchanged."""
    c = x.shape[1]
    if c not in (1, 3):
        raise DataError(f"images with {c} channels: edgeq handles grey (1) or RGB (3)")
    return PreSpec(color="gray" if c == 1 else "rgb", size=tuple(x.shape[2:]), resize=resize)


# ---- colour -------------------------------------------------------------------------------------
def to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """An OpenCV frame (BGR, BGRA or grey) -> RGB (H, W, 3), or grey (H, W) unchanged."""
    img = np.asarray(frame_bgr)
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.ascontiguousarray(img[:, :, 2::-1])
    raise DataError(f"a frame of shape {img.shape} is neither grey (H, W) nor colour (H, W, 3)")


def is_colour(frame: np.ndarray) -> bool:
    """True when a frame has colour: three channels that are not all equal."""
    f = np.asarray(frame)
    return f.ndim == 3 and f.shape[2] >= 3 and not (
        np.array_equal(f[:, :, 0], f[:, :, 1]) and np.array_equal(f[:, :, 1], f[:, :, 2]))


def convert_color(frame: np.ndarray, color: str) -> np.ndarray:
    """RGB/grey frame -> grey (H, W) or RGB (H, W, 3) uint8."""
    img = np.asarray(frame)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise DataError(f"a frame of shape {img.shape} is neither grey (H, W) nor colour (H, W, 3)")
    if color == "gray":
        if img.ndim == 2:
            return img
        return cv2_module().cvtColor(np.ascontiguousarray(img), cv2_module().COLOR_RGB2GRAY)
    if img.ndim == 3:
        return img
    return np.repeat(img[:, :, None], 3, axis=2)


# ---- geometry -----------------------------------------------------------------------------------
def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    cv2 = cv2_module()
    shrink = h <= img.shape[0] and w <= img.shape[1]
    out = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out if out.ndim == img.ndim else out[:, :, None]


def crop_box(fh: int, fw: int, h: int, w: int) -> tuple:
    """(y0, x0, ch, cw): the largest centred region of a fh x fw frame with the aspect of h x w."""
    if fh * w > fw * h:  # frame taller than the target
        ch, cw = max(1, round(fw * h / w)), fw
    else:
        ch, cw = fh, max(1, round(fh * w / h))
    return (fh - ch) // 2, (fw - cw) // 2, ch, cw


def letterbox_box(fh: int, fw: int, h: int, w: int) -> tuple:
    """(y0, x0, nh, nw): where the resized frame lies inside the h x w target."""
    if fh * w > fw * h:
        nh, nw = h, max(1, round(fw * h / fh))
    else:
        nh, nw = max(1, round(fh * w / fw)), w
    return (h - nh) // 2, (w - nw) // 2, nh, nw


def apply(frame: np.ndarray, spec: PreSpec) -> np.ndarray:
    """One RGB or grey frame -> the model's raw uint8 pixels (C, H, W) (module docstring)."""
    img = convert_color(frame, spec.color)
    h, w = spec.size
    fh, fw = img.shape[:2]
    if (fh, fw) != (h, w):
        if spec.resize == "stretch":
            img = _resize(img, h, w)
        elif spec.resize == "crop":
            y0, x0, ch, cw = crop_box(fh, fw, h, w)
            img = _resize(img[y0:y0 + ch, x0:x0 + cw], h, w)
        else:
            y0, x0, nh, nw = letterbox_box(fh, fw, h, w)
            canvas = np.full((h, w) + img.shape[2:], spec.pad, np.uint8)
            canvas[y0:y0 + nh, x0:x0 + nw] = _resize(img, nh, nw)
            img = canvas
    if spec.invert:
        img = 255 - img
    return np.ascontiguousarray(img[None] if img.ndim == 2 else img.transpose(2, 0, 1))


def apply_chw(x: np.ndarray, spec: PreSpec) -> np.ndarray:
    """A batch already in (N, C, H, W) (npz, idx, digits) -> `apply` on every image; the batch
    itself when it already has spec's shape and no inversion (the common case: no copy)."""
    x = np.asarray(x)
    if x.shape[1:] == spec.shape and not spec.invert:
        return x
    out = np.empty((len(x),) + spec.shape, np.uint8)
    for i, img in enumerate(x):
        out[i] = apply(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), spec)
    return out


def to_graph_input(px: np.ndarray, input_shape: tuple) -> np.ndarray:
    """Pixels (..., C, H, W) -> the graph's input shape (differs only for a flattened input)."""
    lead = px.shape[:-3]
    if tuple(px.shape[-3:]) == tuple(input_shape):
        return px
    if int(np.prod(px.shape[-3:])) != int(np.prod(input_shape)):
        raise DataError(f"preprocessed pixels {tuple(px.shape[-3:])} do not fit the model input "
                        f"{tuple(input_shape)}; the blob's 'preprocess' metadata is inconsistent")
    return px.reshape(lead + tuple(input_shape))


# ---- readers (all return RGB or grey) -------------------------------------------------------------
def read_image(path) -> np.ndarray:
    """An image file -> RGB (H, W, 3) or grey (H, W) uint8 (16-bit images scaled to 8 bits)."""
    cv2 = cv2_module()
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: OpenCV could not read this image")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise DataError(f"{path}: {img.dtype} pixels; edgeq reads 8- or 16-bit images")
    return to_rgb(img)


def image_files(folder) -> list:
    """Image files directly inside `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXT)


def class_folders(folder) -> list:
    """Sub-folders of `folder` that hold images (sorted names): a labelled data set's classes."""
    return sorted(d.name for d in Path(folder).iterdir() if d.is_dir() and image_files(d))


def labelled_files(folder, classes: list | None = None) -> tuple:
    """A folder of images or of class sub-folders -> (files, labels or None).  With `classes`
    (a model's class names), sub-folders are labelled by their index there (unknown names: -1)."""
    files = image_files(folder)
    subs = class_folders(folder)
    if files or not subs:
        return files, None
    names = classes if classes is not None else subs
    out, labels = [], []
    for s in subs:
        fs = image_files(Path(folder) / s)
        out += fs
        labels += [names.index(s) if s in names else -1] * len(fs)
    return out, labels


def video_frames(path):
    """Frames of a video file as RGB arrays."""
    cv2 = cv2_module()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"{path}: could not be opened as a video (unsupported codec or not a video)")
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield to_rgb(frame)
    finally:
        cap.release()


def video_labels(path) -> list | None:
    """Labels stored next to a video as PATH.labels.json (a JSON list of class indices), if any."""
    side = Path(path).with_suffix(".labels.json")
    return read_labels(side) if side.is_file() else None


def read_labels(path: Path) -> list:
    """A video's PATH.labels.json: a JSON list with one class index (or null) per frame."""
    fix = "rewrite it as a JSON list of class indices, one per frame, or delete it"
    try:
        labels = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); {fix}") from None
    if not isinstance(labels, list) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in labels):
        raise DataError(f"{path}: expected a list of class indices (ints >= 0 or null), found "
                        f"{type(labels).__name__ if not isinstance(labels, list) else 'other values'}; {fix}")
    return labels


def parse_size(text: str | None) -> tuple | None:
    """'HxW' (or 'N' for N x N) -> (H, W); None stays None."""
    if text is None:
        return None
    h, sep, w = str(text).lower().partition("x")
    try:
        size = (int(h), int(w) if sep else int(h))
    except ValueError:
        size = (0, 0)
    if min(size) < 1 or max(size) > 4096:
        raise DataError(f"size {text!r}: give H x W in pixels, e.g. 28x28 or 48x64")
    return size
