"""Real inputs as a user gives them (subprocess): an RGB folder where colour is the only cue is
trained with `edgeq train --data folder:`, evaluated with `edgeq eval` (per class, confusion
matrix), run with `edgeq run` on images, folders and a video, and streamed from that video."""

import json

import numpy as np
import pytest
from cliutil import edgeq

from edgeq.train import data
from edgeq.format import pack
from edgeq.native.runtime import Model

cv2 = pytest.importorskip("cv2")

# three colours of equal brightness (OpenCV RGB2GRAY gives the same grey for all three), drawn
# without anti-aliasing: the grey images of the classes are indistinguishable
COLOURS = {"blue": (80, 80, 255), "green": (15, 160, 15), "red": (255, 34, 34)}
SIZE = 12


def shape_image(rng, rgb, size=SIZE):
    """A filled circle or square of one colour on black, random size and place: RGB (H, W, 3)."""
    img = np.zeros((size, size, 3), np.uint8)
    r = int(rng.integers(2, 5))
    cy, cx = (int(v) for v in rng.integers(r, size - r, 2))
    if rng.random() < 0.5:
        cv2.circle(img, (cx, cy), r, rgb, -1, lineType=cv2.LINE_8)
    else:
        img[cy - r:cy + r, cx - r:cx + r] = rgb
    return img


def write_shapes(root, n_per_class=100, seed=0):
    rng = np.random.default_rng(seed)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            cv2.imwrite(str(root / name / f"{i:03d}.png"), shape_image(rng, rgb)[:, :, ::-1])  # BGR file
    return root


def video_writer(path, size_hw, fps=10.0):
    """A lossless FFV1 .avi when this OpenCV has it, else MJPG (lossy: compare run and stream on
    the same file, never against the source images)."""
    for fourcc in ("FFV1", "MJPG"):
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (size_hw[1], size_hw[0]))
        if w.isOpened():
            return w, fourcc
    pytest.skip("OpenCV here writes neither FFV1 nor MJPG video")


def test_colours_have_equal_grey():
    greys = {int(cv2.cvtColor(np.array([[c]], np.uint8), cv2.COLOR_RGB2GRAY)[0, 0]) for c in COLOURS.values()}
    assert len(greys) == 1, greys


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("colour")
    root = write_shapes(d / "shapes")
    model = d / "colour.eqb"
    r = edgeq("train", "--data", f"folder:{root}", "--arch", "bnn-cnn", "--width", "0.25", "--epochs", "30",
              "--out", model, timeout=600)
    return d, root, model, r.stdout


def _accuracy(stdout):
    return float(stdout.split("test accuracy ")[1].split("%")[0])


def test_rgb_folder_trains_and_records_its_preprocessing(colour_model):
    d, root, model, out = colour_model
    assert _accuracy(out) >= 95.0, out
    g = pack.read_blob(model.read_bytes())
    assert g.input_shape == (3, SIZE, SIZE)
    assert g.meta["preprocess"] == {"color": "rgb", "size": [SIZE, SIZE], "resize": "crop", "invert": False,
                                    "pad": 0, "channels": 3}
    assert g.meta["data"] == f"folder:{root}" and g.classes == sorted(COLOURS)
    x, _y, _ = data.load(f"folder:{root}")
    assert x.shape[1] == 3 and (x[0, 0].max(), x[0, 2].max()) == (80, 255)  # blue: RGB channel order


def test_grey_loses_the_only_cue(colour_model):
    """The same folder read as grey (--color gray) cannot be learned: colour is the only cue."""
    d, root, _model, _ = colour_model
    r = edgeq("train", "--data", f"folder:{root}", "--color", "gray", "--arch", "bnn-cnn", "--width", "0.25",
              "--epochs", "30", "--out", d / "grey.eqb", timeout=600)
    assert _accuracy(r.stdout) < 60.0, r.stdout
    assert pack.read_blob((d / "grey.eqb").read_bytes()).input_shape == (1, SIZE, SIZE)


def test_eval_defaults_to_the_blobs_test_split_with_confusion(colour_model, tmp_path):
    d, root, model, out = colour_model
    res = json.loads(edgeq("eval", model, "--json", "--plot", tmp_path / "cm.png").stdout)
    xtr, ytr, xte, yte, classes = data.load_split(f"folder:{root}")
    assert res["n"] == len(yte) == 60 and res["data"] == f"folder:{root} (test)"
    assert f"{100 * res['accuracy']:.2f}" == f"{_accuracy(out):.2f}"
    cm = np.array(res["confusion"])
    assert cm.shape == (3, 3) and cm.sum() == 60 and list(cm.sum(1)) == [int((yte == k).sum()) for k in range(3)]
    assert [r["class"] for r in res["per_class"]] == classes
    assert sum(r["correct"] for r in res["per_class"]) == round(res["accuracy"] * 60) == np.trace(cm)
    assert (tmp_path / "cm.png").stat().st_size > 1000
    table = edgeq("eval", model).stdout
    assert "confusion matrix" in table and "red" in table and "accuracy" in table
    # other data: evaluated whole unless --split says otherwise
    np.savez(tmp_path / "other.npz", x=xte, y=yte, classes=np.array(classes))
    other = json.loads(edgeq("eval", model, "--data", f"npz:{tmp_path}/other.npz", "--json").stdout)
    assert other["n"] == 60 and other["accuracy"] == res["accuracy"] and other["confusion"] == res["confusion"]
    part = json.loads(edgeq("eval", model, "--data", f"npz:{tmp_path}/other.npz", "--split", "test",
                            "--json").stdout)
    assert part["n"] == 12


@pytest.fixture(scope="module")
def colour_video(colour_model):
    """A video of the held-out images, enlarged 8x and centred in wider 4:3 frames (the blob's
    centre crop takes the square back), with their labels next to it."""
    d, root, _model, _ = colour_model
    _xtr, _ytr, xte, yte, _ = data.load_split(f"folder:{root}")
    video = d / "shapes.avi"
    hw = (8 * SIZE, 8 * SIZE * 4 // 3)
    w, fourcc = video_writer(video, hw)
    side = (hw[1] - hw[0]) // 2
    for img in xte:
        frame = np.zeros(hw + (3,), np.uint8)
        frame[:, side:side + hw[0]] = np.kron(img.transpose(1, 2, 0), np.ones((8, 8, 1), np.uint8))
        w.write(np.ascontiguousarray(frame[:, :, ::-1]))
    w.release()
    video.with_suffix(".labels.json").write_text(json.dumps(yte.tolist()))
    return video, fourcc


def test_run_on_images_folders_and_video_equals_stream(colour_model, colour_video, tmp_path):
    d, root, model, _ = colour_model
    m = Model(model.read_bytes())
    xtr, ytr, xte, yte, classes = data.load_split(f"folder:{root}")
    # one PNG: no message about pickled arrays, the class by name
    png = root / "red" / "000.png"
    one = json.loads(edgeq("run", model, "--input", png, "--json").stdout)
    assert one["inputs"] == ["000.png"] and one["names"][0] in classes
    # a folder of class sub-folders: labelled, predictions as the Python API on the loaded images
    allx, ally, _ = data.load(f"folder:{root}")
    fol = json.loads(edgeq("run", model, "--input", root, "--json").stdout)
    assert fol["labels"] == ally.tolist() and fol["predictions"] == m.predict(allx)[0].tolist()
    video, fourcc = colour_video
    run = json.loads(edgeq("run", model, "--input", video, "--json").stdout)
    assert len(run["predictions"]) == 60 and run["labels"] == yte.tolist()
    run_acc = float(np.mean(np.array(run["predictions"]) == yte))
    if fourcc == "FFV1":  # lossless: the frames are the test images themselves
        assert run["predictions"] == m.predict(xte)[0].tolist()
    assert run_acc >= 0.95, run_acc
    save = tmp_path / "view.avi"
    r = edgeq("stream", "--board", "host", "--model", model, "--source", video, "--json", "--save", save)
    lines = [json.loads(v) for v in r.stdout.splitlines()]
    assert [v["class"] for v in lines] == run["predictions"]
    assert [v["name"] for v in lines] == run["names"] and [v["label"] for v in lines] == yte.tolist()
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    assert summary["accuracy"] == round(run_acc, 4) and summary["frames"] == 60
    # the saved view: frame (aspect kept) next to the 12x12 model input, with a text bar
    cap = cv2.VideoCapture(str(save))
    ok, view = cap.read()
    assert ok and view.shape[0] == 240 + 48 and view.shape[1] >= 320 + 8 + 240
    cap.release()


def test_run_errors_are_one_line(colour_model, tmp_path):
    _d, root, model, _ = colour_model
    (tmp_path / "notes.txt").write_text("hi")
    for bad, needle in [(tmp_path / "nope.png", "not found"), (tmp_path / "notes.txt", "not an image"),
                        (tmp_path, "no images")]:
        r = edgeq("run", model, "--input", bad, check=False)
        assert r.returncode == 2 and r.stderr.startswith("edgeq: ") and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    (tmp_path / "broken.png").write_bytes(b"not a png")
    r = edgeq("run", model, "--input", tmp_path / "broken.png", check=False)
    assert r.returncode == 2 and "could not read" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.qemu
@pytest.mark.slow
def test_colour_video_on_the_emulated_board(colour_model, colour_video, private_board_state):
    """The RGB model on qemu-mps2-an386: the streamed video gives `edgeq run`'s predictions, and
    the summary names both rates (measured and chip time from the board's ticks)."""
    import shutil

    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")
    _d, _root, model, _ = colour_model
    video, _ = colour_video
    run = json.loads(edgeq("run", model, "--input", video, "--json").stdout)
    edgeq("flash", model, "--board", "qemu-mps2-an386")
    r = edgeq("stream", "--board", "qemu-mps2-an386", "--model", model, "--source", video, "--json")
    lines = [json.loads(v) for v in r.stdout.splitlines()]
    assert [v["class"] for v in lines] == run["predictions"] and all(v["chip_ms"] > 0 for v in lines)
    summary = json.loads(r.stderr.strip().splitlines()[-1])["summary"]
    yte = np.array(run["labels"])
    assert summary["accuracy"] == round(float(np.mean(np.array(run["predictions"]) == yte)), 4) >= 0.95
    assert summary["chip_fps"] > 0 and summary["fps"] > 0


def test_stream_and_eval_errors_are_one_line(colour_model, tmp_path):
    _d, root, model, _ = colour_model
    for args, needle in [(("stream", "--board", "host", "--model", model, "--source", root, "--save",
                           tmp_path / "v.png"), ".mp4, .avi or .mkv"),
                         (("stream", "--board", "host", "--model", model, "--source", root, "--save",
                           tmp_path / "no" / "v.mp4"), "does not exist"),
                         (("eval", model, "--plot", tmp_path / "no" / "cm.png"), "cannot write"),
                         (("eval", model, "--data", f"folder:{tmp_path}/none"), "not a directory")]:
        r = edgeq(*args, check=False)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_rates_are_named_for_what_they_measure(colour_model):
    from edgeq.deploy.profile import instr_ns, rate_labels

    measured, chip = rate_labels("qemu-mps2-an386")
    assert "emulator" in measured and "measured" in measured
    assert "chip-time" in chip and "-icount" in chip and "32 ns" in chip and instr_ns("qemu-mps2-an386") == 32
    assert "sim" in rate_labels("sim")[0] and instr_ns("sim") == 0 and instr_ns("host") == 0
    _d, root, model, _ = colour_model
    live = edgeq("stream", "--board", "host", "--model", model, "--source", root, "--limit", "5").stdout
    assert "fps (host C runtime, measured)" in live and "label" in live and "frames 5" in live
