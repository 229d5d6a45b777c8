"""Graph patterns known to break the ONNX -> TensorFlow -> TFLite chain Edge Impulse runs, refused at export.

Each one makes the deployed model score far below the trained one, with no error from any converter:
- a pool with `ceil_mode=1`: converters rewrite it as an explicit pad filled with float32's lowest
  value (onnx2tf, onnx-tf), int8 calibration takes -3.4e38 into the tensor's range and every
  activation after it collapses to the zero point (a constant output, or an interpreter abort);
- a pad whose constant is infinite or near float32's limits: the same collapse, written directly;
- a symbolic dimension other than the batch axis: converters fix the batch to 1 and need every
  other size known to lay out the graph.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dendrisweep.errors import ExportError

FLOAT32_LIMIT = 3.0e38  # |value| at or above this is "float32's lowest/highest", not a real pad value
_POOLS = ("MaxPool", "AveragePool", "LpPool")


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
    return values


def _attribute(node: Any, name: str) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)


def problems(model: Any) -> list[str]:
    """Every converter-breaking pattern in an ONNX ModelProto, each as a short description."""
    graph = model.graph
    constants = _constants(graph)
    found: list[str] = []
    for node in graph.node:
        label = f"{node.op_type} node {node.name or node.output[0]!r}"
        if node.op_type in _POOLS and _attribute(node, "ceil_mode"):
            found.append(f"{label} uses ceil_mode=1 (converters pad it with -3.4e38; use an explicit zero pad "
                         "and an ordinary pool)")
        if node.op_type == "Pad":
            value = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else _attribute(node, "value")
            if value is not None and np.any(~np.isfinite(value) | (np.abs(value) >= FLOAT32_LIMIT)):
                found.append(f"{label} pads with {float(np.asarray(value).ravel()[0]):g} (int8 calibration "
                             "takes it into the range and the quantized model collapses)")
    for tensor in (*graph.input, *graph.output):
        dims = tensor.type.tensor_type.shape.dim
        dynamic = [i for i, d in enumerate(dims) if i > 0 and not d.HasField("dim_value")]
        if dynamic:
            found.append(f"{tensor.name!r} has symbolic dimension(s) {dynamic} besides the batch axis "
                         "(converters need every size but the batch)")
    return found


def check_convertible(path: Path) -> None:
    """Raise ExportError naming the file and every problem, or return quietly."""
    import onnx

    found = problems(onnx.load(str(path)))
    if found:
        raise ExportError(f"{path.name} would break the ONNX -> TFLite conversion Edge Impulse runs: "
                                 + "; ".join(found))
