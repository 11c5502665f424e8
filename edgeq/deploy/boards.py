"""Board definitions (boards/NAME/board.toml), firmware builds, and boards we start ourselves.

    from edgeq.deploy import boards
    b = boards.get("qemu-mps2-an386")
    res = boards.build(b)                     # make -C firmware; res.flash_used, res.ram_used...
    run = boards.flash(b, "model.eqb")        # QEMU/sim: start it with the model in its flash
    with boards.connect("qemu-mps2-an386") as dev:    # --port auto: finds the running board
        print(dev.info())
    boards.stop("qemu-mps2-an386")

Boards we start (QEMU, sim) are recorded in a state directory ($EDGEQ_STATE_DIR, default
~/.cache/edgeq/boards), one NAME.json each with the pid and the serial URL, so later commands
find them like a plugged-in board.  `python -m edgeq.deploy.boards gen NAME OUTDIR` writes the files
the firmware Makefile needs (board.mk, eq_board.h, memory.ld).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BoardError, BoardTimeout, EdgeqError, TransportError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # edgeq/


def _data_root() -> Path:
    """Where firmware/ and boards/ live: the checkout this package sits in, else the copy that a
    wheel ships as package data (edgeq/_data, written by setup.py's build_py)."""
    for root in (PACKAGE_DIR.parent, PACKAGE_DIR / "_data"):
        if (root / "firmware" / "Makefile").is_file() and (root / "boards").is_dir():
            return root
    return PACKAGE_DIR.parent  # neither: names() is empty and get() says how to get the files


ROOT = _data_root()                  # firmware/ + boards/ (checkout, or edgeq/_data when installed)
INSTALLED = ROOT != PACKAGE_DIR.parent
BOARDS_DIR = ROOT / "boards"


def _build_dir() -> Path:
    """Firmware builds: build/fw in a checkout; for an installed package (read-only site-packages)
    a per-install folder in the user's cache. $EDGEQ_BUILD_DIR overrides both."""
    if os.environ.get("EDGEQ_BUILD_DIR"):
        return Path(os.environ["EDGEQ_BUILD_DIR"])
    if not INSTALLED:
        return ROOT / "build" / "fw"
    import hashlib

    tag = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]  # two installs never share objects
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edgeq" / f"fw-{tag}"


BUILD_DIR = _build_dir()
CROSS = "arm-none-eabi-"
QEMU = "qemu-system-arm"


# where a Cortex-M board's ticks come from ([ticks] source in board.toml; boards/common/cortexm/ticks.c)
TICK_SOURCES = ("cmsdk-timer", "sse-counter", "stm32-tim", "systick", "dwt")


class BuildError(EdgeqError):
    """A firmware could not be built (toolchain missing, compile or link error, does not fit)."""


try:
    import tomllib as _toml
except ImportError:  # Python < 3.11
    try:
        import tomli as _toml
    except ImportError:  # pragma: no cover
        _toml = None


@dataclass
class BoardDef:
    name: str
    path: Path
    kind: str                   # "qemu", "sim" or "real"
    description: str
    cflags: list
    sources: list
    cpu: str = ""
    cpu_hz: int = 0
    tick_hz: int = 0
    num_irqs: int = 0
    memory: dict = field(default_factory=dict)    # region -> (origin, length)
    firmware: dict = field(default_factory=dict)  # model_buf, arena, max_payload, input_buf, rx_ring, stack
    uart: dict = field(default_factory=dict)
    qemu: dict = field(default_factory=dict)
    flash_cfg: dict = field(default_factory=dict)
    ticks: dict = field(default_factory=dict)     # source, base, hold_uart, keep_awake
    hal: dict = field(default_factory=dict)       # HAL parameters -> EQ_HAL_<KEY> (boards/common/stm32)

    @property
    def out_dir(self) -> Path:
        return BUILD_DIR / self.name

    @property
    def image(self) -> Path:
        """The built firmware: firmware.elf, or the host executable for `sim`."""
        return self.out_dir / ("firmware" if self.kind == "sim" else "firmware.elf")

    @property
    def input_max(self) -> int:
        """Bytes of the largest INFER input the firmware takes: one frame, or the input buffer
        that INPUT_CHUNK stages larger ones in (docs/protocol.md)."""
        return max(int(self.firmware["max_payload"]), int(self.firmware.get("input_buf", 0)))

    @property
    def model_region(self) -> tuple:
        return self.memory.get("model", (0, 0))


def _load(path: Path) -> BoardDef:
    if _toml is None:
        raise BuildError("reading board.toml needs Python 3.11+ (tomllib) or the tomli package")
    with open(path, "rb") as f:
        d = _toml.load(f)
    mem = {k: (int(v["origin"]), int(v["length"])) for k, v in d.get("memory", {}).items()}
    return BoardDef(
        name=path.parent.name, path=path.parent, kind=d["kind"], description=d.get("description", ""),
        cflags=list(d.get("cflags", [])), sources=list(d.get("sources", [])), cpu=d.get("cpu", ""),
        cpu_hz=int(d.get("cpu_hz", 0)), tick_hz=int(d.get("tick_hz", 0)),
        num_irqs=int(d.get("num_irqs", 0)), memory=mem, firmware=dict(d.get("firmware", {})),
        uart=dict(d.get("uart", {})), qemu=dict(d.get("qemu", {})), flash_cfg=dict(d.get("flash", {})),
        ticks=dict(d.get("ticks", {})), hal=dict(d.get("hal", {})))


def names() -> list:
    return sorted(p.parent.name for p in BOARDS_DIR.glob("*/board.toml"))


def get(name) -> BoardDef:
    """The board called `name` (a BoardDef passes through)."""
    if isinstance(name, BoardDef):
        return name
    path = BOARDS_DIR / str(name) / "board.toml"
    if not path.exists():
        known = names()
        if not known:
            raise EdgeqError(f"no board definitions found (looked in {PACKAGE_DIR.parent / 'boards'} and "
                             f"{PACKAGE_DIR / '_data' / 'boards'}): reinstall edgeq from a wheel or "
                             "checkout that includes boards/ and firmware/")
        raise EdgeqError(f"unknown board {name!r}; known boards: {', '.join(known)}")
    return _load(path)


def all_boards() -> list:
    return [get(n) for n in names()]


# ---- build ----------------------------------------------------------------------------------
def _hex(v: int) -> str:
    return f"0x{v:08x}u"


def generate(board, out_dir=None) -> Path:
    """Write board.mk, eq_board.h and memory.ld for the firmware Makefile (only when changed)."""
    b = get(board)
    out = Path(out_dir or b.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    fw = b.firmware
    mo, ml = b.model_region
    defs = {
        "EQ_BOARD_NAME": f'"{b.name}"',
        "EQ_CPU_HZ": f"{b.cpu_hz}u", "EQ_TICK_HZ": f"{b.tick_hz}u",
        "EQ_MODEL_BUF_SIZE": f"{int(fw['model_buf'])}u", "EQ_ARENA_SIZE": f"{int(fw['arena'])}u",
        "EQ_MAX_PAYLOAD": f"{int(fw['max_payload'])}u", "EQ_RX_RING_SIZE": f"{int(fw['rx_ring'])}u",
        "EQ_INPUT_BUF_SIZE": f"{int(fw.get('input_buf', 0))}u",
        "EQ_MODEL_REGION_ADDR": _hex(mo), "EQ_MODEL_REGION_SIZE": f"{ml}u",
        "EQ_NUM_IRQS": str(b.num_irqs),
    }
    for k in ("base", "irq", "irq2", "baud"):
        if k in b.uart:
            defs[f"EQ_UART_{k.upper()}"] = _hex(b.uart[k]) if k == "base" else str(b.uart[k])
    for k, v in b.hal.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BuildError(f"boards/{b.name}/board.toml: [hal] {k} must be a non-negative integer, not {v!r}")
        defs[f"EQ_HAL_{k.upper()}"] = _hex(v)
    if b.kind != "sim":
        t = b.ticks
        src = t.get("source", "")
        if src not in TICK_SOURCES:
            raise BuildError(f"boards/{b.name}/board.toml: [ticks] source must be one of "
                             f"{', '.join(TICK_SOURCES)}, not {src!r}")
        defs[f"EQ_TICKS_{src.upper().replace('-', '_')}"] = "1"
        if "base" in t:
            defs["EQ_TICKS_BASE"] = _hex(int(t["base"]))
        if "prescaler" in t:  # stm32-tim: the counter runs at its input clock / (prescaler + 1)
            defs["EQ_TICKS_PRESCALER"] = f"{int(t['prescaler'])}u"
        if t.get("hold_uart"):
            defs["EQ_TICKS_HOLD_UART"] = "1"
        if t.get("keep_awake"):
            defs["EQ_KEEP_AWAKE"] = "1"
    h = [f"/* Generated by `python -m edgeq.deploy.boards gen` from boards/{b.name}/board.toml. */",
         "#ifndef EQ_BOARD_H", "#define EQ_BOARD_H"]
    h += [f"#define {k} {v}" for k, v in defs.items()]
    h += ["#endif", ""]
    srcs = [str((b.path / s).resolve()) for s in b.sources]
    if b.kind == "sim":
        mk = {"KIND": "sim", "CC": "gcc", "CFLAGS_BOARD": " ".join(b.cflags), "BOARD_SRCS": " ".join(srcs),
              "BOARD_INC": ""}
    else:
        common = BOARDS_DIR / "common" / "cortexm"
        srcs += [str(p) for p in sorted(common.glob("*.c"))]
        mk = {"KIND": b.kind, "CC": CROSS + "gcc", "SIZE": CROSS + "size", "OBJCOPY": CROSS + "objcopy",
              "CFLAGS_BOARD": " ".join(b.cflags), "BOARD_SRCS": " ".join(srcs),
              "BOARD_INC": f"-I{common}", "LDSCRIPT": str(common / "sections.ld")}
    files = {"board.mk": "# Generated by `python -m edgeq.deploy.boards gen`.\n"
                         + "".join(f"{k} := {v}\n" for k, v in mk.items()),
             "eq_board.h": "\n".join(h)}
    if b.kind != "sim":
        fo, fl = b.memory["flash"]
        ro, rl = b.memory["ram"]
        files["memory.ld"] = (
            f"/* Generated from boards/{b.name}/board.toml. */\n"
            f"MEMORY\n{{\n    FLASH (rx) : ORIGIN = 0x{fo:08x}, LENGTH = 0x{fl:x}\n"
            f"    RAM (rwx) : ORIGIN = 0x{ro:08x}, LENGTH = 0x{rl:x}\n}}\n"
            f"__eq_model_start = 0x{mo:08x};\n__eq_model_size = 0x{ml:x};\n"
            f"__eq_stack_size = 0x{int(fw['stack']):x};\n")
    for name, text in files.items():
        p = out / name
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
    return out


@dataclass
class BuildResult:
    board: str
    image: Path
    text: int = 0
    data: int = 0
    bss: int = 0
    flash_total: int = 0
    ram_total: int = 0
    log: str = ""

    @property
    def flash_used(self) -> int:
        return self.text + self.data

    @property
    def ram_used(self) -> int:
        return self.data + self.bss

    def summary(self) -> str:
        if not self.flash_total:
            return f"{self.board}: built {self.image}"
        return (f"{self.board}: {self.image}\n"
                f"  flash {self.flash_used:>9,} B of {self.flash_total:>9,} "
                f"({100 * self.flash_used / self.flash_total:.1f} %)"
                f"  text {self.text:,} data {self.data:,}\n"
                f"  RAM   {self.ram_used:>9,} B of {self.ram_total:>9,} ({100 * self.ram_used / self.ram_total:.1f} %)"
                f"  data {self.data:,} bss {self.bss:,} (static buffers and stack)")


def toolchain_missing(board) -> str | None:
    """Why `board` cannot be built here, or None."""
    b = get(board)
    need = ["make", "gcc"] if b.kind == "sim" else ["make", CROSS + "gcc"]
    for tool in need:
        if not shutil.which(tool):
            return f"{tool} not found"
    return None


def build(board, quiet: bool = True, jobs: int | None = None) -> BuildResult:
    """make -C firmware BOARD=NAME; returns sizes (arm-none-eabi-size) for Cortex-M boards."""
    b = get(board)
    why = toolchain_missing(b)
    if why:
        raise BuildError(f"cannot build {b.name}: {why} (install gcc-arm-none-eabi and make)")
    generate(b)
    cmd = ["make", "-C", str(ROOT / "firmware"), f"BOARD={b.name}", f"O={b.out_dir}",
           f"PYTHON={sys.executable}", f"-j{jobs or os.cpu_count() or 1}"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if p.returncode != 0:
        tail = "\n".join(p.stdout.strip().splitlines()[-25:])
        raise BuildError(f"firmware build for {b.name} failed:\n{tail}")
    res = BuildResult(b.name, b.image, log=p.stdout)
    if b.kind != "sim":
        s = subprocess.run([CROSS + "size", "-A", str(b.image)], capture_output=True, text=True, check=False)
        for line in s.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                sec, n = parts[0], int(parts[1])
                if sec in (".text", ".ARM.exidx"):
                    res.text += n
                elif sec == ".data":
                    res.data += n
                elif sec in (".bss", ".stack"):
                    res.bss += n
        res.flash_total = b.memory["flash"][1]
        res.ram_total = b.memory["ram"][1]
    return res


def check_fit(board, blob: bytes) -> dict:
    """Raise BoardError with the numbers if a blob cannot run on `board`; returns the header."""
    from ..format import pack

    b = get(board)
    hdr = pack.read_header(blob)
    size, arena = len(blob), int(hdr["arena_size"])
    region = b.model_region[1]
    problems = []
    if size > region:
        problems.append(f"the blob is {size:,} B but the flash model region holds {region:,} B")
    if arena > int(b.firmware["arena"]):
        problems.append(f"the model needs {arena:,} B of arena but the firmware has "
                        f"{int(b.firmware['arena']):,} B")
    wire = _wire_bytes(hdr)
    if wire > b.input_max:
        problems.append(f"one input is {wire:,} B but the firmware takes inputs of at most "
                        f"{b.input_max:,} B ([firmware] max_payload / input_buf)")
    if problems:
        raise BoardError(f"model does not fit {b.name}: " + "; ".join(problems))
    return hdr


def _wire_bytes(hdr: dict) -> int:
    from .. import spec

    return spec.wire_bytes(int(hdr["pre_mode"]), int(hdr["in_c"]) * int(hdr["in_h"]) * int(hdr["in_w"]))


# ---- running boards -------------------------------------------------------------------------
def state_dir() -> Path:
    d = Path(os.environ.get("EDGEQ_STATE_DIR") or Path.home() / ".cache" / "edgeq" / "boards")
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Running:
    name: str
    kind: str
    pid: int
    url: str
    image: str
    model: str = ""
    started: float = 0.0
    log: str = ""

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        try:  # the pid may have been reused by another program
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                if self.image.encode() not in f.read():
                    return False
            with open(f"/proc/{self.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            pass
        return True


def _state_file(name: str) -> Path:
    return state_dir() / f"{name}.json"


def running(name: str | None = None) -> list:
    """Boards we started that are still alive (stale records are removed)."""
    out = []
    for p in sorted(state_dir().glob("*.json")):
        try:
            r = Running(**json.loads(p.read_text()))
        except (ValueError, TypeError):
            continue
        if not r.alive():
            p.unlink(missing_ok=True)
            continue
        if name is None or r.name == name:
            out.append(r)
    return out


def stop(name: str) -> bool:
    """Stop a board we started; False if it was not running."""
    rs = running(name)
    for r in rs:
        _kill(r.pid)
    _state_file(name).unlink(missing_ok=True)
    return bool(rs)


def _kill(pid: int, grace: float = 2.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_command(board, image, model=None, port: int = 0, extra=()) -> list:
    """The qemu-system-arm command line for a board, its UART on a TCP server socket."""
    b = get(board)
    cmd = [QEMU, "-M", b.qemu["machine"], "-nographic", "-monitor", "none", "-kernel", str(image),
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]
    cmd += list(b.qemu.get("args", [])) + list(extra)
    if model:
        cmd += ["-device", f"loader,file={model},addr=0x{b.model_region[0]:x}"]
    return cmd


def start(board, model=None, extra_qemu=(), timeout: float = 10.0) -> Running:
    """Start a QEMU or sim board in the background (stopping a previous one of the same name),
    with `model` (path) in its flash model region; records it in the state directory."""
    b = get(board)
    if b.kind not in ("qemu", "sim"):
        raise EdgeqError(f"{b.name} is a real board: flash it with `edgeq flash` (pyocd)")
    if not b.image.exists():
        raise BuildError(f"{b.image} does not exist: run `edgeq build --board {b.name}`")
    stop(b.name)
    sd = state_dir()
    model_copy = ""
    if model:
        model_copy = str(sd / f"{b.name}.eqb")
        shutil.copyfile(model, model_copy)
    log = sd / f"{b.name}.log"
    env = dict(os.environ)
    if b.kind == "qemu":
        if not shutil.which(QEMU):
            raise BuildError(f"{QEMU} not found (install qemu-system-arm)")
        port = _free_port()
        cmd = qemu_command(b, b.image, model_copy or None, port, extra_qemu)
        url = f"socket://127.0.0.1:{port}"
    else:
        pty_file = sd / f"{b.name}.pty"
        pty_file.unlink(missing_ok=True)
        cmd = [str(b.image), "--pty-file", str(pty_file)] + (["--model", model_copy] if model else [])
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
        url = ""
    with open(log, "wb") as lf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BuildError(f"{b.name} exited at start (status {proc.returncode}): "
                             f"{log.read_text(errors='replace').strip()[-500:]}")
        if b.kind == "qemu" and "waiting for connection" in log.read_text(errors="replace"):
            break
        if b.kind == "sim" and pty_file.exists():
            url = pty_file.read_text().strip()
            break
        if time.monotonic() > deadline:
            _kill(proc.pid)
            raise BoardTimeout(f"{b.name} did not come up within {timeout:g} s (log: {log})")
        time.sleep(0.01)
    if b.kind == "qemu":
        try:
            _wait_ready(url, time.monotonic() + timeout)
        except BaseException:
            _kill(proc.pid)
            raise
    r = Running(b.name, b.kind, proc.pid, url, str(b.image), model_copy, time.time(), str(log))
    _state_file(b.name).write_text(json.dumps(r.__dict__, indent=1))
    return r


def _wait_ready(url: str, deadline: float) -> None:
    """Until the firmware answers HELLO. QEMU starts the CPU when the first client connects, and
    an emulated UART may drop what arrives before the firmware has enabled it (QEMU's STM32 USART
    drops bytes while CR1.UE/RE are clear), so the first request can go unanswered: re-send it."""
    from . import protocol as P
    from .client import Board
    from ..errors import ProtocolError

    with Board(url, timeout=0.25, hello=False) as dev:
        while True:
            try:  # any reply will do: the caller's own handshake checks the versions
                dev.request(P.CMD["HELLO"], check=False)
                return
            except (BoardTimeout, ProtocolError):
                if time.monotonic() > deadline:
                    raise BoardTimeout(f"{url}: the emulated board does not answer HELLO") from None


def find_port(board=None, port: str | None = None) -> str:
    """Resolve --port: an explicit device/URL passes through; None or 'auto' finds a board we
    started (by name, or the only one running) or a USB serial port with the board's ids."""
    if port and port != "auto":
        return port
    b = get(board) if board else None
    rs = running(b.name if b else None)
    if rs:
        if len(rs) > 1:
            raise TransportError("several boards are running (" + ", ".join(r.name for r in rs)
                                 + "); say which with --board")
        return rs[0].url
    ids = [i.lower() for i in (b.uart.get("usb_ids", []) if b else [])]
    try:
        from serial.tools import list_ports

        for p in list_ports.comports():
            if p.vid is not None and (not ids or f"{p.vid:04x}:{p.pid:04x}" in ids):
                return p.device
    except ImportError:  # pragma: no cover
        pass
    what = b.name if b else "board"
    hint = f"start it with `edgeq flash MODEL --board {b.name}`" if b and b.kind != "real" \
        else "plug it in or give --port"
    raise TransportError(f"no running {what} found; {hint}")


def connect(board=None, port: str | None = None, **kw):
    """A connected edgeq.deploy.client.Board for `board`/`port` (see find_port)."""
    from .client import Board

    return Board(find_port(board, port), **kw)


def flash(board, model_path, port: str | None = None, log=print):
    """Build if needed, put firmware + model on the board, verify the model CRC through INFO.
    QEMU/sim: (re)start the emulator with the model in its flash region. Real boards: pyocd.
    Returns (Running or None, Info)."""
    from . import protocol as P

    b = get(board)
    blob = Path(model_path).read_bytes()
    check_fit(b, blob)
    res = build(b)
    log(res.summary())
    run = None
    if b.kind in ("qemu", "sim"):
        run = start(b, model_path)
        url = run.url
    else:
        _pyocd_flash(b, model_path, log)
        url = find_port(b, port)
    from .client import Board

    with Board(url) as dev:
        info = dev.info()
    crc = P.crc32(blob)
    m = info.model
    if m.source != "flash" or m.crc32 != crc or m.size != len(blob):
        raise BoardError(f"{b.name} does not report the flashed model: board has {m.source} model "
                         f"of {m.size} B, CRC {m.crc32:08x}; expected {len(blob)} B, CRC {crc:08x} "
                         "(the board rejects blobs that fail validation)")
    return run, info


def _pyocd_flash(b: BoardDef, model_path, log) -> None:
    exe = shutil.which("pyocd")
    if not exe:
        raise BuildError("pyocd not found: `pip install pyocd` to flash real boards")
    target = b.flash_cfg.get("target", "")
    for args in (["flash", "-t", target, str(b.image)],
                 ["flash", "-t", target, "--base-address", f"0x{b.model_region[0]:x}", str(model_path)]):
        log("pyocd " + " ".join(args))
        p = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise BuildError(f"pyocd failed: {(p.stderr or p.stdout).strip()[-400:]}")
    time.sleep(0.5)  # the board resets after flashing




def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "gen":
        generate(argv[1], argv[2])
        return 0
    print("usage: python -m edgeq.deploy.boards gen BOARD OUTDIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
