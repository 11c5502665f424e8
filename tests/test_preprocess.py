"""One preprocessing everywhere: the same frames through the training loader, `edgeq run`,
`edgeq eval` and `edgeq stream` (folder, video, camera, synthetic) give identical pixels, and
the geometry/colour steps match plain numpy references."""

import json

import numpy as np
import pytest
from cliutil import edgeq

from edgeq.deploy import evaluate as E
from edgeq.train import data
from edgeq.format import pack
from edgeq.deploy import stream
from edgeq.format import preprocess as P
from edgeq.errors import DataError
from edgeq.format.graph import Conv, Graph
from edgeq.native.runtime import Model

cv2 = pytest.importorskip("cv2")
H, W = 12, 16


def rgb_graph(spec: P.PreSpec, n_cls: int = 2, seed: int = 0) -> Graph:
    """RAW (3, H, W) input, one int8 dense layer; the blob records `spec`."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, (n_cls, H, W, 3)).astype(np.int8)
    fc = Conv(w, "I8", "AFFINE", mul=np.ones(n_cls, np.int32), add=np.zeros(n_cls, np.int32), name="fc")
    return Graph((3, H, W), "RAW", 0, [fc], classes=["a", "b"][:n_cls], meta={"preprocess": spec.to_meta()})


def frames(seed=0):
    """Smooth colour pictures of two sizes and one grey frame (RGB (h, w, 3) / grey (h, w))."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in [(30, 40), (30, 40), (45, 20), (30, 40)]:
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 255 // w), (yy * 255 // h), np.full((h, w), rng.integers(0, 256))], -1)
        img = (img + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
        out.append(img)
    out.append(cv2.cvtColor(out[0], cv2.COLOR_RGB2GRAY))
    return out


def write_folder(root, imgs):
    """Images alternately into class folders a/ and b/ (written as files: BGR for OpenCV)."""
    files = []
    for i, img in enumerate(imgs):
        d = root / "ab"[i % 2]
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"{i:02d}.png"
        cv2.imwrite(str(f), img if img.ndim == 2 else img[:, :, ::-1])
        files.append(f)
    return files


@pytest.mark.parametrize("resize", P.RESIZE_MODES)
def test_every_path_gives_the_same_pixels(tmp_path, resize):
    spec = P.PreSpec(color="rgb", size=(H, W), resize=resize)
    g = rgb_graph(spec)
    imgs = frames()
    files = write_folder(tmp_path / "f", imgs)
    order = sorted(range(len(files)), key=lambda i: (files[i].parent.name, files[i].name))  # folder order
    want = np.stack([P.apply(imgs[i], spec) for i in order])
    assert want.shape == (len(imgs), 3, H, W)
    # training loader, `edgeq run`, `edgeq eval`, `edgeq stream` from the folder
    x_train, y_train, _ = data.load(f"folder:{tmp_path}/f", "rgb", (H, W), resize)
    x_run, names, labels = stream.load_inputs(str(tmp_path / "f"), g)
    x_eval, y_eval, _ = E.load_eval_data(g, f"folder:{tmp_path}/f", None)
    src = stream.FolderSource(str(tmp_path / "f"), g.classes)
    x_stream = np.stack([stream.prepare(f, g) for f, _ in src.frames()])
    for x in (x_train, x_run, x_eval, x_stream):
        np.testing.assert_array_equal(x, want)
    assert labels == y_train.tolist() == y_eval.tolist() == [int(files[i].parent.name == "b") for i in order]
    # a lossless video of the 30x40 frames: `edgeq run` on it and the stream's video source
    vid_frames = [im for im in imgs if im.shape == (30, 40, 3)]
    video = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 5, (40, 30))
    if not w.isOpened():
        pytest.skip("this OpenCV cannot write lossless FFV1 video")
    for im in vid_frames:
        w.write(np.ascontiguousarray(im[:, :, ::-1]))
    w.release()
    want_v = np.stack([P.apply(im, spec) for im in vid_frames])
    np.testing.assert_array_equal(stream.load_inputs(str(video), g)[0], want_v)
    x_vs = np.stack([stream.prepare(f, g) for f, _ in stream.VideoSource(str(video)).frames()])
    np.testing.assert_array_equal(x_vs, want_v)
    # a camera (OpenCV capture: BGR frames)
    cam = object.__new__(stream.CameraSource)
    cam.cap = _FakeCapture([im if im.ndim == 2 else im[:, :, ::-1] for im in imgs])
    x_cam = np.stack([stream.prepare(f, g) for f, _ in cam.frames()])
    np.testing.assert_array_equal(x_cam, np.stack([P.apply(im, spec) for im in imgs]))


class _FakeCapture:
    def __init__(self, bgr):
        self.bgr = list(bgr)

    def read(self):
        return (True, self.bgr.pop(0)) if self.bgr else (False, None)


def test_synthetic_frames_through_the_loader_and_stream(tmp_path):
    """The synthetic clip's frames written as files and read back by the training loader equal
    what the stream feeds the model (grey frames, a grey 8x8 spec)."""
    spec = P.PreSpec(color="gray", size=(8, 8), resize="stretch")
    g = Graph((1, 8, 8), "RAW", 0, [Conv(np.ones((10, 8, 8, 1), np.int8), "I8", "AFFINE",
                                         mul=np.ones(10, np.int32), add=np.zeros(10, np.int32))],
              classes=[str(i) for i in range(10)], meta={"preprocess": spec.to_meta()})
    src = stream.SyntheticSource(n_frames=12, size=40, seed=3)
    items = list(src.frames())
    for i, (f, lab) in enumerate(items):
        (tmp_path / str(lab)).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / str(lab) / f"{i:02d}.png"), f)
    x, y, classes = data.load(f"folder:{tmp_path}", "gray", (8, 8), "stretch")
    order = sorted(range(len(items)), key=lambda i: (str(items[i][1]), f"{i:02d}"))
    np.testing.assert_array_equal(x, np.stack([stream.prepare(items[i][0], g) for i in order]))
    assert [classes[v] for v in y] == [str(items[i][1]) for i in order]


def test_cli_run_stream_eval_agree_on_a_folder(tmp_path):
    spec = P.PreSpec(color="rgb", size=(H, W), resize="letterbox")
    g = rgb_graph(spec, seed=1)
    model = tmp_path / "m.eqb"
    model.write_bytes(pack.write_blob(g))
    write_folder(tmp_path / "f", frames(1) * 2)
    x, y, _ = data.load(f"folder:{tmp_path}/f", "rgb", (H, W), "letterbox")
    cls, scores = Model(model.read_bytes()).predict(x)
    run = json.loads(edgeq("run", model, "--input", tmp_path / "f", "--json").stdout)
    assert run["predictions"] == cls.tolist() and run["scores"] == scores.tolist() and run["labels"] == y.tolist()
    r = edgeq("stream", "--board", "host", "--model", model, "--source", tmp_path / "f", "--json")
    assert [json.loads(v)["class"] for v in r.stdout.splitlines()] == cls.tolist()
    ev = json.loads(edgeq("eval", model, "--data", f"folder:{tmp_path}/f", "--json").stdout)
    assert ev["n"] == len(y) and ev["accuracy"] == float(np.mean(cls == y))


# ---- the steps against plain references ------------------------------------------------------------
def test_read_image_is_rgb(tmp_path):
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :, 0] = 255  # red in RGB
    cv2.imwrite(str(tmp_path / "r.png"), img[:, :, ::-1])
    np.testing.assert_array_equal(P.read_image(tmp_path / "r.png"), img)
    bgra = np.dstack([img[:, :, ::-1], np.full((4, 6), 7, np.uint8)])
    np.testing.assert_array_equal(P.to_rgb(bgra), img)
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 3), 9, np.uint8))
    assert P.read_image(tmp_path / "g.png").shape == (3, 3)


def test_grey_is_bt601_luma():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3)).astype(np.uint8)
    ref = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    got = P.apply(rgb, P.PreSpec(color="gray", size=(9, 7)))[0]
    assert np.abs(got - ref).max() <= 0.51
    np.testing.assert_array_equal(P.apply(got, P.PreSpec(color="rgb", size=(9, 7))), np.stack([got] * 3))


def test_geometry():
    frame = np.zeros((20, 40), np.uint8)
    frame[:, 10:30] = 200  # the centred 20x20 square
    crop = P.apply(frame, P.PreSpec(size=(10, 10), resize="crop"))[0]
    assert (crop == 200).all()
    box = P.apply(np.full((20, 40), 200, np.uint8), P.PreSpec(size=(10, 10), resize="letterbox", pad=3))[0]
    ref = np.full((10, 10), 3, np.uint8)
    ref[2:7] = 200  # 20x40 fits as 5x10, centred
    np.testing.assert_array_equal(box, ref)
    blocks = np.kron(np.random.default_rng(1).integers(0, 256, (5, 4)), np.ones((4, 10))).astype(np.uint8)
    np.testing.assert_array_equal(P.apply(blocks, P.PreSpec(size=(5, 4), resize="stretch"))[0], blocks[::4, ::10])
    same = np.random.default_rng(2).integers(0, 256, (6, 5, 3)).astype(np.uint8)
    for mode in P.RESIZE_MODES:  # a frame of the target size is passed through untouched
        np.testing.assert_array_equal(P.apply(same, P.PreSpec("rgb", (6, 5), mode)), same.transpose(2, 0, 1))
    inv = P.apply(same, P.PreSpec("rgb", (6, 5), invert=True))
    np.testing.assert_array_equal(inv, 255 - same.transpose(2, 0, 1))
    assert P.crop_box(30, 40, 12, 16) == (0, 0, 30, 40) and P.letterbox_box(45, 20, 12, 16) == (0, 5, 12, 5)


def test_old_blobs_keep_the_earlier_stream_preprocessing():
    """A blob without the spec: grey, centre square crop, area resize (the earlier `prepare`)."""
    from boardutil import small_graph

    g = small_graph()
    assert "preprocess" not in g.meta and P.spec_of(g) == P.PreSpec("gray", (28, 28), "crop")
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3)).astype(np.uint8)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    old = cv2.resize(grey[:, 10:70], (28, 28), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(stream.prepare(frame, g)[0], old)
    np.testing.assert_array_equal(stream.prepare(frame, g, invert=True)[0], 255 - old)


def test_spec_round_trip_and_errors():
    s = P.PreSpec("rgb", (H, W), "letterbox", invert=True, pad=114)
    g = pack.read_blob(pack.write_blob(rgb_graph(s)))
    assert P.spec_of(g) == s and s.shape == (3, H, W)
    with pytest.raises(DataError, match="resize mode"):
        P.PreSpec(resize="squash")
    with pytest.raises(DataError, match="colour"):
        P.PreSpec(color="bgr")
    with pytest.raises(DataError, match="malformed"):
        P.PreSpec.from_meta({"size": [1, 2]})
    bad = rgb_graph(s)
    bad.meta["preprocess"] = {"color": "rgb", "size": [100000, 100000]}
    with pytest.raises(DataError, match="inconsistent"):
        P.spec_of(bad)
    # a size whose pixel count wraps to the model's modulo 2**64 (np.prod's int64) is refused too
    h = next(h for h in range(3, 99, 2) if H * W % h and H * W * pow(h, -1, 2**64) % 2**64 < 2**63)
    bad.meta["preprocess"] = {"color": "rgb", "size": [h, H * W * pow(h, -1, 2**64) % 2**64]}
    with pytest.raises(DataError, match="inconsistent"):
        P.spec_of(bad)
    bad.meta["preprocess"] = "rgb"
    with pytest.raises(DataError, match="malformed"):
        P.spec_of(bad)
    assert P.parse_size("48x64") == (48, 64) and P.parse_size("28") == (28, 28) and P.parse_size(None) is None
    for bad in ("0x4", "axb", "5000x2"):
        with pytest.raises(DataError, match="H x W"):
            P.parse_size(bad)


def test_folder_sizes_and_colour_choice(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "0.png"), np.full((10, 10, 3), (0, 0, 255), np.uint8))
    cv2.imwrite(str(tmp_path / "b" / "0.png"), np.full((8, 12), 50, np.uint8))
    with pytest.raises(DataError, match="--size"):
        data.load(f"folder:{tmp_path}")
    x, y, _ = data.load(f"folder:{tmp_path}", size=(6, 6))
    assert x.shape == (2, 3, 6, 6) and (x[0, 0] == 255).all() and (x[0, 2] == 0).all()  # colour kept, RGB
    assert (x[1] == 50).all()  # a grey image among colour ones: replicated
    xg, _, _ = data.load(f"folder:{tmp_path}", color="gray", size=(6, 6))
    assert xg.shape == (2, 1, 6, 6) and xg[0, 0, 0, 0] == 76  # red's luma
    # npz data converted through the same function
    np.savez(tmp_path / "d.npz", x=np.full((3, 4, 4), 9, np.uint8), y=np.arange(3))
    xr, _, _ = data.load(f"npz:{tmp_path}/d.npz", color="rgb", size=(2, 2))
    assert xr.shape == (3, 3, 2, 2) and (xr == 9).all()
