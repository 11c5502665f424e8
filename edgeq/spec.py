"""The one source of truth for the blob layout and the wire protocol.

Everything numeric that both Python and C (and the MicroPython runtime) must agree on lives here:
enums (op codes, encodings, output stages, preprocessing modes, status codes, protocol commands)
and the fixed-size records (blob header, tensor entry, layer entry, frame header) as ordered field
lists.  ``python -m edgeq.spec`` regenerates ``firmware/include/eq_spec.h`` and
``edgeq/micro/edgeq_spec.py``; ``tests/test_spec.py`` fails if the committed files differ from what
this module generates, so the languages cannot drift apart.

All multi-byte fields are little-endian.  Records are read field by field at the offsets given
here (never by casting a C struct over the buffer), so alignment and padding never matter.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Versions
BLOB_MAGIC = b"EQB\x01"  # 4 bytes at offset 0
BLOB_VERSION_MAJOR = 1
BLOB_VERSION_MINOR = 2  # 1.1: DAG inputs, groups, per-axis stride/pad, ADD/CONCAT/AVGPOOL, REQUANT;
# 1.2: layer flags (LFLAG: an F32 CONV computed by Winograd F(2x2, 3x3))
MAX_DAG_LAYERS = 255  # a blob that uses src0/src1 (a DAG) has at most this many layers
BLOB_ALIGN = 8  # every section starts on a multiple of this
BLOB_DATA_ALIGN = 64  # weight data starts on a multiple of this
PROTOCOL_VERSION = 1
FW_VERSION_MAJOR = 1  # firmware version reported in HELLO/INFO as major << 8 | minor
FW_VERSION_MINOR = 1
WORD_BITS = 32  # packed bits live in little-endian uint32 words
# F32 layers: every value v of a field satisfies |v| < 2**(MAX_EXP + 1) (biased exponent <=
# 127 + MAX_EXP, so finite); thresholds only exclude NaN. Keeps every float32 sum finite.
F32_MAX_EXP_WEIGHT = 63
F32_MAX_EXP_MUL = 31
F32_MAX_EXP_ADD = 100

# --------------------------------------------------------------------------------------------
# Enums: name -> (value, description)
STATUS = {
    "OK": (0, "ok"),
    "ERR_ARG": (1, "invalid argument"),
    "ERR_MAGIC": (2, "bad magic: not an edgeq blob"),
    "ERR_VERSION": (3, "unsupported blob version"),
    "ERR_TRUNCATED": (4, "blob truncated: fewer bytes than its header declares"),
    "ERR_CRC": (5, "CRC mismatch: the blob is corrupt"),
    "ERR_BOUNDS": (6, "offset or size out of range"),
    "ERR_SHAPE": (7, "shape mismatch between layers or tensors"),
    "ERR_UNSUPPORTED": (8, "unsupported op, encoding or combination"),
    "ERR_ARENA": (9, "arena too small for this model"),
    "ERR_NO_MODEL": (10, "no model loaded"),
    "ERR_FRAME": (11, "bad frame (COBS, length or CRC)"),
    "ERR_UNKNOWN_CMD": (12, "unknown command"),
    "ERR_TOO_LARGE": (13, "too large for this board"),
    "ERR_SEQUENCE": (14, "out-of-order chunk or command"),
    "ERR_INPUT": (15, "input size does not match the model"),
    "ERR_PROTOCOL": (16, "unsupported serial protocol version"),
}

# Element encodings of tensors (weights, tables) and activations.
ENC = {
    "U8": (1, "uint8 values"),
    "I8": (2, "int8 values"),
    "I16": (3, "int16 values"),
    "I32": (4, "int32 values"),
    "F32": (5, "float32 values"),
    "B1": (6, "bit-packed +-1: bit 1 = +1, bit 0 = -1; rows padded to 32-bit words"),
    "TERN": (7, "ternary as two bit-packed planes per row: sign plane then nonzero plane"),
    "TERN_SPARSE": (8, "ternary skip-zero: per-row uint32 offsets + nibble gap/sign stream"),
    "KBIT": (9, "k-bit codes packed in 1/2/4/8-bit slots, rows padded to words; products from a LUT"),
}

# Layer op codes.
OP = {
    "CONV": (1, "2-D convolution over HWC activations; dense = conv whose kernel covers the input"),
    "MAXPOOL": (2, "max-pool (OR on B1 activations, max on U8/I32)"),
    "FLATTEN": (3, "(H, W, C) -> (1, 1, H*W*C) in HWC order; B1 bits are repacked without padding"),
    "AVGPOOL": (4, "window sums (kh x kw, stride, no padding) of B1 (+-1) / U8 / I32 values, then an output stage"),
    "ADD": (5, "acc = sat32(m0[c] * a0 + m1[c] * a1) of two same-shape inputs (m: I32 (2, C)), then an output stage"),
    "CONCAT": (6, "channels of src0 then channels of src1 (same H, W and encoding)"),
}

# Output stage of a CONV layer (what is done with the int32 accumulator).
OUT = {
    "SIGN": (1, "bit = flip ? acc <= thr : acc >= thr  -> B1 activation"),
    "MULTI": (2, "code = #{i : flip ? acc <= thr[i] : acc >= thr[i]} -> U8 activation"),
    "AFFINE": (3, "y = sat32((acc * mul + add) >> shift) -> I32 activation"),
    "REQUANT": (4, "code = clamp((acc * mul + add) >> shift, 0, 2**out_bits - 1) -> U8 activation"),
}

# Preprocessing of raw uint8 pixels (stored per blob, applied identically by every runtime).
PRE = {
    "THRESH": (1, "B1 input: bit = pixel >= param"),
    "RAW": (2, "U8 input: the pixel value itself (0..255)"),
    "QUANT": (3, "U8 input: code = (pixel * (2**param - 1) + 127) // 255"),
}

# Header flags.
FLAG = {
    "INVERT": (1, "informational: the model was trained on light-on-dark images"),
}

# Layer flags (LAYER.flags, blob 1.2): bits that change how a layer computes its result.
LFLAG = {
    "WINO_F23": (1, "F32 CONV computed by Winograd F(2x2, 3x3) (3x3, stride 1, pad 1, groups 1; "
                    "docs/blob-format.md)"),
}

# Capability bits of the HELLO/INFO reply (`caps`).
CAP = {
    "PROFILE": (1, "PROFILE reports per-layer ticks"),
    "FLASH_MODEL": (2, "the board has a flash model region checked at boot"),
    "MODEL": (4, "a model is loaded now"),
    "INPUT_CHUNK": (8, "INFER inputs larger than max_payload are staged with INPUT_CHUNK (up to the "
                       "board's input buffer; LOAD_END refuses a model whose input does not fit)"),
}

# Where the loaded model came from (MODEL_SUMMARY.source).
SRC = {
    "NONE": (0, "no model"),
    "FLASH": (1, "found in the flash model region at boot"),
    "RAM": (2, "uploaded with LOAD_*"),
}

# What an input buffer holds (eq_model_run's input_kind).
INPUT = {
    "PIXELS": (0, "raw uint8 pixels, CHW, input_pixels bytes"),
    "WIRE": (1, "wire format (docs/blob-format.md), input_wire bytes"),
}

# Protocol commands (request code; a reply carries code | REPLY_BIT).
CMD = {
    "HELLO": (1, "version handshake; reply: protocol version, max payload, window"),
    "INFO": (2, "board, firmware and blob versions, capabilities, memory"),
    "LOAD_BEGIN": (3, "start a model upload: total size, crc32"),
    "LOAD_CHUNK": (4, "one chunk: offset u32 + data"),
    "LOAD_END": (5, "finish the upload: verify CRC and parse the blob"),
    "INFER": (6, "input tensor in (packed as the model's input; empty: the input staged with "
                 "INPUT_CHUNK), class + scores out"),
    "PROFILE": (7, "per-layer timer ticks of the last inference"),
    "RESET": (8, "drop the model and reset state"),
    "ECHO": (9, "echo payload back (link test)"),
    "INPUT_CHUNK": (10, "stage part of an INFER input larger than one frame: offset, total, crc32 + data"),
}
REPLY_BIT = 0x80
CMD_ERROR = 0x7F  # reply code used when a request could not even be decoded

# --------------------------------------------------------------------------------------------
# Records: name -> list of (field, struct code, description).  Offsets follow from the order.
HEADER = [
    ("magic", "4s", "b'EQB\\x01'"),
    ("version_major", "H", "incompatible changes"),
    ("version_minor", "H", "compatible additions"),
    ("total_size", "I", "bytes in the blob, header included"),
    ("crc32", "I", "CRC-32 (IEEE, zlib) of every byte with this field taken as zero"),
    ("header_size", "I", "bytes of this header"),
    ("flags", "I", "FLAG bits"),
    ("n_tensors", "I", "entries in the tensor table"),
    ("tensor_table_off", "I", "offset of the tensor table"),
    ("n_layers", "I", "entries in the layer table"),
    ("layer_table_off", "I", "offset of the layer table"),
    ("meta_off", "I", "offset of the UTF-8 JSON metadata (class names...)"),
    ("meta_size", "I", "bytes of metadata"),
    ("in_c", "H", "input channels"),
    ("in_h", "H", "input height"),
    ("in_w", "H", "input width"),
    ("pre_mode", "B", "PRE_*"),
    ("pre_param", "B", "threshold (THRESH) or bits (QUANT)"),
    ("n_classes", "H", "length of the output score vector"),
    ("reserved0", "H", "zero"),
    ("arena_size", "I", "bytes of scratch the runtime needs (checked, never trusted)"),
    ("model_hash", "8s", "first 8 bytes of SHA-256 over tensor and layer data"),
    ("reserved1", "8s", "zero"),
]

TENSOR = [
    ("offset", "I", "byte offset of the data in the blob"),
    ("nbytes", "I", "bytes of data"),
    ("enc", "B", "ENC_*"),
    ("bits", "B", "bits per code (KBIT), else 0"),
    ("rank", "B", "number of dims used"),
    ("reserved", "B", "zero"),
    ("d0", "I", "dim 0"),
    ("d1", "I", "dim 1"),
    ("d2", "I", "dim 2"),
    ("d3", "I", "dim 3"),
    ("aux", "I", "encoding-specific (TERN_SPARSE: number of nibbles)"),
]

LAYER = [
    ("op", "B", "OP_*"),
    ("in_enc", "B", "activation encoding in: B1, U8 or I32"),
    ("out_enc", "B", "activation encoding out: B1, U8 or I32"),
    ("out_stage", "B", "OUT_* (CONV), 0 otherwise"),
    ("in_h", "H", ""),
    ("in_w", "H", ""),
    ("in_c", "H", ""),
    ("out_h", "H", ""),
    ("out_w", "H", ""),
    ("out_c", "H", ""),
    ("kh", "B", "kernel height"),
    ("kw", "B", "kernel width"),
    ("stride", "B", ""),
    ("pad", "B", "zero padding on every side"),
    ("w_enc", "B", "ENC_* of the weights (CONV)"),
    ("out_bits", "B", "bits of U8 output codes (MULTI)"),
    ("shift", "B", "right shift (AFFINE)"),
    ("flags", "B", "LFLAG_* bits (blob 1.2; zero in 1.0 / 1.1 blobs)"),
    ("t_weight", "h", "tensor index of the weights, -1 if none"),
    ("t_lut", "h", "tensor index of the product LUT (KBIT), -1 if none"),
    ("t_thr", "h", "tensor index of the thresholds (SIGN, MULTI) or mul (AFFINE)"),
    ("t_aux", "h", "tensor index of the flip bytes (SIGN, MULTI) or add (AFFINE)"),
    ("name_off", "I", "offset into metadata of the name, or 0"),
    ("macs", "I", "multiply-accumulates (or bit-ops) of the layer, for profiling"),
    ("src0", "H", "first input: 0 = the previous layer's output (layer 0: the input), v + 1 = value v "
                  "(value 0 = the preprocessed input, value j + 1 = layer j's output, j < this layer)"),
    ("src1", "H", "second input (ADD, CONCAT) in the same numbering, 0 otherwise"),
    ("groups", "H", "CONV groups (0 or 1: dense over channels; in_c = out_c = groups: depthwise)"),
    ("stride_w", "B", "horizontal stride; 0 = same as stride (which is then the vertical stride)"),
    ("pad_w", "B", "horizontal zero padding + 1; 0 = same as pad (which is then the vertical padding)"),
]

# Wire frame (before COBS): header, payload, crc32 (over header + payload).
FRAME = [
    ("version", "B", "PROTOCOL_VERSION"),
    ("cmd", "B", "CMD_* for requests, CMD_* | REPLY_BIT for replies"),
    ("seq", "H", "sequence number; a reply echoes its request's"),
    ("length", "H", "payload bytes"),
]
FRAME_MAX_PAYLOAD = 4096  # protocol maximum; a board advertises its own (<=) in HELLO
FRAME_CRC_SIZE = 4
FRAME_DELIM = 0  # COBS frames end with a zero byte

# Payloads of the protocol (docs/protocol.md), fixed parts; a variable tail is said in the record's
# last description. Every reply starts with `status` (STATUS); eq_app.c writes each field at the
# offset generated from here and edgeq/deploy/protocol.py unpacks with fmt() of the same record.
MODEL_SUMMARY = [
    ("source", "B", "SRC_*: 0 none, 1 flash (found at boot), 2 RAM (uploaded with LOAD_*)"),
    ("pre_mode", "B", "PRE_* of the model"),
    ("n_layers", "H", ""),
    ("size", "I", "blob bytes"),
    ("crc32", "I", "zlib CRC of the whole blob, computed by the board"),
    ("model_hash", "8s", "from the blob header"),
    ("n_classes", "H", ""),
    ("in_c", "H", ""),
    ("in_h", "H", ""),
    ("in_w", "H", ""),
    ("input_wire", "I", "bytes of one INFER payload"),
    ("arena_need", "I", "arena bytes the model needs; every field after source is 0 with no model"),
]
HELLO_REPLY = [
    ("status", "B", "STATUS"),
    ("proto", "B", "PROTOCOL_VERSION of the board"),
    ("window", "B", "frames the host may send before waiting for replies"),
    ("caps", "B", "CAP_* bits: 1 PROFILE, 2 flash model region, 4 model loaded, 8 INPUT_CHUNK"),
    ("max_payload", "H", "largest request payload the board accepts"),
    ("fw_version", "H", "firmware version, major << 8 | minor"),
]
INFO_REPLY = HELLO_REPLY + [
    ("blob_major", "H", "BLOB_VERSION_MAJOR the runtime reads"),
    ("blob_minor", "H", "BLOB_VERSION_MINOR"),
    ("cpu_hz", "I", "CPU clock"),
    ("tick_hz", "I", "rate of the INFER/PROFILE ticks"),
    ("model_buf", "I", "bytes of the RAM model buffer (LOAD_*)"),
    ("arena", "I", "bytes of runtime scratch"),
    ("flash_model", "I", "bytes of the flash model region, 0 if none"),
    ("frames_ok", "I", "frames decoded since boot"),
    ("frames_bad", "I", "frames rejected (COBS, length, CRC, too long)"),
    ("rx_overruns", "I", "received bytes dropped: the RX ring was full"),
    ("model", f"{struct.calcsize('<' + ''.join(c for _, c, _ in MODEL_SUMMARY))}s",
     "MODEL_SUMMARY; the board name (UTF-8) fills the rest of the payload"),
]
MODEL_REPLY = [  # LOAD_END, RESET
    ("status", "B", "STATUS"),
    ("model", INFO_REPLY[-1][1], "MODEL_SUMMARY"),
]
NEXT_REPLY = [  # LOAD_BEGIN, LOAD_CHUNK
    ("status", "B", "STATUS (OK, or ERR_SEQUENCE for LOAD_CHUNK / INPUT_CHUNK)"),
    ("next", "I", "bytes held contiguously from offset 0: where the next chunk goes"),
]
ERROR_REPLY = [  # any status but OK (and CMD_ERROR)
    ("status", "B", "STATUS, not OK"),
    ("detail", "I", "the limit that was hit (docs/protocol.md), else 0"),
]
INFER_REPLY = [
    ("status", "B", "STATUS"),
    ("reserved0", "B", "zero"),
    ("cls", "H", "class: the first maximum score"),
    ("n", "H", "number of scores"),
    ("reserved1", "H", "zero"),
    ("ticks", "I", "ticks of the whole inference; followed by scores i32[n]"),
]
PROFILE_REPLY = [
    ("status", "B", "STATUS"),
    ("reserved0", "B", "zero"),
    ("n", "H", "number of layers"),
    ("total", "I", "ticks of the whole inference (input unpacking and argmax included)"),
    ("tick_hz", "I", "tick rate; followed by ticks u32[n], one per layer"),
]
LOAD_BEGIN_REQ = [
    ("total", "I", "blob bytes"),
    ("crc32", "I", "zlib CRC of the whole blob"),
]
LOAD_CHUNK_REQ = [
    ("offset", "I", "where the data goes in the blob; followed by the data"),
]
INPUT_CHUNK_REQ = [
    ("offset", "I", "where the data goes in the wire input"),
    ("total", "I", "bytes of the whole wire input (the model's input_wire)"),
    ("crc32", "I", "zlib CRC of the whole wire input: names it (another name starts a new input) and "
                   "is checked once every byte is there; followed by the data"),
]

RECORDS = {"HEADER": HEADER, "TENSOR": TENSOR, "LAYER": LAYER, "FRAME": FRAME,
           "MODEL_SUMMARY": MODEL_SUMMARY, "HELLO_REPLY": HELLO_REPLY, "INFO_REPLY": INFO_REPLY,
           "MODEL_REPLY": MODEL_REPLY, "NEXT_REPLY": NEXT_REPLY, "ERROR_REPLY": ERROR_REPLY,
           "INFER_REPLY": INFER_REPLY, "PROFILE_REPLY": PROFILE_REPLY,
           "LOAD_BEGIN_REQ": LOAD_BEGIN_REQ, "LOAD_CHUNK_REQ": LOAD_CHUNK_REQ,
           "INPUT_CHUNK_REQ": INPUT_CHUNK_REQ}
# payload records: every reply record starts with the status byte
PROTOCOL_RECORDS = [k for k in RECORDS if k not in ("HEADER", "TENSOR", "LAYER", "FRAME")]


def fmt(record: list) -> str:
    return "<" + "".join(code for _, code, _ in record)


def offsets(record: list) -> dict:
    out, off = {}, 0
    for name, code, _ in record:
        out[name] = off
        off += struct.calcsize("<" + code)
    return out


def size(record: list) -> int:
    return struct.calcsize(fmt(record))


HEADER_SIZE = size(HEADER)
TENSOR_SIZE = size(TENSOR)
LAYER_SIZE = size(LAYER)
FRAME_HEADER_SIZE = size(FRAME)
MODEL_SUMMARY_SIZE = size(MODEL_SUMMARY)
assert offsets(INFO_REPLY)["model"] + MODEL_SUMMARY_SIZE == size(INFO_REPLY)
assert INFO_REPLY[:len(HELLO_REPLY)] == HELLO_REPLY  # INFO starts with the HELLO reply
CRC_OFFSET = offsets(HEADER)["crc32"]

assert HEADER_SIZE % BLOB_ALIGN == 0 and TENSOR_SIZE % BLOB_ALIGN == 0 and LAYER_SIZE % BLOB_ALIGN == 0


def value(enum: dict, name: str) -> int:
    return enum[name][0]


def name_of(enum: dict, v: int) -> str:
    for k, (val, _) in enum.items():
        if val == v:
            return k
    return f"?{v}"


ENUMS = {"STATUS": STATUS, "ENC": ENC, "OP": OP, "OUT": OUT, "PRE": PRE, "FLAG": FLAG, "LFLAG": LFLAG, "CMD": CMD,
         "CAP": CAP, "SRC": SRC, "INPUT": INPUT}
CONSTS = {
    "BLOB_VERSION_MAJOR": BLOB_VERSION_MAJOR,
    "BLOB_VERSION_MINOR": BLOB_VERSION_MINOR,
    "MAX_DAG_LAYERS": MAX_DAG_LAYERS,
    "BLOB_ALIGN": BLOB_ALIGN,
    "BLOB_DATA_ALIGN": BLOB_DATA_ALIGN,
    "PROTOCOL_VERSION": PROTOCOL_VERSION,
    "FW_VERSION_MAJOR": FW_VERSION_MAJOR,
    "FW_VERSION_MINOR": FW_VERSION_MINOR,
    "WORD_BITS": WORD_BITS,
    "F32_MAX_EXP_WEIGHT": F32_MAX_EXP_WEIGHT,
    "F32_MAX_EXP_MUL": F32_MAX_EXP_MUL,
    "F32_MAX_EXP_ADD": F32_MAX_EXP_ADD,
    "REPLY_BIT": REPLY_BIT,
    "CMD_ERROR": CMD_ERROR,
    "FRAME_MAX_PAYLOAD": FRAME_MAX_PAYLOAD,
    "FRAME_CRC_SIZE": FRAME_CRC_SIZE,
    "FRAME_DELIM": FRAME_DELIM,
    "HEADER_SIZE": HEADER_SIZE,
    "TENSOR_SIZE": TENSOR_SIZE,
    "LAYER_SIZE": LAYER_SIZE,
    "FRAME_HEADER_SIZE": FRAME_HEADER_SIZE,
}

# --------------------------------------------------------------------------------------------
# Derived rules: small pure functions of the numbers above that every runtime applies.  Each is
# written once here over the tables below; render_c() emits it as a `static inline` C function
# (eq_rule_<name>) and render_micro() copies its source into the MicroPython spec, so the host, the
# firmware and MicroPython compute the same sizes (tests/test_spec.py sweeps them against each
# other).  The functions stay in the Python subset MicroPython runs: no annotations, no imports.
_E, _P = (lambda k: ENC[k][0]), (lambda k: PRE[k][0])
ACT_ELEM_BYTES = {_E("B1"): 0, _E("U8"): 1}  # bytes per activation value; 0: bit-packed channels
ACT_ELEM_BYTES_OTHER = 4  # every other activation encoding (I32, F32) holds 4-byte values
KBIT_SLOTS = (1, 2, 4, 8)  # storage widths of a KBIT code
WIRE_PIXEL_BITS = {_P("THRESH"): 1}  # bits per pixel of the wire input; every other mode sends bytes
WIRE_PIXEL_BITS_OTHER = 8
# largest |weight| times the largest activation code (amax) bounds a product; KBIT reads its LUT,
# F32 accumulates in float (0: no integer bound)
WEIGHT_ABS_MAX = {_E("B1"): 1, _E("TERN"): 1, _E("TERN_SPARSE"): 1, _E("I8"): 128,
                  _E("I16"): 32768, _E("F32"): 0}
ACC_LIMIT = 2**31 - 1  # every CONV accumulator bound k * max_prod stays below this (int32)
ENC_B1 = _E("B1")
# blob 1.1 (version_minor 1) features of a layer record: these ops, these output stages, and any
# non-zero src0 / src1 / groups / stride_w / pad_w; a blob marked minor 0 holds none of them
V11_OPS = (OP["AVGPOOL"][0], OP["ADD"][0], OP["CONCAT"][0])
V11_STAGES = (OUT["REQUANT"][0],)
# blob 1.2 (version_minor 2): any non-zero layer flags; the flags this runtime knows
LFLAG_KNOWN = LFLAG["WINO_F23"][0]
WINO_OP, WINO_W_ENC = OP["CONV"][0], ENC["F32"][0]


def act_bytes(enc, h, w, c):
    """Bytes of an (h, w, c) HWC activation of encoding `enc` in the runtimes' layout."""
    eb = ACT_ELEM_BYTES.get(enc, ACT_ELEM_BYTES_OTHER)
    if eb == 0:
        return h * w * ((c + WORD_BITS - 1) // WORD_BITS) * (WORD_BITS // 8)
    return h * w * c * eb


def kbit_slot_bits(bits):
    """Storage width of a KBIT code of `bits` bits (1..8): the smallest slot holding it."""
    for sb in KBIT_SLOTS:
        if bits <= sb:
            return sb
    return KBIT_SLOTS[-1]


def kbit_slot_bits_for_rows(lut_rows):
    """The same slot width from the LUT's row count (lut_rows = 2**bits codes)."""
    for sb in KBIT_SLOTS:
        if lut_rows <= 1 << sb:
            return sb
    return KBIT_SLOTS[-1]


def kbit_row_bytes(k, bits):
    """Bytes of one packed KBIT weight row of k codes: slots padded to whole 32-bit words."""
    return (k * kbit_slot_bits(bits) + WORD_BITS - 1) // WORD_BITS * (WORD_BITS // 8)


def wire_bytes(pre_mode, pixels):
    """Bytes of one wire input (an INFER payload) of `pixels` raw pixels for preprocessing mode
    `pre_mode`: THRESH sends one bit a pixel, LSB-first; RAW and QUANT send the pixels."""
    return (pixels * WIRE_PIXEL_BITS.get(pre_mode, WIRE_PIXEL_BITS_OTHER) + 7) // 8


def act_code_max(enc, levels):
    """Largest |activation| a CONV multiplies: 1 for B1 (+-1), else the top code levels - 1."""
    return 1 if enc == ENC_B1 else levels - 1


def weight_product_max(w_enc, amax):
    """Largest |weight * activation| of a non-KBIT CONV layer (0 for float layers)."""
    return WEIGHT_ABS_MAX.get(w_enc, 0) * amax


def acc_fits(k, max_prod):
    """True when k products of at most max_prod keep the int32 accumulator from overflowing."""
    return k * max_prod < ACC_LIMIT


def uses_1_1(op, out_stage, src0, src1, groups, stride_w, pad_w):
    """True when a layer record uses a blob 1.1 feature (the writer then stores version_minor 1;
    every loader refuses such a record in a blob marked minor 0 with ERR_VERSION)."""
    return op in V11_OPS or out_stage in V11_STAGES or (src0 | src1 | groups | stride_w | pad_w) != 0


def uses_1_2(flags):
    """True when a layer record uses a blob 1.2 feature (non-zero layer flags; the writer then
    stores version_minor 2; every loader refuses such a record in a blob marked minor 0 or 1
    with ERR_VERSION)."""
    return flags != 0


def wino_f23_ok(op, w_enc, kh, kw, stride, stride_w, pad, pad_w, groups):
    """True when a layer record (stored fields) may carry LFLAG_WINO_F23: an F32 CONV, 3x3,
    stride 1 both ways, padding 1 both ways, one group."""
    return (op == WINO_OP and w_enc == WINO_W_ENC and kh == 3 and kw == 3 and stride == 1
            and stride_w <= 1 and pad == 1 and (pad_w == 0 or pad_w == 2) and groups <= 1)


def wino_f23_scratch(in_c, out_w, out_c):
    """Bytes of the Winograd F(2x2, 3x3) F32 CONV's scratch (arena accumulator row): two output
    rows of float accumulators (2 * out_w * out_c), the input transforms of one row of tiles
    (16 * in_c * ceil(out_w / 2)) and two output channels' weight transforms (32 * in_c), 4-byte
    floats."""
    return 4 * (2 * out_w * out_c + 16 * in_c * ((out_w + 1) // 2) + 32 * in_c)


RULES = [act_bytes, kbit_slot_bits, kbit_slot_bits_for_rows, kbit_row_bytes, wire_bytes,
         act_code_max, weight_product_max, acc_fits, uses_1_1, uses_1_2, wino_f23_ok,
         wino_f23_scratch]
RULE_TABLES = ["ACT_ELEM_BYTES", "ACT_ELEM_BYTES_OTHER", "KBIT_SLOTS",
               "WIRE_PIXEL_BITS", "WIRE_PIXEL_BITS_OTHER", "WEIGHT_ABS_MAX", "ACC_LIMIT",
               "V11_OPS", "V11_STAGES", "LFLAG_KNOWN", "WINO_OP", "WINO_W_ENC"]


def _c_chain(var: str, cases: list, other: str) -> str:
    """`var == k1 ? v1 : var == k2 ? v2 : other` (cases of (condition, value) strings)."""
    return "".join(f"{cond} ? {val} : " for cond, val in cases) + other


def render_c_rules() -> list:
    """The derived rules as C: each function computes what its Python namesake above does."""
    wb, wbytes = WORD_BITS, WORD_BITS // 8
    act = _c_chain("enc", [(f"enc == {k}u", f"{v}u") for k, v in ACT_ELEM_BYTES.items()],
                   f"{ACT_ELEM_BYTES_OTHER}u")
    slot = _c_chain("bits", [(f"bits <= {sb}u", f"{sb}u") for sb in KBIT_SLOTS[:-1]],
                    f"{KBIT_SLOTS[-1]}u")
    slot_rows = _c_chain("lut_rows", [(f"lut_rows <= {1 << sb}u", f"{sb}u") for sb in KBIT_SLOTS[:-1]],
                         f"{KBIT_SLOTS[-1]}u")
    wire = _c_chain("pre_mode", [(f"pre_mode == {k}u", f"{v}u") for k, v in WIRE_PIXEL_BITS.items()],
                    f"{WIRE_PIXEL_BITS_OTHER}u")
    wmax = _c_chain("w_enc", [(f"w_enc == {k}u", f"{v}u") for k, v in WEIGHT_ABS_MAX.items()], "0u")
    return [
        "/* derived rules (edgeq/spec.py: act_bytes, kbit_slot_bits, ...); every product is 64-bit */",
        "static inline uint64_t eq_rule_act_bytes(uint32_t enc, uint32_t h, uint32_t w, uint32_t c)",
        "{",
        f"    const uint64_t eb = {act};",
        f"    return eb == 0u ? (uint64_t)h * w * ((c + {wb - 1}ull) / {wb}u) * {wbytes}u"
        " : (uint64_t)h * w * c * eb;",
        "}",
        "static inline uint32_t eq_rule_kbit_slot_bits(uint32_t bits)",
        "{",
        f"    return {slot};",
        "}",
        "static inline uint32_t eq_rule_kbit_slot_bits_for_rows(uint32_t lut_rows)",
        "{",
        f"    return {slot_rows};",
        "}",
        "static inline uint64_t eq_rule_kbit_row_bytes(uint64_t k, uint32_t bits)",
        "{",
        f"    return (k * eq_rule_kbit_slot_bits(bits) + {wb - 1}u) / {wb}u * {wbytes}u;",
        "}",
        "static inline uint64_t eq_rule_wire_bytes(uint32_t pre_mode, uint64_t pixels)",
        "{",
        f"    return (pixels * ({wire}) + 7u) / 8u;",
        "}",
        "static inline uint64_t eq_rule_act_code_max(uint32_t enc, uint32_t levels)",
        "{",
        f"    return enc == {ENC_B1}u ? 1u : (uint64_t)levels - 1u;",
        "}",
        "static inline uint64_t eq_rule_weight_product_max(uint32_t w_enc, uint64_t amax)",
        "{",
        f"    return ({wmax}) * amax;",
        "}",
        "static inline int eq_rule_acc_fits(uint64_t k, uint64_t max_prod)",
        "{",
        f"    return k * max_prod < {ACC_LIMIT}ull;",
        "}",
        "static inline int eq_rule_uses_1_1(uint32_t op, uint32_t out_stage, uint32_t src0, uint32_t src1,",
        "                                   uint32_t groups, uint32_t stride_w, uint32_t pad_w)",
        "{",
        f"    return {' || '.join(f'op == {v}u' for v in V11_OPS)}",
        f"           || {' || '.join(f'out_stage == {v}u' for v in V11_STAGES)}",
        "           || (src0 | src1 | groups | stride_w | pad_w) != 0u;",
        "}",
        "static inline int eq_rule_uses_1_2(uint32_t flags)",
        "{",
        "    return flags != 0u;",
        "}",
        "static inline int eq_rule_wino_f23_ok(uint32_t op, uint32_t w_enc, uint32_t kh, uint32_t kw,",
        "                                      uint32_t stride, uint32_t stride_w, uint32_t pad,",
        "                                      uint32_t pad_w, uint32_t groups)",
        "{",
        f"    return op == {WINO_OP}u && w_enc == {WINO_W_ENC}u && kh == 3u && kw == 3u && stride == 1u",
        "           && stride_w <= 1u && pad == 1u && (pad_w == 0u || pad_w == 2u) && groups <= 1u;",
        "}",
        "static inline uint64_t eq_rule_wino_f23_scratch(uint64_t in_c, uint64_t out_w, uint64_t out_c)",
        "{",
        "    return 4u * (2u * out_w * out_c + 16u * in_c * ((out_w + 1u) / 2u) + 32u * in_c);",
        "}",
        "",
    ]


def render_micro_rules() -> list:
    import inspect

    lines = [f"{name} = {globals()[name]!r}" for name in RULE_TABLES]
    for fn in RULES:
        lines += ["", ""] + inspect.getsource(fn).rstrip().splitlines()
    return lines


_GEN_NOTE = "Generated by `python -m edgeq.spec` from edgeq/spec.py. Do not edit."


def render_c() -> str:
    lines = [f"/* {_GEN_NOTE} */", "#ifndef EQ_SPEC_H", "#define EQ_SPEC_H", "",
             "#include <stdint.h>", ""]
    magic = ", ".join(f"0x{b:02x}" for b in BLOB_MAGIC)
    lines.append(f"#define EQ_BLOB_MAGIC_BYTES {{ {magic} }}")
    for k, v in CONSTS.items():
        lines.append(f"#define EQ_{k} {v}u")
    lines.append("")
    for ename, enum in ENUMS.items():
        lines.append(f"/* {ename} */")
        for k, (v, desc) in enum.items():
            cname = f"EQ_{k}" if ename == "STATUS" else f"EQ_{ename}_{k}"
            lines.append(f"#define {cname} {v} /* {desc} */")
        lines.append("")
    lines.append("/* status strings, indexed by status code */")
    n = max(v for v, _ in STATUS.values()) + 1
    msgs = ["unknown status"] * n
    for v, d in STATUS.values():
        msgs[v] = d
    lines.append(f"#define EQ_STATUS_COUNT {n}")
    lines.append("#define EQ_STATUS_STRINGS { \\")
    for m in msgs:
        lines.append(f'    "{m}", \\')
    lines.append("}")
    lines.append("")
    for rname, rec in RECORDS.items():
        lines.append(f"/* {rname} record: {size(rec)} bytes */")
        lines.append(f"#define EQ_{rname}_SIZE_BYTES {size(rec)}u")
        offs = offsets(rec)
        for fname, code, desc in rec:
            lines.append(f"#define EQ_{rname}_{fname.upper()} {offs[fname]} /* {code}: {desc} */")
        lines.append("")
    lines += render_c_rules()
    lines.append("#endif /* EQ_SPEC_H */")
    return "\n".join(lines) + "\n"


def render_micro() -> str:
    lines = [f"# {_GEN_NOTE}",
             "# MicroPython-compatible: integer constants, tables and the derived rules; no imports.", ""]
    lines.append(f"BLOB_MAGIC = {BLOB_MAGIC!r}")
    for k, v in CONSTS.items():
        lines.append(f"{k} = {v}")
    lines.append(f"CRC_OFFSET = {CRC_OFFSET}")
    for ename, enum in ENUMS.items():
        for k, (v, _) in enum.items():
            pname = k if ename == "STATUS" else f"{ename}_{k}"
            lines.append(f"{pname} = {v}")
    lines.append("STATUS_STRINGS = {")
    for v, d in STATUS.values():
        lines.append(f"    {v}: {d!r},")
    lines.append("}")
    for rname, rec in RECORDS.items():
        if rname in PROTOCOL_RECORDS:  # the MicroPython runtime speaks no serial protocol
            continue
        lines.append(f"{rname}_FMT = {fmt(rec)!r}")
        offs = offsets(rec)
        for fname, _, _ in rec:
            lines.append(f"{rname}_{fname.upper()} = {offs[fname]}")
    lines += render_micro_rules()
    return "\n".join(lines) + "\n"


ROOT = Path(__file__).resolve().parent.parent
C_HEADER_PATH = ROOT / "firmware" / "include" / "eq_spec.h"
MICRO_SPEC_PATH = Path(__file__).resolve().parent / "micro" / "edgeq_spec.py"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    bad = 0
    for path, text in ((C_HEADER_PATH, render_c()), (MICRO_SPEC_PATH, render_micro())):
        if check:
            if not path.exists() or path.read_text() != text:
                print(f"{path} is out of date: run `python -m edgeq.spec`")
                bad = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    return bad


if __name__ == "__main__":
    raise SystemExit(main())
