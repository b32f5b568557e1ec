"""Per-layer analysis of a Keras model: shapes, parameters, MACs and receptive fields.

`summarize(model)` walks the model's graph (nested Sequential and Functional
models included) and returns a `ModelSummary`, the data behind
`zoo summary --json`. Conventions (see DESIGN.md):

* shapes leave out the batch axis;
* `macs` counts the multiply-accumulates of convolution and dense layers;
  bias adds, activations, normalization and pooling count 0; a layer the
  analysis does not know gets None, and so does the model's total;
* `receptive_field` and `jump` are per spatial axis, in input positions; a
  layer whose geometry the analysis cannot follow gets None, never a guess.
  After Flatten each unit still sees one position's field (`jump` None); a
  Dense layer or global pooling over the positions then sees all of them.
* merge layers (Add, Multiply, Concatenate, ...) take the union of their
  inputs' fields, None when the inputs step through the input at different
  rates. An input broadcast onto the others (a squeeze-and-excite gate, a
  (1, 1, C) map) adds no local field: when its one position sees the whole
  input (global pooling and what is computed from it) the merge keeps the
  local field of its other inputs and is marked `global_context`; otherwise
  None.
* `global_context` is true on a layer that also sees the whole input through
  such a global branch, and on every layer downstream of it; in the --json
  document the key is present only where it is true.

Layers are recognised by class name along their MRO, so subclasses of Keras
layers are followed too; nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from zoo.errors import SummaryError
from zoo.models.geometry import Field, padding_amount, window_of

# Layers that act on each position independently: the geometry passes through.
_POINTWISE = {
    "Activation", "ActivityRegularization", "AlphaDropout", "BatchNormalization", "Dropout",
    "ELU", "GaussianDropout", "GaussianNoise", "Identity", "LeakyReLU", "Masking",
    "Normalization", "PReLU", "ReLU", "Rescaling", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D",
}
# keras.ops activations and elementwise functions called on a KerasTensor (MobileNetV3's
# hard-sigmoid is ops.relu6(x + 3) / 6, say): as pointwise as the layers above.
_ELEMENTWISE_OPS = {
    "Absolute", "Clip", "Elu", "Exp", "Gelu", "HardSigmoid", "HardSilu", "LeakyRelu", "Log",
    "Negative", "Relu", "Relu6", "Selu", "Sigmoid", "Silu", "Softplus", "Sqrt", "Square", "Tanh",
}
_POINTWISE |= _ELEMENTWISE_OPS
_LAST_AXIS = {"LayerNormalization", "UnitNormalization", "Softmax"}  # pointwise only on axis -1
# elementwise joins of aligned or broadcast tensors; Divide and TrueDivide are keras.ops (x / 6.0)
_MERGES = {
    "Add", "Average", "Concatenate", "Divide", "Maximum", "Minimum", "Multiply", "Subtract", "TrueDivide",
}
_NO_MACS = _POINTWISE | _LAST_AXIS | _MERGES | {
    "BasePooling", "BaseGlobalPooling", "Cropping1D", "Cropping2D", "Cropping3D", "Embedding",
    "Flatten", "InputLayer", "Permute", "RepeatVector", "Reshape", "UpSampling1D",
    "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
}


@dataclass(frozen=True)
class _Geo:
    """What one position of a tensor sees of the model's input."""

    kind: str  # "grid": spatial axes lead the shape; "flat": a flattened grid; "global": no grid
    fields: tuple[Field, ...]
    extent: tuple[int, ...] = ()  # "flat": positions per axis that were flattened
    whole: bool = False  # each position's field spans the whole input (global pooling and after)
    context: bool = False  # a global branch was broadcast onto this path: it sees the whole input too

    def collapse(self) -> "_Geo | None":
        """A unit that sees every position (Dense after Flatten)."""
        if self.kind == "flat":
            fields = tuple(f.covering(n) for f, n in zip(self.fields, self.extent))
            return replace(self, kind="global", fields=fields, extent=())
        return self


@dataclass
class LayerInfo:
    name: str
    type: str
    output_shape: list | None
    params: int
    macs: int | None
    kernel: list | None = None
    strides: list | None = None
    padding: str | None = None
    dilation: list | None = None
    receptive_field: list | None = None
    jump: list | None = None
    # also sees the whole input through a global branch (squeeze-and-excite) merged upstream;
    # receptive_field and jump are then those of the local, convolutional path
    global_context: bool = False

    def to_dict(self) -> dict[str, Any]:
        """One entry of the --json document's layers: global_context only where it is true."""
        row = asdict(self)
        if not row["global_context"]:
            del row["global_context"]
        return row

    @property
    def activation_size(self) -> int | None:
        shape = self.output_shape
        if not shape or isinstance(shape[0], list) or any(d is None for d in shape):
            return None
        return math.prod(shape)


@dataclass
class ModelSummary:
    model: str
    input_shape: list
    params: int
    trainable_params: int
    macs: int | None
    layers: list[LayerInfo] = field(default_factory=list)
    non_trainable_params: int = 0
    # each layer whose output is a grid of positions: per spatial axis [rf, jump, start], position
    # i's field centred at start + i * jump (zoo explain draws them; not in the --json document)
    fields: dict[str, list[list[int | float]]] = field(default_factory=dict)

    @property
    def weights_kb(self) -> dict[str, float]:
        return weights_kb(self.params)

    @property
    def largest_activation(self) -> dict | None:
        sized = [layer for layer in self.layers if layer.activation_size is not None]
        if not sized:
            return None
        top = max(sized, key=lambda layer: layer.activation_size)
        return {
            "layer": top.name,
            "shape": top.output_shape,
            "elements": top.activation_size,
            "kb_float32": round(top.activation_size * 4 / 1024, 1),
        }

    def to_dict(self) -> dict[str, Any]:
        """The `zoo summary --json` document."""
        return {
            "model": self.model,
            "input_shape": self.input_shape,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "weights_kb": self.weights_kb,
            "largest_activation": self.largest_activation,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def _is_plumbing(op, outputs) -> bool:
    """A weightless operation that computes a mask or indices (text_cnn's padding mask, say):
    no features, no multiply-accumulates, not a row of the summary."""
    if "Layer" in _kinds(op):
        return False
    return all(str(t.dtype) == "bool" or "int" in str(t.dtype) for t in outputs)


def _kinds(op) -> set[str]:
    return {cls.__name__ for cls in type(op).__mro__}


def _shape(tensor) -> list:
    return [None if d is None else int(d) for d in tuple(tensor.shape)[1:]]


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _input_geo(tensor) -> _Geo | None:
    """Channels-last inputs: every axis but the last is spatial; rank-1 integer ids are a sequence."""
    shape = _shape(tensor)
    dtype = str(getattr(tensor, "dtype", ""))
    if len(shape) >= 2:
        return _Geo("grid", (Field(),) * (len(shape) - 1))
    if len(shape) == 1 and "int" in dtype:
        return _Geo("grid", (Field(),))
    return None


def _spatial(shape: list, geo: _Geo) -> list:
    return shape[: len(geo.fields)]


def _has_channels(shape: list, geo: _Geo) -> bool:
    return len(shape) == len(geo.fields) + 1


def _spans(fields, extent) -> bool:
    """Whether a field covers every position of the model's input, per axis."""
    if extent is None or len(extent) != len(fields):
        return False
    return all(f.start - (f.rf - 1) / 2 <= 0 and f.start + (f.rf - 1) / 2 >= n - 1
               for f, n in zip(fields, extent))


def _one_position(geo: _Geo, shape: list) -> bool:
    """Every element of the tensor sees the same field: a global vector, or a 1×…×1 grid."""
    return geo.kind == "global" or (geo.kind == "grid" and all(n == 1 for n in _spatial(shape, geo)))


def _broadcast(geo: _Geo, shape: list, out_shape: list) -> bool:
    """A grid input stretched over the merge's output along a spatial axis of size 1."""
    if geo.kind != "grid" or len(shape) != len(out_shape):
        return False
    return _spatial(shape, geo) != _spatial(out_shape, geo)


def _merge(kinds: set[str], axis, geos: list, in_shapes: list, out_shape: list):
    """The geometry of a merge (Add, Multiply, Concatenate, ...) of aligned or broadcast inputs.

    A broadcast input gives every output position the same field: when that field is the whole
    input, the local field is the other inputs' and the result is marked `context`; any other
    broadcast field is a fixed window that no (rf, jump) can describe, so None.
    """
    if "Concatenate" in kinds and axis not in (-1, len(in_shapes[0])):
        return None
    local, context = [], any(g.context for g in geos)
    for geo, shape in zip(geos, in_shapes):
        if out_shape is not None and _broadcast(geo, shape, out_shape):
            if not geo.whole:
                return None
            context = True
        else:
            local.append(geo)
    if not local:
        return None
    first = local[0]
    if len(local) == 1 or any(g.kind != "grid" for g in local):
        # one path (ops.add(x, 3.0) has one tensor input), or vectors that must agree exactly
        if any(replace(g, context=False) != replace(first, context=False) for g in local):
            return None
        return replace(first, context=context)
    if len({len(g.fields) for g in local}) != 1:
        return None
    fields = tuple(Field.union(list(axis)) for axis in zip(*(g.fields for g in local)))
    if any(f is None for f in fields):
        return None
    return _Geo("grid", fields, whole=any(g.whole for g in local), context=context)


def _propagate(op, kinds: set[str], geos: list, in_shapes: list, out_shape: list, extent=None):
    """The geometry of a layer's output, or None where it cannot be followed.

    `extent`: the model input's spatial size, to tell whether a global field spans all of it.
    """
    if not geos or any(g is None for g in geos):
        return None
    geo, shape = geos[0], in_shapes[0]
    name = type(op).__name__

    if kinds & _MERGES:
        return _merge(kinds, getattr(op, "axis", -1), geos, in_shapes, out_shape)

    if len(geos) != 1:
        return None
    if kinds & _POINTWISE:
        return geo
    if kinds & _LAST_AXIS:
        axis = getattr(op, "axis", -1)
        axis = axis if isinstance(axis, int) else (list(axis)[0] if len(axis) == 1 else None)
        return geo if axis in (-1, len(shape)) else None
    if getattr(op, "data_format", "channels_last") != "channels_last":
        return None

    if kinds & {"BaseConv", "BaseDepthwiseConv", "BaseSeparableConv", "BasePooling"}:
        window = window_of(op)
        if window is None or geo.kind != "grid" or len(window.kernel) != len(geo.fields):
            return None
        sizes = _spatial(shape, geo)
        if any(n is None for n in sizes) and window.padding == "same":
            return None
        fields = tuple(
            f.conv(k, s, padding_amount(n or 0, k, s, window.padding, d)[0], d)
            for f, n, k, s, d in zip(geo.fields, sizes, window.kernel, window.strides, window.dilation)
        )
        # every window overlaps the input map, so a map that sees the whole input still does
        return replace(geo, fields=fields)

    if "BaseGlobalPooling" in kinds:
        if geo.kind != "grid" or any(n is None for n in _spatial(shape, geo)):
            return None
        fields = tuple(f.covering(n) for f, n in zip(geo.fields, _spatial(shape, geo)))
        kind = "grid" if getattr(op, "keepdims", False) else "global"
        return replace(geo, kind=kind, fields=fields, whole=geo.whole or _spans(fields, extent))

    if name.startswith(("ZeroPadding", "Cropping")):
        pads = getattr(op, "padding", None) if name.startswith("Zero") else getattr(op, "cropping", None)
        if geo.kind != "grid" or pads is None:
            return None
        pads = (tuple(pads),) if isinstance(pads[0], int) else tuple(tuple(p) for p in pads)
        if len(pads) != len(geo.fields):
            return None
        sign = -1 if name.startswith("Zero") else 1
        # a padded position sees no input at all: not the whole of it any more
        return replace(geo, fields=tuple(f.shift(sign * p[0]) for f, p in zip(geo.fields, pads)), whole=False)

    if name == "Flatten":
        if geo.kind != "grid":
            return geo
        sizes = _spatial(shape, geo)
        if any(n is None for n in sizes):
            return None
        return replace(geo, kind="flat", extent=tuple(sizes))

    if name == "Dense":
        if geo.kind == "grid":
            return geo if _has_channels(shape, geo) else None
        seen = geo.collapse()
        return replace(seen, whole=seen.whole or _spans(seen.fields, extent))

    if name == "Embedding":
        return geo if geo.kind == "grid" and len(shape) == len(geo.fields) else None

    if name == "Reshape":
        if out_shape == shape:
            return geo
        # SE blocks reshape a pooled vector to (1, 1, C) to broadcast it: all elements see one field
        to_grid = len(out_shape) == len(geo.fields) + 1 and all(n == 1 for n in out_shape[:-1])
        return replace(geo, kind="grid", extent=()) if to_grid and _one_position(geo, shape) else None
    return None


def _macs(op, kinds: set[str], in_shape: list | None, out_shape: list | None) -> int | None:
    """Multiply-accumulates of one call, None when unknown."""

    def size(tensor_attr: str) -> int:
        return math.prod(getattr(op, tensor_attr).shape)

    positions_out = None if not out_shape or None in out_shape[:-1] else math.prod(out_shape[:-1])
    positions_in = None if not in_shape or None in in_shape[:-1] else math.prod(in_shape[:-1])
    if getattr(op, "data_format", "channels_last") != "channels_last":
        return None
    if "BaseSeparableConv" in kinds:
        return None if positions_out is None else positions_out * (
            size("depthwise_kernel") + size("pointwise_kernel")
        )
    if kinds & {"BaseConv", "BaseDepthwiseConv"}:  # kernel: window × (in / groups or 1) × out
        return None if positions_out is None else positions_out * size("kernel")
    if "BaseConvTranspose" in kinds:
        return None if positions_in is None else positions_in * size("kernel")
    if type(op).__name__ == "Dense":
        return None if positions_in is None else positions_in * size("kernel")
    if kinds & _NO_MACS:
        return 0
    return None


class _Walker:
    def __init__(self):
        self.rows: list[LayerInfo] = []
        self._seen: set[int] = set()
        self._plumbing: set[int] = set()  # tensors of mask/index operations
        self.grids: dict[str, list[list[int | float]]] = {}  # layer -> [rf, jump, start] per axis, on a grid
        self.extent: tuple[int, ...] | None = None  # the model input's spatial size, when one and known

    def model(self, model, geos: list, prefix: str = "") -> list:
        """Walk a (nested) model; return the geometry of its outputs."""
        graph = getattr(model, "_functional", None) if "Sequential" in _kinds(model) else model
        if graph is None or not hasattr(graph, "_nodes_by_depth"):
            raise SummaryError(
                f"model '{model.name}' is not built; build it first, e.g. model.build((None, 28, 28, 1))"
            )
        state = {id(t): g for t, g in zip(graph.inputs, geos)}
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.is_input or node.operation is None:
                    continue
                ins = [t for t in node.input_tensors if id(t) not in self._plumbing]
                if _is_plumbing(node.operation, node.outputs):
                    self._plumbing.update(id(t) for t in node.outputs)
                    continue
                outs = self.node(node.operation, ins, list(node.outputs), [state.get(id(t)) for t in ins], prefix)
                state.update({id(t): g for t, g in zip(node.outputs, outs)})
        return [state.get(id(t)) for t in graph.outputs]

    def node(self, op, ins: list, outs: list, geos: list, prefix: str) -> list:
        kinds = _kinds(op)
        if "Model" in kinds or "Functional" in kinds:
            return self.model(op, geos, prefix=f"{prefix}{op.name}/")
        in_shapes = [_shape(t) for t in ins]
        out_shapes = [_shape(t) for t in outs]
        out_shape = out_shapes[0] if len(out_shapes) == 1 else out_shapes
        single_in = in_shapes[0] if len(in_shapes) == 1 else None
        single_out = out_shapes[0] if len(out_shapes) == 1 else None
        geo = _propagate(op, kinds, geos, in_shapes, single_out, self.extent) if single_out is not None else None

        params = 0
        if "Layer" in kinds and id(op) not in self._seen:
            self._seen.add(id(op))
            params = int(op.count_params()) if op.built else 0
        macs = _macs(op, kinds, single_in, single_out)
        window = window_of(op)
        row = LayerInfo(
            name=f"{prefix}{op.name}",
            type=type(op).__name__,
            output_shape=out_shape,
            params=params,
            macs=macs,
        )
        if window is not None:
            row.kernel, row.strides = list(window.kernel), list(window.strides)
            row.padding, row.dilation = window.padding, list(window.dilation)
        if geo is not None:
            if geo.kind == "grid":
                self.grids[row.name] = [[_number(f.rf), _number(f.jump), _number(f.start)] for f in geo.fields]
            row.receptive_field = [_number(f.rf) for f in geo.fields]
            row.jump = [_number(f.jump) for f in geo.fields] if geo.kind == "grid" else None
            row.global_context = geo.context
        self.rows.append(row)
        return [geo] * len(outs)


def summarize(model) -> ModelSummary:
    """Analyse a built Keras model layer by layer.

    Args:
        model: a built `keras.Model` (Sequential or Functional, nested models allowed).

    Returns:
        A `ModelSummary`; `.to_dict()` gives the `zoo summary --json` document.

    Raises:
        SummaryError: the model is not built or has no inputs.
    """
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise SummaryError(
            f"model '{getattr(model, 'name', model)}' is not built; "
            "build it first, e.g. model.build((None, 28, 28, 1)), or give it a keras.Input"
        )
    walker = _Walker()
    geos = [_input_geo(t) for t in model.inputs]
    if len(geos) == 1 and geos[0] is not None:
        sizes = _spatial(_shape(model.inputs[0]), geos[0])
        walker.extent = None if None in sizes else tuple(sizes)
    walker.model(model, geos)
    shapes = [_shape(t) for t in model.inputs]
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    params = int(model.count_params())
    macs = [row.macs for row in walker.rows]
    return ModelSummary(
        model=model.name,
        input_shape=shapes[0] if len(shapes) == 1 else shapes,
        params=params,
        trainable_params=int(trainable),
        non_trainable_params=params - int(trainable),
        macs=None if None in macs else sum(macs),
        layers=walker.rows,
        fields=walker.grids,
    )


def shape_text(dims) -> str:
    """A shape as people write it: [28, 28, 6] -> '28×28×6'; None for an unknown size -> '?';
    several outputs -> '28×28×6, 10'; no shape -> '-'."""
    if dims is None:
        return "-"
    if dims and isinstance(dims[0], list):
        return ", ".join(shape_text(s) for s in dims)
    return "×".join("?" if d is None else str(d) for d in dims) or "scalar"


def weights_kb(params: int) -> dict[str, float]:
    """Weight storage at float32 (4 bytes) and int8 (1 byte) per parameter, in KB."""
    return {"float32": round(params * 4 / 1024, 1), "int8": round(params / 1024, 1)}


def model_table(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per registry model matching `pattern`, built with its defaults: the data of `zoo list`."""
    from zoo.models.pretrained import shipped
    from zoo.models.registry import build_model, get_entry, list_models

    rows = []
    for name in list_models(pattern):
        entry = get_entry(name)
        counts = entry.counts
        if counts is None:  # a model registered without its counts: build it and count
            report = summarize(build_model(name))
            counts = {"input_shape": report.input_shape, "params": report.params, "macs": report.macs}
        rows.append({
            "name": name,
            "aliases": list(entry.aliases),
            "task": entry.task,
            "input_shape": list(counts["input_shape"]),
            "num_classes": entry.defaults.get("num_classes"),
            "params": counts["params"],
            "macs": counts["macs"],
            "weights_kb": weights_kb(counts["params"]),
            "dataset": entry.dataset,
            "reference": entry.reference,
            "pretrained": [_pretrained_row(weights) for weights in shipped(name)],
        })
    return rows


def _pretrained_row(weights) -> dict:
    card = weights.card
    return {"name": weights.name, "tag": weights.tag, "dataset": card.dataset_spec,
            "test_accuracy": card.test_accuracy, "test_ece": card.test_ece,
            "kb": round(weights.weights_file.stat().st_size / 1024, 1)}
