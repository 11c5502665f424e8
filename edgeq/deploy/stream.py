"""Stream frames from a camera, video file, image folder or a synthetic clip to a target
(board or host), with the blob's preprocessing, pipelining, live stats and optional outputs.

Sources (`--source`):
  camera:N      OpenCV capture device N (live: frames are dropped when the board is slower)
  PATH.mp4/...  a video file (read at the board's pace; never dropped unless --realtime); labels
                from PATH.labels.json when present
  DIR           a folder of images (sorted by name), or of class sub-folders named like the
                model's classes (then labels are known)
  synthetic     a generated clip of digits (needs no files; labels known, so accuracy is shown)

Every source yields RGB (or grey) frames: OpenCV's BGR is converted where it is read.  Each
frame goes through `edgeq.format.preprocess.apply` with the blob's recorded spec (the same function the
training loaders, `edgeq run` and `edgeq eval` use), then the blob's own step (THRESH bits packed
for the wire: an MNIST frame is 98 bytes).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..format import preprocess as P
from .. import spec
from ..errors import EdgeqError
from ..format.graph import Graph
from ..format.bits import wire_input

IMAGE_EXT = P.IMAGE_EXT


def _cv2():
    return P.cv2_module()


# ---- sources -----------------------------------------------------------------------------------
class Source:
    live = False  # frames arrive on their own clock (camera); others are pulled at our pace
    fps = 30.0

    def frames(self):
        """Yields (frame uint8 (H, W) grey or (H, W, 3) RGB, label or None)."""
        raise NotImplementedError


class CameraSource(Source):
    live = True

    def __init__(self, index: int):
        cv2 = _cv2()
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            raise EdgeqError(f"camera {index} could not be opened; check it is connected and free "
                             "(try another index: camera:1)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0

    def frames(self):
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield P.to_rgb(frame), None


class VideoSource(Source):
    def __init__(self, path: str):
        cv2 = _cv2()
        if not Path(path).is_file():
            raise EdgeqError(f"video file {path!r} does not exist")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise EdgeqError(f"{path!r} could not be opened as a video (unsupported codec or not a video)")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        cap.release()
        self.path = path
        # labels written next to the video (e.g. by `write_synthetic_video`), optional
        self.labels = P.video_labels(path)

    def frames(self):
        for i, frame in enumerate(P.video_frames(self.path)):
            yield frame, (self.labels[i] if self.labels and i < len(self.labels) else None)


class FolderSource(Source):
    """Images in a folder (sorted by name), or in class sub-folders (labelled by `classes`)."""

    def __init__(self, path: str, classes: list | None = None):
        self.files, self.labels = P.labelled_files(path, classes)
        if not self.files:
            raise EdgeqError(f"no images ({', '.join(sorted(IMAGE_EXT))}) in folder {path!r} "
                             "or its sub-folders")

    def frames(self):
        for i, p in enumerate(self.files):
            label = self.labels[i] if self.labels else None
            yield P.read_image(p), (label if label is None or label >= 0 else None)


class SyntheticSource(Source):
    """A clip of digits: held-out images of the built-in digits data (or MNIST-shaped upscales),
    pasted into larger frames with a little jitter and noise. Labels are known."""

    def __init__(self, n_frames: int = 120, size: int = 96, seed: int = 0, data: str = "digits"):
        from ..train.data import load_split

        _, _, xte, yte, _ = load_split(data)
        self.x, self.y = xte[:, 0], yte
        self.n, self.size, self.rng = n_frames, size, np.random.default_rng(seed)

    def frames(self):
        cv2 = _cv2()
        for _ in range(self.n):
            j = int(self.rng.integers(len(self.x)))
            digit = self.x[j]
            box = int(self.size * self.rng.uniform(0.92, 1.0))  # digit fills the frame, as in training
            d = cv2.resize(digit, (box, box), interpolation=cv2.INTER_LINEAR)
            frame = np.zeros((self.size, self.size), np.uint8)
            oy, ox = (int(v) for v in self.rng.integers(0, self.size - box + 1, 2))
            frame[oy:oy + box, ox:ox + box] = d
            noise = self.rng.normal(0, 6, frame.shape)
            yield np.clip(frame + noise, 0, 255).astype(np.uint8), int(self.y[j])


def open_source(spec: str, classes: list | None = None, **kw) -> Source:
    """--source -> a Source; `classes` (the model's) label folders of class sub-folders."""
    if spec == "synthetic":
        return SyntheticSource(**kw)
    if spec.startswith("camera:"):
        try:
            return CameraSource(int(spec[7:]))
        except ValueError:
            raise EdgeqError(f"bad camera spec {spec!r}; use camera:0") from None
    p = Path(spec)
    if p.is_dir():
        return FolderSource(spec, classes)
    if p.suffix.lower() in IMAGE_EXT and p.is_file():
        raise EdgeqError(f"{spec!r} is one image; give its folder, or a video file "
                         f"(`edgeq run MODEL --input {spec}` runs one image)")
    return VideoSource(spec)


def write_synthetic_video(path: str, n_frames: int = 60, size: int = 96, seed: int = 0,
                          data: str = "digits", fps: float = 15.0) -> list:
    """Write a synthetic digits clip (mp4v) plus PATH.labels.json; returns the labels."""
    cv2 = _cv2()
    src = SyntheticSource(n_frames, size, seed, data)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    if not out.isOpened():
        raise EdgeqError(f"cannot write video {path!r}")
    labels = []
    for frame, label in src.frames():
        out.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        labels.append(label)
    out.release()
    Path(path).with_suffix(".labels.json").write_text(json.dumps(labels))
    return labels


def load_inputs(path: str, g: Graph, invert: bool = False) -> tuple:
    """`edgeq run --input` for an image file, a folder (of images or of class sub-folders named
    like the model's classes) or a video -> (pixels (N, *input shape) uint8, names, labels or
    None), through the same sources and `prepare` as streaming."""
    p = Path(path)
    if not p.exists():
        raise EdgeqError(f"input {path!r} not found (an image, a folder of images, a video or a .npy)")
    if p.is_file() and p.suffix.lower() in IMAGE_EXT:
        items, names = [(P.read_image(p), None)], [p.name]
    elif p.is_dir():
        src = FolderSource(path, g.classes)
        items, names = list(src.frames()), [str(f.relative_to(p)) for f in src.files]
    elif p.suffix.lower() in P.VIDEO_EXT:
        items = list(VideoSource(path).frames())
        names = [f"frame {i}" for i in range(len(items))]
        if not items:
            raise EdgeqError(f"{path}: the video has no frames OpenCV can decode")
    else:
        raise EdgeqError(f"{path}: not an image ({', '.join(sorted(IMAGE_EXT))}), a video "
                         f"({', '.join(sorted(P.VIDEO_EXT))}), a folder or a .npy")
    px = np.stack([prepare(f, g, invert) for f, _ in items])
    labels = [lab for _, lab in items]
    return px, names, (labels if any(v is not None for v in labels) else None)


# ---- preprocessing -------------------------------------------------------------------------------
def prepare(frame: np.ndarray, g: Graph, invert: bool = False) -> np.ndarray:
    """An RGB or grey frame -> raw uint8 pixels in the model's input shape, by the blob's spec
    (`edgeq.format.preprocess`); `invert` flips the spec's inversion (the --invert flag)."""
    spec = P.spec_of(g)
    if invert:
        spec = dataclasses.replace(spec, invert=not spec.invert)
    return P.to_graph_input(P.apply(frame, spec), g.input_shape)


def wire_of(pixels_chw: np.ndarray, g: Graph) -> bytes:
    """What the board receives for one frame (docs/blob-format.md, wire input)."""
    return wire_input(pixels_chw, spec.value(spec.PRE, g.pre_mode), g.pre_param)


# ---- the loop -------------------------------------------------------------------------------------
@dataclass
class StreamStats:
    frames: int = 0
    dropped: int = 0
    correct: int = 0
    labelled: int = 0
    latencies: list = field(default_factory=list)
    t0: float = 0.0
    t1: float = 0.0
    bytes_out: int = 0
    bytes_in: int = 0
    link_rate: float = 0.0  # measured bytes/s the link can carry (0: unknown)
    predictions: list = field(default_factory=list)
    tick_hz: int = 0        # the board's tick counter rate (0: the target reports no ticks)
    chip_seconds: list = field(default_factory=list)  # per frame: board ticks / tick_hz

    @property
    def seconds(self) -> float:
        return max(self.t1 - self.t0, 1e-9)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def fps_at(self, now: float) -> float:
        """Frames per second measured so far (the link/emulator rate, host wall clock)."""
        return self.frames / max(now - self.t0, 1e-9)

    @property
    def chip_fps(self) -> float | None:
        """1 / median chip time per inference from the board's tick counter (None: no ticks).
        Under QEMU -icount the ticks follow virtual time (a fixed time per instruction)."""
        return 1.0 / float(np.median(self.chip_seconds)) if self.chip_seconds else None

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else 0.0

    @property
    def link_bps(self) -> float:
        return (self.bytes_out + self.bytes_in) / self.seconds

    @property
    def utilisation(self) -> float:
        return self.link_bps / self.link_rate if self.link_rate and np.isfinite(self.link_rate) else 0.0

    def summary(self) -> dict:
        chip = self.chip_fps
        return dict(frames=self.frames, dropped=self.dropped, fps=round(self.fps, 2),
                    chip_fps=round(chip, 2) if chip else None,
                    chip_ms=round(1000 / chip, 3) if chip else None,
                    latency_p50_ms=round(self.pct(50), 2), latency_p95_ms=round(self.pct(95), 2),
                    accuracy=round(self.correct / self.labelled, 4) if self.labelled else None,
                    labelled=self.labelled, link_bytes_per_s=round(self.link_bps, 1),
                    link_capacity_bytes_per_s=round(self.link_rate, 1) if np.isfinite(self.link_rate) else None,
                    link_utilisation=round(self.utilisation, 3))


def _producer(src: Source, q: "queue.Queue", stop: threading.Event, realtime: bool, stats: StreamStats):
    """Reads frames into q. Live/realtime sources drop the oldest queued frame when the consumer
    is behind (bounded memory); file sources block instead, so nothing is dropped."""
    period = 1.0 / src.fps if realtime and not src.live else 0.0
    try:
        for item in src.frames():
            if stop.is_set():
                break
            if src.live or realtime:
                while True:
                    try:
                        q.put_nowait(item)
                        break
                    except queue.Full:
                        try:
                            q.get_nowait()
                            stats.dropped += 1
                        except queue.Empty:
                            pass
                if period:
                    time.sleep(period)
            else:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
    except BaseException as e:  # surfaced by the consumer
        q.put(e)
        return
    q.put(None)


def run_stream(target, g: Graph, src: Source, *, limit: int | None = None, realtime: bool = False,
               invert: bool = False, on_frame=None, save: str | None = None,
               measure_link: bool = True, stats: StreamStats | None = None) -> StreamStats:
    """Stream frames through `target`, pipelined to its depth. on_frame(i, frame, cls, scores,
    latency_s, label) is called for every result in order; `stats` (optional) is filled live.
    `save` writes the annotated view (`annotate`) of every frame to a video file."""
    stats = StreamStats() if stats is None else stats
    if measure_link:
        stats.link_rate = target.link_rate()
    stats.tick_hz = target.tick_hz()  # asked before any INFER is in flight
    threaded = src.live or realtime  # frames on their own clock: a producer thread may drop
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    th = threading.Thread(target=_producer, args=(src, q, stop, realtime, stats), daemon=True)
    frames = None if threaded else iter(src.frames())  # pulled at the board's pace, never dropped
    writer = _ClipWriter(save, src.fps) if save else None
    inflight: list = []  # (index, frame, pixels, label, t_sent)
    stats.t0 = time.perf_counter()
    if threaded:
        th.start()
    i = 0
    exhausted = False
    try:
        while True:
            while not exhausted and len(inflight) < target.depth and (limit is None or i < limit):
                item = q.get() if threaded else next(frames, None)
                if item is None:
                    exhausted = True
                    break
                if isinstance(item, BaseException):
                    raise item
                frame, label = item
                px = prepare(frame, g, invert)
                target.submit(wire_of(px, g))
                inflight.append((i, frame, px, label, time.perf_counter()))
                i += 1
            if not inflight:
                break
            idx, frame, px, label, t_sent = inflight.pop(0)
            cls, scores = target.collect()
            now = time.perf_counter()
            lat = now - t_sent
            stats.frames += 1
            stats.latencies.append(lat)
            stats.predictions.append(int(cls))
            if stats.tick_hz and target.last_ticks:
                stats.chip_seconds.append(target.last_ticks / stats.tick_hz)
            if label is not None:
                stats.labelled += 1
                stats.correct += int(cls == label)
            if writer is not None:
                writer.write(annotate(frame, px, g, int(cls), int(np.max(scores)), label, stats, now))
            if on_frame:
                on_frame(idx, frame, int(cls), scores, lat, label)
    finally:
        stop.set()
        stats.t1 = time.perf_counter()
        stats.bytes_out, stats.bytes_in = target.bytes_out, target.bytes_in
        if writer is not None:
            writer.close()
        while th.is_alive():  # unblock the producer if it waits on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            th.join(timeout=0.05)
    return stats


# ---- the annotated view (--save) ------------------------------------------------------------------
VIEW_H = 240      # height of the frame and of the model-input panel
BAR_H = 48        # text bar below them
GREEN, RED, WHITE, GREY = (40, 200, 40), (230, 40, 40), (255, 255, 255), (150, 150, 150)


def class_name(g: Graph, cls: int) -> str:
    return g.classes[cls] if 0 <= cls < len(g.classes) else str(cls)


def annotate(frame: np.ndarray, px: np.ndarray, g: Graph, cls: int, score: int, label, stats: StreamStats,
             now: float) -> np.ndarray:
    """RGB view of one result: the frame (aspect kept) | what the model saw (its C x H x W pixels,
    enlarged without smoothing) over a bar with the class name, score, label (when known) and fps."""
    cv2 = _cv2()
    rgb = P.convert_color(frame, "rgb")
    fh, fw = rgb.shape[:2]
    w1 = max(1, round(fw * VIEW_H / fh))
    left = cv2.resize(rgb, (w1, VIEW_H), interpolation=cv2.INTER_AREA if fh > VIEW_H else cv2.INTER_NEAREST)
    seen = px.reshape(P.spec_of(g).shape)
    note = ""
    if g.pre_mode == "THRESH":  # the network sees bits: show them
        seen = np.where(seen >= g.pre_param, 255, 0).astype(np.uint8)
        note = f", pixel >= {g.pre_param}"
    seen = P.convert_color(seen[0] if seen.shape[0] == 1 else seen.transpose(1, 2, 0), "rgb")
    sh, sw = seen.shape[:2]
    w2 = max(1, round(sw * VIEW_H / sh))
    right = cv2.resize(seen, (w2, VIEW_H), interpolation=cv2.INTER_NEAREST)
    width = max(w1 + 8 + w2, 360)
    view = np.zeros((VIEW_H + BAR_H, width, 3), np.uint8)
    view[:VIEW_H, :w1] = left
    view[:VIEW_H, w1 + 8:w1 + 8 + w2] = right
    cv2.rectangle(view, (0, 0), (w1 - 1, VIEW_H - 1), GREY, 1)
    cv2.rectangle(view, (w1 + 8, 0), (w1 + 7 + w2, VIEW_H - 1), GREY, 1)
    _caption(view, f"frame {fw}x{fh}", 1)
    _caption(view, f"model input {sw}x{sh}{note}", w1 + 9)
    ok = label is None or label == cls
    text = f"{class_name(g, cls)}  score {score}"
    if label is not None:
        text += f"  label {class_name(g, label)}"
    cv2.putText(view, text, (6, VIEW_H + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, GREEN if ok else RED, 1, cv2.LINE_AA)
    rate = f"{stats.fps_at(now):.1f} fps measured"
    if stats.chip_fps:
        rate += f" | {stats.chip_fps:.1f} fps chip time"
    cv2.putText(view, rate, (6, VIEW_H + 41), cv2.FONT_HERSHEY_SIMPLEX, 0.45, WHITE, 1, cv2.LINE_AA)
    return view


def _caption(view: np.ndarray, text: str, x: int) -> None:
    """Small grey text on a black box at the top of a panel."""
    cv2 = _cv2()
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    cv2.rectangle(view, (x, 1), (x + tw + 6, th + 6), (0, 0, 0), -1)
    cv2.putText(view, text, (x + 3, th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, GREY, 1, cv2.LINE_AA)


def check_save(path: str) -> None:
    """--save takes a video file name (.mp4, .avi, .mkv) in a folder that exists."""
    p = Path(path)
    if p.suffix.lower() not in (".mp4", ".avi", ".mkv"):
        raise EdgeqError(f"--save {path}: give a video file name ending in .mp4, .avi or .mkv")
    if not p.parent.is_dir():
        raise EdgeqError(f"--save {path}: folder {str(p.parent)!r} does not exist")


class _ClipWriter:
    """Annotated views -> a video (MJPG for .avi, FFV1 for .mkv, mp4v otherwise); every view is
    letterboxed into the first one's size (a folder's images may differ in size)."""

    def __init__(self, path: str, fps: float):
        check_save(path)
        self.path, self.fps, self.out, self.size = str(path), fps or 15.0, None, None

    def write(self, view_rgb: np.ndarray) -> None:
        cv2 = _cv2()
        if self.out is None:
            self.size = view_rgb.shape[:2]
            fourcc = {".avi": "MJPG", ".mkv": "FFV1"}.get(Path(self.path).suffix.lower(), "mp4v")
            self.out = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*fourcc), self.fps,
                                       (self.size[1], self.size[0]))
            if not self.out.isOpened():
                raise EdgeqError(f"cannot write {self.path!r} (is the folder writable? use .mp4, .avi or .mkv)")
        if view_rgb.shape[:2] != self.size:
            fit = P.PreSpec(color="rgb", size=self.size, resize="letterbox")
            view_rgb = P.apply(view_rgb, fit).transpose(1, 2, 0)
        self.out.write(np.ascontiguousarray(view_rgb[:, :, ::-1]))  # OpenCV writes BGR

    def close(self) -> None:
        if self.out is not None:
            self.out.release()


def json_line(i: int, cls: int, scores, latency_s: float, g: Graph | None = None, label=None,
              chip_s: float | None = None) -> str:
    d = {"frame": i, "class": int(cls), "score": int(np.max(scores)), "latency_ms": round(latency_s * 1000, 3)}
    if g is not None:
        d["name"] = class_name(g, int(cls))
    if label is not None:
        d["label"] = int(label)
    if chip_s:
        d["chip_ms"] = round(chip_s * 1000, 3)
    return json.dumps(d)


def print_stream_json(g: Graph | None = None, stats: StreamStats | None = None, out=sys.stdout):
    """on_frame callback printing one JSON line per frame (class name, label and chip time when known)."""
    def cb(i, frame, cls, scores, lat, label):
        chip = stats.chip_seconds[-1] if stats is not None and stats.chip_seconds else None
        print(json_line(i, cls, scores, lat, g, label, chip), file=out, flush=True)
    return cb
