"""Per-layer latency: run N inferences on a target, take the median ticks of every layer, and
join them with what the blob says about each layer (shapes, encodings, MACs, bytes).

The per-layer ticks come from the runtime's eq_profile_t hook (the board's timer: DWT/SysTick on
real Cortex-M, the CMSDK timer/SysTick on QEMU -- under `-icount` those count executed
instructions, not real cycles, so QEMU reports are converted to and labelled "instructions";
real boards keep "cycles", the host and MicroPython "ticks" of their clocks). `total` spans the
whole inference including input unpacking, so sum(layers) <= total; the difference is the
documented overhead (input preparation, argmax and the profiling calls themselves).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..format import pack
from ..errors import EdgeqError


def build_report(blob: bytes, runs: list[tuple[list, int]], tick_hz: int, board: str, clock: str,
                 unit: str = "cycles", per_tick: float = 1.0) -> dict:
    """runs: [(per-layer ticks, total ticks), ...] -> report dict (medians over runs).

    unit: what the counts are ("cycles", "instructions" or "ticks"); per_tick: units per tick
    (QEMU -icount: instructions per timer tick). The counts stay under the keys "cycles",
    "total_cycles", ... of the JSON report; "unit" says what they are."""
    rows = pack.read_summary(blob).layers  # the layer table (the target's loader validated it)
    ticks = np.array([r[0] for r in runs], dtype=np.int64)
    if ticks.shape[1] != len(rows):
        raise EdgeqError(f"the board profiled {ticks.shape[1]} layers but the blob has "
                         f"{len(rows)}: is the same model flashed? (edgeq flash it again)")
    med = np.median(ticks, axis=0) * per_tick
    total = float(np.median([r[1] for r in runs])) * per_tick
    layers = []
    for row, cyc in zip(rows, med):
        ie, oe = row["in_enc"], row["out_enc"]
        scratch = pack.act_bytes(ie, row["in_shape"]) + pack.act_bytes(oe, row["out_shape"])
        layers.append(dict(
            name=row["name"], op=row["op"],
            shape=f"{'x'.join(map(str, row['in_shape']))}->{'x'.join(map(str, row['out_shape']))}",
            encoding=(f"{ie}x{row['w_enc']}->{oe}" if "w_enc" in row else f"{ie}->{oe}"),
            cycles=float(cyc), time_us=float(cyc) / per_tick / tick_hz * 1e6 if tick_hz else None,
            macs=int(row["macs"]), ops_per_cycle=round(row["macs"] / cyc, 3) if cyc else None,
            weight_bytes=int(row.get("weight_bytes", 0)), scratch_bytes=int(scratch)))
    layer_sum = float(sum(lay["cycles"] for lay in layers))
    for lay in layers:
        lay["percent"] = round(100.0 * lay["cycles"] / layer_sum, 2) if layer_sum else 0.0
    return dict(board=board, clock=clock, tick_hz=tick_hz, runs=len(runs), layers=layers, unit=unit,
                total_cycles=total, layer_sum_cycles=layer_sum, overhead_cycles=total - layer_sum)


def profile_target(target, blob: bytes, image, runs: int = 5) -> dict:
    from ..native.runtime import Model

    wire = Model(blob).wire_input(image)
    profs = [target.profile(wire) for _ in range(runs)]
    tick_hz, clock = profs[-1].tick_hz, profs[-1].clock
    unit, per_tick = _unit(target.name, tick_hz)
    if unit == "instructions":
        clock = (f"QEMU -icount: timer ticks at {tick_hz} Hz nominal x {per_tick:g} = executed "
                 "instructions (exact, not cycles)")
    return build_report(blob, [(p.ticks, p.total) for p in profs], tick_hz, target.name, clock, unit, per_tick)


def _unit(name: str, tick_hz: int) -> tuple[str, float]:
    """(unit, units per tick) of a target's profile: QEMU boards run under -icount, where one
    instruction advances virtual time by instr_ns, so a tick of the tick_hz timer is
    (1e9 / tick_hz) / instr_ns instructions; real boards count cycles, the rest clock ticks."""
    from . import boards

    try:
        b = boards.get(name)
    except EdgeqError:
        return "ticks", 1.0
    if b.kind == "qemu" and tick_hz:
        return "instructions", (1e9 / tick_hz) / float(b.qemu.get("instr_ns", 32))
    return ("cycles", 1.0) if b.kind == "real" else ("ticks", 1.0)


def wide_console(min_width: int = 160):
    """A rich Console at least min_width columns wide: piped output (rich's default: 80 columns)
    would otherwise cut every table cell to an ellipsis."""
    from rich.console import Console

    return Console(width=max(Console().width, min_width))


def print_table(rep: dict, console=None, compare: dict | None = None) -> None:
    from rich.table import Table

    con = console or wide_console()
    t = Table(title=f"per-layer latency on {rep['board']} (median of {rep['runs']} runs)")
    unit = rep.get("unit", "cycles")
    one = unit[:-1] if unit.endswith("s") else unit  # "instruction", "cycle", "tick"
    cols = ["layer", "op", "shape", "encoding", unit, "time", "%", "MACs", f"MACs/{one}",
            "weights B", "scratch B"]
    if compare:
        cols.append("vs old")
    for c in cols:
        t.add_column(c, justify="left" if c in ("layer", "op", "shape", "encoding") else "right",
                     no_wrap=True)
    old = {lay["name"]: lay for lay in (compare or {}).get("layers", [])}
    for lay in rep["layers"]:
        tm = f"{lay['time_us']:.1f} us" if lay["time_us"] is not None else "-"
        row = [lay["name"], lay["op"], lay["shape"], lay["encoding"], f"{lay['cycles']:,.0f}", tm,
               f"{lay['percent']:.1f}", f"{lay['macs']:,}",
               f"{lay['ops_per_cycle']:.2f}" if lay["ops_per_cycle"] else "-",
               f"{lay['weight_bytes']:,}", f"{lay['scratch_bytes']:,}"]
        if compare:
            o = old.get(lay["name"])
            row.append(f"{100 * (lay['cycles'] / o['cycles'] - 1):+.1f}%" if o and o["cycles"] else "new")
        t.add_row(*row)
    con.print(t)
    con.print(f"total {rep['total_cycles']:,.0f} {unit}; layers sum {rep['layer_sum_cycles']:,.0f}; "
              f"overhead (input unpacking, argmax, timer reads) {rep['overhead_cycles']:,.0f}")
    con.print(f"clock: {rep['clock']}")


def write_csv(rep: dict, path: str) -> None:
    import csv

    keys = ["name", "op", "shape", "encoding", "cycles", "time_us", "percent", "macs",
            "ops_per_cycle", "weight_bytes", "scratch_bytes"]
    unit = rep.get("unit", "cycles")
    one = unit[:-1] if unit.endswith("s") else unit
    head = {"cycles": unit, "ops_per_cycle": f"macs_per_{one}"}  # the columns say what they count
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([head.get(k, k) for k in keys])
        for lay in rep["layers"]:
            w.writerow([lay[k] for k in keys])


def plot(rep: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{lay['name']} ({lay['op']})" for lay in rep["layers"]][::-1]
    cyc = [lay["cycles"] for lay in rep["layers"]][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.5))
    bars = ax.barh(names, cyc, color="#3b7dd8")
    for b, lay in zip(bars, rep["layers"][::-1]):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {lay['percent']:.1f}%", va="center", fontsize=8)
    ax.set_xlabel(rep.get("unit", "cycles") if rep.get("unit") == "instructions"
                  else f"{rep.get('unit', 'ticks')} ({rep['tick_hz']:,} Hz)")
    ax.set_title(f"edgeq per-layer latency: {rep['board']}")
    fig.text(0.01, 0.01, rep["clock"][:110], fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_json(path: str) -> dict:
    """An earlier `edgeq profile --json` report (for --compare), checked."""
    p = Path(path)
    if not p.is_file():
        raise EdgeqError(f"profile {path!r} not found (write one with --json FILE)")
    fix = "give a report written by `edgeq profile --json FILE`"
    try:
        rep = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise EdgeqError(f"--compare {path}: not a JSON profile report ({e}); {fix}") from None
    layers = rep.get("layers") if isinstance(rep, dict) else None
    if not isinstance(layers, list) or not all(
            isinstance(lay, dict) and isinstance(lay.get("name"), str)
            and isinstance(lay.get("cycles"), (int, float)) for lay in layers):
        raise EdgeqError(f"--compare {path}: JSON without a 'layers' list of {{name, cycles}}; {fix}")
    return rep


def rate_labels(board: str | None) -> tuple:
    """What the measured fps and the tick-counter fps are, named for this kind of board."""
    if not board or board == "host":
        return "fps (host C runtime, measured)", "chip-time fps"
    from . import boards

    try:
        b = boards.get(board)
    except EdgeqError:
        return "fps (link + board, measured)", "chip-time fps (board tick counter)"
    if b.kind == "qemu":
        ns = b.qemu.get("instr_ns")
        clock = f"QEMU -icount virtual time: 1 instruction = {ns} ns" if ns else "QEMU virtual time"
        return "fps (link + emulator, measured)", f"chip-time fps (board timer, {clock})"
    if b.kind == "sim":
        return "fps (link + sim process, measured)", "chip-time fps (sim board timer)"
    return "fps (link + board, measured)", f"chip-time fps (board timer, {b.tick_hz / 1e6:g} MHz)"


def instr_ns(board: str | None) -> float:
    """Nanoseconds of virtual time per instruction on a QEMU -icount board (0: not one)."""
    from . import boards

    try:
        b = boards.get(board) if board and board != "host" else None
    except EdgeqError:
        return 0.0
    return float(b.qemu.get("instr_ns", 0)) if b is not None and b.kind == "qemu" else 0.0
