"""Stream frames from a camera, video file, image folder or a synthetic clip to a target
(board or host), with the blob's preprocessing, pipelining, live stats and optional outputs.

Sources (`--source`):
  camera:N      OpenCV capture device N (live: frames are dropped when the board is slower)
  PATH.mp4/...  a video file (read at the board's pace; never dropped unless --realtime)
  DIR           a folder of images (sorted by name)
  synthetic     a generated clip of digits (needs no files; labels known, so accuracy is shown)

Preprocessing (host side, identical to training): grayscale when the model takes 1 channel,
centre square crop, resize to the model's (H, W) with area interpolation, optional inversion;
then the blob's own step (THRESH bits packed for the wire: an MNIST frame is 98 bytes).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bits as B
from .errors import DataError, EdgeqError
from .graph import Graph

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}


def _cv2():
    try:
        import cv2
    except ImportError:
        raise EdgeqError("streaming needs OpenCV: pip install 'edgeq[camera]'") from None
    return cv2


# ---- sources -----------------------------------------------------------------------------------
class Source:
    live = False  # frames arrive on their own clock (camera); others are pulled at our pace
    fps = 30.0

    def frames(self):
        """Yields (frame uint8 (H, W) or (H, W, 3) BGR, label or None)."""
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
            yield frame, None


class VideoSource(Source):
    def __init__(self, path: str):
        cv2 = _cv2()
        if not Path(path).is_file():
            raise EdgeqError(f"video file {path!r} does not exist")
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise EdgeqError(f"{path!r} could not be opened as a video (unsupported codec or not a video)")
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        # labels written next to the video by `write_synthetic_video` (optional)
        side = Path(path).with_suffix(".labels.json")
        self.labels = read_labels(side) if side.is_file() else None

    def frames(self):
        i = 0
        while True:
            ok, frame = self.cap.read()
            if not ok:
                return
            yield frame, (self.labels[i] if self.labels and i < len(self.labels) else None)
            i += 1


def read_labels(path: Path) -> list:
    """A video's PATH.labels.json: a JSON list with one class index (or null) per frame."""
    fix = "rewrite it as a JSON list of class indices, one per frame, or delete it"
    try:
        labels = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); {fix}") from None
    if not isinstance(labels, list) or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in labels):
        raise DataError(f"{path}: expected a list of class indices (ints >= 0 or null), found "
                        f"{type(labels).__name__ if not isinstance(labels, list) else 'other values'}; {fix}")
    return labels


class FolderSource(Source):
    def __init__(self, path: str):
        self.files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_EXT)
        if not self.files:
            raise EdgeqError(f"no images ({', '.join(sorted(IMAGE_EXT))}) in folder {path!r}")

    def frames(self):
        cv2 = _cv2()
        for p in self.files:
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise DataError(f"{p}: not a readable image")
            yield img, None


class SyntheticSource(Source):
    """A clip of digits: held-out images of the built-in digits data (or MNIST-shaped upscales),
    pasted into larger frames with a little jitter and noise. Labels are known."""

    def __init__(self, n_frames: int = 120, size: int = 96, seed: int = 0, data: str = "digits"):
        from .data import load_split

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


def open_source(spec: str, **kw) -> Source:
    if spec == "synthetic":
        return SyntheticSource(**kw)
    if spec.startswith("camera:"):
        try:
            return CameraSource(int(spec[7:]))
        except ValueError:
            raise EdgeqError(f"bad camera spec {spec!r}; use camera:0") from None
    p = Path(spec)
    if p.is_dir():
        return FolderSource(spec)
    if p.suffix.lower() in IMAGE_EXT and p.is_file():
        raise EdgeqError(f"{spec!r} is one image; give its folder, or a video file")
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


# ---- preprocessing -------------------------------------------------------------------------------
def prepare(frame: np.ndarray, g: Graph, invert: bool = False) -> np.ndarray:
    """Any frame -> raw uint8 pixels (C, H, W) in the model's input shape."""
    cv2 = _cv2()
    c, h, w = g.input_shape
    img = np.asarray(frame)
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if c == 1 and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if c == 3 and img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    fh, fw = img.shape[:2]
    s = min(fh, fw)
    img = img[(fh - s) // 2:(fh - s) // 2 + s, (fw - s) // 2:(fw - s) // 2 + s]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    if invert:
        img = 255 - img
    return img[None] if c == 1 else img.transpose(2, 0, 1).copy()


def wire_of(pixels_chw: np.ndarray, g: Graph) -> bytes:
    """What the board receives for one frame (docs/blob-format.md, wire input)."""
    if g.pre_mode == "THRESH":
        return B.pack_wire(pixels_chw, g.pre_param)
    return np.ascontiguousarray(pixels_chw, np.uint8).tobytes()


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

    @property
    def seconds(self) -> float:
        return max(self.t1 - self.t0, 1e-9)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else 0.0

    @property
    def link_bps(self) -> float:
        return (self.bytes_out + self.bytes_in) / self.seconds

    @property
    def utilisation(self) -> float:
        return self.link_bps / self.link_rate if self.link_rate and np.isfinite(self.link_rate) else 0.0

    def summary(self) -> dict:
        return dict(frames=self.frames, dropped=self.dropped, fps=round(self.fps, 2),
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
    latency_s, label) is called for every result in order; `stats` (optional) is filled live."""
    stats = StreamStats() if stats is None else stats
    if measure_link and hasattr(target, "link_rate"):
        stats.link_rate = target.link_rate()
    threaded = src.live or realtime  # frames on their own clock: a producer thread may drop
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    th = threading.Thread(target=_producer, args=(src, q, stop, realtime, stats), daemon=True)
    frames = None if threaded else iter(src.frames())  # pulled at the board's pace, never dropped
    writer = None
    inflight: list = []  # (index, frame, label, t_sent)
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
                inflight.append((i, frame, label, time.perf_counter()))
                i += 1
            if not inflight:
                break
            idx, frame, label, t_sent = inflight.pop(0)
            cls, scores = target.collect()
            lat = time.perf_counter() - t_sent
            stats.frames += 1
            stats.latencies.append(lat)
            stats.predictions.append(int(cls))
            if label is not None:
                stats.labelled += 1
                stats.correct += int(cls == label)
            if save:
                writer = _annotate_and_write(writer, save, frame, g, cls, label, src.fps)
            if on_frame:
                on_frame(idx, frame, int(cls), scores, lat, label)
    finally:
        stop.set()
        stats.t1 = time.perf_counter()
        stats.bytes_out = getattr(target, "bytes_out", 0)
        stats.bytes_in = getattr(target, "bytes_in", 0)
        if writer is not None:
            writer.release()
        while th.is_alive():  # unblock the producer if it waits on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            th.join(timeout=0.05)
    return stats


def _annotate_and_write(writer, path, frame, g, cls, label, fps):
    cv2 = _cv2()
    img = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    img = cv2.resize(img, (max(img.shape[1], 160), max(img.shape[0], 160)), interpolation=cv2.INTER_NEAREST)
    name = g.classes[cls] if cls < len(g.classes) else str(cls)
    color = (0, 200, 0) if label is None or label == cls else (0, 0, 255)
    cv2.putText(img, f"pred {name}", (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 2)
    if writer is None:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps or 15.0,
                                 (img.shape[1], img.shape[0]))
        if not writer.isOpened():
            raise EdgeqError(f"cannot write {path!r} (is the folder writable?)")
    writer.write(img)
    return writer


def json_line(i: int, cls: int, scores, latency_s: float) -> str:
    return json.dumps({"frame": i, "class": int(cls), "score": int(np.max(scores)),
                       "latency_ms": round(latency_s * 1000, 3)})


def print_stream_json(stats_line_out=sys.stdout):
    def cb(i, frame, cls, scores, lat, label):
        print(json_line(i, cls, scores, lat), file=stats_line_out, flush=True)
    return cb
