"""Microcontrollers: what only the `micro` export target needs.

The micro target is one row of the exporter's format table (`zoo.deploy.exporter`):
a full-integer int8 `.tflite` file with a static batch of 1, verified like any
other export. This module holds the rest: the boards and their budgets, the
TensorFlow Lite for Microcontrollers (TFLM) interpreter from the `tflite-micro`
package (imported late; one line when it is missing), the tensor arena
measured by bisection in that interpreter, and the C++ source that a firmware
project compiles.

Three things decide whether a model fits a microcontroller: flash (the model's
bytes), RAM (the tensor arena) and kernels (TFLM must have one for every op).
All three are measured here in the real runtime, none estimated. The board
table is read by `zoo export --help`, so this module imports nothing heavy at
the top.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ConfigError, ExportError, ModelLoadError


@dataclass(frozen=True)
class Board:
    key: str
    name: str
    flash_kb: float
    ram_kb: float


BOARDS = {
    b.key: b
    for b in (
        Board("nano33ble", "Arduino Nano 33 BLE Sense", 1024, 256),
        Board("pico", "Raspberry Pi Pico", 2048, 264),
        Board("stm32f746", "STM32F746 Discovery", 1024, 320),
        Board("esp32s3", "ESP32-S3", 8192, 512),
    )
}
# Without a board, a model must fit the largest board zoo knows.
LARGEST = max(BOARDS.values(), key=lambda b: (b.flash_kb, b.ram_kb))

# TFLM aligns tensors to 16 bytes; the arena is measured, and declared, in 16-byte steps.
ALIGN = 16
# The largest arena the search tries before it calls a model unable to allocate: 64 MB is past
# every board in the table by 128x.
MAX_ARENA = 64 << 20


def budget(board: str | None = None, flash_kb: float | None = None, ram_kb: float | None = None) -> Board | None:
    """The board a micro export must fit: one from `BOARDS`, or any other given by its flash and RAM."""
    if board is not None and (flash_kb is not None or ram_kb is not None):
        raise ConfigError("give either --board or --flash-kb with --ram-kb, not both")
    if board is not None:
        if board not in BOARDS:
            known = ", ".join(f"{b.key} ({b.name}, {b.flash_kb:g} KB flash / {b.ram_kb:g} KB RAM)"
                              for b in BOARDS.values())
            raise ConfigError(f"unknown board '{board}'; choose from: {known}; or give --flash-kb and --ram-kb")
        return BOARDS[board]
    if flash_kb is None and ram_kb is None:
        return None
    if flash_kb is None or ram_kb is None:
        raise ConfigError("give both --flash-kb and --ram-kb (a board's flash and RAM in KB), or a --board")
    for flag, value in (("flash-kb", flash_kb), ("ram-kb", ram_kb)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigError(f"--{flag} must be a number of KB above 0, got {value!r}")
    return Board("custom", f"a board with {flash_kb:g} KB flash and {ram_kb:g} KB RAM", flash_kb, ram_kb)


def check_weights_fit(model_name: str, params: int, board: Board | None) -> None:
    """Refuse, before converting anything, a model whose int8 weights alone outgrow the flash."""
    target = board or LARGEST
    need_kb = params / 1024  # one byte per int8 weight, before the graph and the biases
    if need_kb > target.flash_kb:
        where = (f"the {target.name} has {target.flash_kb:,g} KB" if board else
                 f"the largest board zoo knows ({LARGEST.name}) has {LARGEST.flash_kb:,g} KB")
        raise ExportError(f"{model_name} does not fit a microcontroller: its {params:,} int8 weights need "
                          f"{need_kb:,.0f} KB of flash and {where}; export it for --target cpu or gpu instead")


def check_fits(model_name: str, flash_bytes: int, arena_bytes: int, board: Board | None) -> dict:
    """Flash (model bytes) and RAM (tensor arena) used against the board's; one line when over."""
    target = board or LARGEST
    flash_kb, ram_kb = flash_bytes / 1024, arena_bytes / 1024
    report = {"board": target.key if board else None, "board_name": target.name,
              "flash_kb": round(flash_kb, 1), "flash_kb_available": target.flash_kb,
              "ram_kb": round(ram_kb, 1), "ram_kb_available": target.ram_kb}
    over = [what for what, used, has in (("flash", flash_kb, target.flash_kb), ("RAM", ram_kb, target.ram_kb))
            if used > has]
    if over:
        raise ExportError(
            f"{model_name} does not fit {target.name if board else 'any board zoo knows'}: it needs "
            f"{flash_kb:,.1f} KB of flash (has {target.flash_kb:,g}) and {ram_kb:,.1f} KB of RAM for the tensor "
            f"arena (has {target.ram_kb:,g}); too little {' and '.join(over)}, so nothing was written")
    return report


@contextlib.contextmanager
def plain_embedding_lookup():
    """While a micro file is traced, Keras's Embedding looks ids up with a plain gather.

    Keras's `ops.take` first wraps negative ids, `where(ids < 0, ids + n, ids)`, and TFLM's
    SELECT has no int32 kernel (nor SELECT_V2: "Does not support type other than
    int8|int16|float32, but got INT32"), so text_cnn would not run. Token ids are never
    negative (the vocabulary numbers words from 0), and the export is verified in TFLM on the
    whole test split after: text_cnn agrees with Keras on 444 of 444 BBC News texts."""
    from zoo.backend import keras

    import tensorflow as tf

    embedding = keras().layers.Embedding
    original = embedding.call

    def call(self, inputs):
        return tf.cast(tf.gather(self.embeddings, tf.cast(inputs, "int32")), self.compute_dtype)

    embedding.call = call
    try:
        yield
    finally:
        embedding.call = original


# ---------------------------------------------------------------- the TFLM interpreter


def runtime():
    """The TFLM Python interpreter module, or one line saying how to get it."""
    try:
        from tflite_micro.python.tflite_micro import runtime as tflm
    except Exception as exc:  # noqa: BLE001 - missing, or a wheel that will not load on this machine
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"--target micro needs the TFLite Micro interpreter, which did not import ({reason}); "
                          f"install it with: pip install 'zoo[micro]' (Linux x86-64 only: tflite-micro ships no "
                          "other wheels)") from None
    return tflm


def _captured(fn):
    """Run `fn()` with the native stdout and stderr sent to a file; return (result or exception, text).

    TFLM's C++ reports allocation failures and its allocation record with printf, not in the
    Python exception."""
    import tempfile

    from zoo.backend import native_output_redirected

    with tempfile.TemporaryFile() as log:
        with native_output_redirected(log.fileno(), (1, 2)):
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - returned to the caller, with the log that explains it
                result = exc
        log.seek(0)
        return result, log.read().decode(errors="replace")


def _run_once(tflm, data: bytes, arena: int):
    import numpy as np

    interpreter = tflm.Interpreter.from_bytes(data, arena_size=arena)
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interpreter.invoke()
    return interpreter


def measure_arena(data: bytes, name: str = "the model") -> tuple[int, dict]:
    """The smallest tensor arena (a multiple of 16 bytes) in which the model allocates and runs in
    TFLM, found by bisection, and the interpreter's allocation record at that size.

    Raises:
        ModelLoadError: it runs in no arena up to 64 MB (TFLM's reason: a missing kernel, say).
        ExportError: the TFLM interpreter is not installed."""
    tflm = runtime()
    high = max(ALIGN, -(-len(data) // ALIGN) * ALIGN)
    while True:
        result, log = _captured(lambda: _run_once(tflm, data, high))
        if not isinstance(result, Exception):
            break
        if high >= MAX_ARENA:
            raise ModelLoadError(f"{name} does not run in TFLite Micro: {_first_error(log, result)}")
        high = min(high * 4, MAX_ARENA)
    low = 0  # in 16-byte units: low fails, high runs
    low_units, high_units = low, high // ALIGN
    while high_units - low_units > 1:
        middle = (low_units + high_units) // 2
        result, _ = _captured(lambda: _run_once(tflm, data, middle * ALIGN))
        if isinstance(result, Exception):
            low_units = middle
        else:
            high_units = middle
    arena = high_units * ALIGN
    interpreter, _ = _captured(lambda: _run_once(tflm, data, arena))
    _, record = _captured(interpreter.print_allocations)
    return arena, allocations(record)


def _first_error(log: str, exc: Exception) -> str:
    """TFLM's own reason (a missing kernel, say), else the Python exception's first line."""
    for line in log.splitlines():
        line = line.strip()
        if line and not line.startswith("[RecordingMicroAllocator]"):
            return line
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def allocations(record: str) -> dict:
    """The RecordingMicroAllocator's lines as numbers: total, head (tensors), tail (persistent
    structures) and the bytes of each kind of allocation."""
    out: dict = {}
    for line in record.splitlines():
        if m := re.search(r"Arena allocation (\w+) (\d+) bytes", line):
            out[m.group(1)] = int(m.group(2))
        elif m := re.search(r"'([^']+)' used (\d+) bytes.*for (\d+)", line):
            out.setdefault("by_kind", {})[m.group(1)] = {"bytes": int(m.group(2)), "count": int(m.group(3))}
    return out


def ops(data: bytes) -> list[str]:
    """The builtin operators of a .tflite flatbuffer, in first-use order (TFLM's schema reader)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    runtime()
    model = schema.Model.GetRootAsModel(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    seen = []
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        name = names.get(codes[graph.Operators(i).OpcodeIndex()], "CUSTOM")
        if name not in seen:
            seen.append(name)
    return seen


def scratch_headroom(data: bytes) -> int:
    """Arena bytes to add for Arm's optimized kernels (CMSIS-NN), which ask for a scratch buffer in
    the arena that TFLM's reference kernels, where the arena is measured, do not: the largest
    buffer one op asks for, by CMSIS-NN's `*_get_buffer_size` for a Cortex-M with the DSP
    extension (convolution: 2 x in-channels x kernel height x width int16 values; depthwise:
    in-channels x kernel height x width int16; average pooling: channels int32), in 16-byte steps.
    One op runs at a time, so the largest buffer, not their sum, is what the peak can grow by.
    ESP-NN's buffers differ: on an ESP32, measure with MicroInterpreter::arena_used_bytes()."""
    from zoo.backend import native_output_silenced

    from ai_edge_litert.interpreter import Interpreter

    with native_output_silenced():
        interpreter = Interpreter(model_content=data)
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    largest = 0
    for op in interpreter._get_ops_details():
        name, inputs = op["op_name"], [i for i in op["inputs"] if i >= 0]
        if name == "CONV_2D" and len(inputs) >= 2:
            _, kh, kw, cin = shapes[inputs[1]]
            need = 0 if kh == kw == 1 else 2 * cin * kh * kw * 2
        elif name == "DEPTHWISE_CONV_2D" and len(inputs) >= 2:
            _, kh, kw, _ = shapes[inputs[1]]
            need = shapes[inputs[0]][-1] * kh * kw * 2
        elif name == "AVERAGE_POOL_2D" and inputs:
            need = shapes[inputs[0]][-1] * 4
        else:
            need = 0
        largest = max(largest, need)
    return -(-largest // ALIGN) * ALIGN


# ---------------------------------------------------------------- the C++ source


# The MicroMutableOpResolver method that registers each builtin operator, as TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h names them (tflite-micro at 90b983c, 2026-08-20).
# A table, not a rule: no rule of case gives PADV2 -> AddPadV2, CUMSUM -> AddCumSum,
# BATCH_MATMUL -> AddBatchMatMul and UNIDIRECTIONAL_SEQUENCE_LSTM -> AddUnidirectionalSequenceLSTM.
RESOLVER = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill",
    "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish", "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack", "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}
# C++ keywords (and the alternative tokens) that a run name cannot be as a namespace
CPP_KEYWORDS = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
    compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
    default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
    int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
    register reinterpret_cast requires return short signed sizeof static static_assert static_cast struct
    switch template this thread_local throw true try typedef typeid typename union unsigned using virtual void
    volatile wchar_t while xor xor_eq""".split())


def resolver_call(op: str) -> str:
    """`CONV_2D` -> `AddConv2D()`: the MicroMutableOpResolver method that registers a builtin."""
    if op not in RESOLVER:
        raise ExportError(f"TFLite Micro's op resolver has no method for {op}; the model cannot run on a "
                          "microcontroller as it is")
    return RESOLVER[op] + "()"


def identifier(run: str) -> str:
    """A C++ namespace from a run name: `lenet5.mnist` -> `lenet5_mnist`. Runs of underscores become
    one and none leads (C++ reserves `__` and `_X` names); a keyword (`class`) or a leading digit
    gets a `model_` prefix, so that every run name gives a header that compiles."""
    name = re.sub(r"_+", "_", re.sub(r"\W", "_", run, flags=re.ASCII)).strip("_") or "model"
    return f"model_{name}" if name in CPP_KEYWORDS or not re.match(r"[A-Za-z]", name) else name


def _c_string(text: str) -> str:
    return '"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\?' else "".join(f"\\{b:03o}" for b in c.encode())
                         for c in text) + '"'


def _c_float(value: float) -> str:
    import numpy as np

    # 9 significant digits give a float32 back exactly; the exponent keeps it a float literal
    return f"{np.float32(value):.8e}f"


def write_sources(tflite: Path, *, run: str, model: str, arena: int, io: dict, labels: list, verified: str,
                  preprocessing: str, headroom: int = 0) -> tuple[Path, Path]:
    """`model_micro.h` (constants) and `model_micro.cc` (the model bytes, the labels) beside `tflite`."""
    data = tflite.read_bytes()
    space = identifier(run)
    header, source = tflite.with_suffix(".h"), tflite.with_suffix(".cc")
    guard = f"ZOO_{space.upper()}_{header.stem.upper()}_H_"
    lines = [
        f"// {run} ({model}) for TensorFlow Lite for Microcontrollers, written by `zoo export --target micro`.",
        f"// {verified}",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        f"namespace {space} {{",
        "",
        "// The .tflite flatbuffer (16-byte aligned, as TFLM requires): tflite::GetModel(kModel).",
        "extern const unsigned char kModel[];",
        f"constexpr unsigned int kModelLength = {len(data)};",
        "",
        "// The smallest tensor arena in which the model allocates and runs, measured in the TFLM",
        "// interpreter with its reference kernels on a 64-bit host. Optimized kernels ask for scratch",
        "// buffers in the arena as well: with CMSIS-NN (Arm Cortex-M) add kTensorArenaHeadroom, the",
        "// largest buffer one of this model's ops asks for by CMSIS-NN's formulas; ESP-NN's differ, so on",
        "// an ESP32 check MicroInterpreter::arena_used_bytes() on the board.",
        "// Declare it as: alignas(16) static uint8_t tensor_arena[kTensorArenaSize + kTensorArenaHeadroom];",
        f"constexpr size_t kTensorArenaSize = {arena};",
        f"constexpr size_t kTensorArenaHeadroom = {headroom};",
        "",
        "// The op resolver it needs: tflite::MicroMutableOpResolver<kNumOps> resolver; then",
        f"//   {'; '.join('resolver.' + resolver_call(op) for op in io['ops'])};",
        f"constexpr int kNumOps = {len(io['ops'])};",
        "",
    ]
    for end in ("input", "output"):
        t = io[end]
        cap = end.capitalize()
        lines += [
            f"// {cap}: {t['dtype']} {'x'.join(map(str, t['shape']))}"
            + ("; real value = (q - zero point) * scale" if t["dtype"] in ("int8", "uint8") else "")
            + (f". {preprocessing}" if end == "input" else ""),
            f"constexpr int k{cap}Rank = {len(t['shape'])};",
            f"constexpr int k{cap}Shape[k{cap}Rank] = {{{', '.join(map(str, t['shape']))}}};",
            f"constexpr float k{cap}Scale = {_c_float(t['scale'])};",
            f"constexpr int k{cap}ZeroPoint = {t['zero_point']};",
            "",
        ]
    lines += [
        "// The class names, in the order of the output's entries.",
        f"constexpr int kNumLabels = {len(labels)};",
        "extern const char* const kLabels[kNumLabels];",
        "",
        f"}}  // namespace {space}",
        "",
        f"#endif  // {guard}",
        "",
    ]
    header.write_text("\n".join(lines))
    rows = [", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12)]
    body = [
        f"// {run} ({model}): the model bytes and labels; see {header.name}.",
        f'#include "{header.name}"',
        "",
        f"namespace {space} {{",
        "",
        "alignas(16) const unsigned char kModel[] = {",
        *(f"    {row}," for row in rows),
        "};",
        'static_assert(sizeof(kModel) == kModelLength, "kModelLength must be the size of kModel");',
        "",
        "const char* const kLabels[kNumLabels] = {",
        *(f"    {_c_string(str(label))}," for label in labels),
        "};",
        "",
        f"}}  // namespace {space}",
        "",
    ]
    source.write_text("\n".join(body))
    return header, source


def describe_preprocessing(preprocessing: dict) -> str:
    """One sentence for the header on what the input holds before it is quantized."""
    if preprocessing.get("type") == "text":
        from zoo.data.preprocess import describe

        return (f"Token ids: the text {describe(preprocessing)}, each word's line "
                f"number in {preprocessing.get('vocab_file', 'vocab.txt')} (1 if unknown), padded with 0 to "
                f"{preprocessing.get('sequence_length')} ids")
    if preprocessing.get("type") == "tensor":
        shape = "x".join(map(str, preprocessing.get("input_shape", [])))
        return f"A {shape} {preprocessing.get('dtype', 'float32')} tensor as the model takes it, then q = round(x / scale) + zero point"
    ink = "a centred 20x20 digit, light ink on black, " if preprocessing.get("normalize") else ""
    shape = "x".join(map(str, preprocessing.get("input_shape", [])))
    return (f"A {shape} image, {ink}x = pixel * {preprocessing.get('scale', 1):.9g} + "
            f"{preprocessing.get('offset', 0):g}, then q = round(x / scale) + zero point")

