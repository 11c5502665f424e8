"""The main job, end to end (`make demo`): train on the built-in digits data, pack, flash to an
emulated Cortex-M4 board, stream a synthetic clip through it, profile every layer.

Each step is the `edgeq` command a user would type, printed before it runs. Everything lands in
one output folder (default out/demo) whose path is printed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _step(title: str, argv: list, check: bool = True) -> int:
    print(f"\n\033[1;36m== {title}\033[0m\n$ edgeq {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "edgeq", *argv])
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    if check and r.returncode != 0:
        raise SystemExit(f"demo: step '{title}' failed (exit {r.returncode})")
    return r.returncode


def pick_board(preferred: str) -> str:
    """QEMU board when qemu-system-arm and arm-none-eabi-gcc exist, else the host-native sim."""
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        return preferred
    print("demo: qemu-system-arm or arm-none-eabi-gcc is missing, so the demo uses the `sim` board "
          "(the same firmware main loop compiled for this machine, over a pty)")
    return "sim"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeq.demo", description=__doc__)
    ap.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    ap.add_argument("--arch", default="bnn-cnn")
    ap.add_argument("--board", default="qemu-mps2-an386")
    ap.add_argument("--frames", type=int, default=120)
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = str(out / "model.eqb")
    board = pick_board(args.board)
    t0 = time.perf_counter()
    _step("train on the built-in digits data (8x8, scikit-learn) and pack the blob",
          ["train", "--arch", args.arch, "--data", "digits", "--out", model])
    _step("inspect the blob", ["info", model])
    _step("accuracy on the held-out split, host C runtime", ["eval", model, "--data", "digits"])
    _step(f"flash firmware + model to {board}", ["flash", model, "--board", board])
    try:
        _step(f"stream a synthetic clip of {args.frames} digits through {board}",
              ["stream", "--board", board, "--model", model, "--source", "synthetic",
               "--limit", str(args.frames), "--save", str(out / "stream.mp4")])
        _step(f"every held-out image on {board}: accuracy and mismatches vs the host (must be 0)",
              ["eval", model, "--data", "digits", "--board", board])
        _step(f"per-layer profile on {board}",
              ["profile", "--board", board, "--model", model, "--runs", "5",
               "--json", str(out / "profile.json"), "--csv", str(out / "profile.csv"),
               "--plot", str(out / "profile.png")])
    finally:
        _step(f"stop {board}", ["boards", "--stop", board], check=False)
    print(f"\n\033[1mdemo done in {time.perf_counter() - t0:.0f} s.\033[0m Output folder: {out}")
    for f in sorted(out.iterdir()):
        print(f"  {f.name:20s} {f.stat().st_size:>10,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
