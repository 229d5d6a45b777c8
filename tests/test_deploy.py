"""Deployment: exported graphs every converter handles (deploy/guard.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from dendrisweep.deploy.guard import check_convertible, problems
from dendrisweep.errors import ExportError
from dendrisweep.export import export_onnx, onnx_probabilities, torch_probabilities
from dendrisweep.models.kws import KeywordSpottingNet

ODD_FRAMES = 49  # not Edge Impulse's 50: every pool sees an odd length somewhere


def _with_ceil_mode_pools(net: KeywordSpottingNet) -> KeywordSpottingNet:
    """The network as it was before: `MaxPool1d(2, ceil_mode=True)` for Keras' padding="same"."""
    net.features = nn.Sequential(*[nn.MaxPool1d(2, ceil_mode=True) if isinstance(m, (nn.MaxPool1d, nn.Sequential))
                                   else m for m in net.features])
    return net


def test_the_keyword_network_exports_without_ceil_mode_and_scores_the_same(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = KeywordSpottingNet(ODD_FRAMES, 13, 4, conv_layers=3).eval()
    old = _with_ceil_mode_pools(KeywordSpottingNet(ODD_FRAMES, 13, 4, conv_layers=3)).eval()
    old.load_state_dict(net.state_dict())  # parameter-free change: old checkpoints still load
    x = torch.randn(32, ODD_FRAMES * 13)
    assert torch.equal(net(x), old(x))  # exact, not approximately
    path = export_onnx(net, (ODD_FRAMES * 13,), tmp_path / "kws.onnx")
    graph = onnx.load(str(path)).graph
    pools = [n for n in graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 3 and not any(a.name == "ceil_mode" and a.i for n in pools for a in n.attribute)
    np.testing.assert_allclose(onnx_probabilities(path, x.numpy()), torch_probabilities(net, x.numpy()), atol=1e-6)


def test_a_ceil_mode_pool_put_back_is_refused_at_export(tmp_path: Path) -> None:
    old = _with_ceil_mode_pools(KeywordSpottingNet(ODD_FRAMES, 13, 4)).eval()
    with pytest.raises(ExportError, match=r"kws\.onnx would break the ONNX -> TFLite conversion.*ceil_mode=1"):
        export_onnx(old, (ODD_FRAMES * 13,), tmp_path / "kws.onnx")


def _graph_with(node: onnx.NodeProto, *initializers: onnx.TensorProto, shape: list[int | str]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=list(initializers)))


@pytest.mark.parametrize("value", [-np.inf, np.inf, -3.4028235e38, np.nan])
def test_a_pad_with_an_extreme_constant_is_refused(value: float) -> None:
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 0, 0, 0, 0, 1])
    constant = helper.make_tensor("value", TensorProto.FLOAT, [], [value])
    model = _graph_with(helper.make_node("Pad", ["input", "pads", "value"], ["output"], name="pad"),
                        pads, constant, shape=["batch", 8, 7])
    (problem,) = problems(model)
    assert problem.startswith("Pad node 'pad' pads with") and "collapses" in problem


def test_a_zero_pad_and_a_fixed_shape_pass_but_other_symbolic_dims_do_not(tmp_path: Path) -> None:
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 0, 0, 0, 0, 1])
    zero = helper.make_tensor("value", TensorProto.FLOAT, [], [0.0])
    pad = helper.make_node("Pad", ["input", "pads", "value"], ["output"], name="pad")
    assert problems(_graph_with(pad, pads, zero, shape=["batch", 8, 7])) == []
    dynamic = _graph_with(pad, pads, zero, shape=["batch", 8, "frames"])
    onnx.save(dynamic, str(tmp_path / "dynamic.onnx"))
    with pytest.raises(ExportError, match=r"'input' has symbolic dimension\(s\) \[2\] besides the batch axis"):
        check_convertible(tmp_path / "dynamic.onnx")
