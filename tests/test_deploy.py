"""Deployment: exported graphs every converter handles (deploy/guard.py), and the deployment gate on the
chain Edge Impulse runs (deploy/pipeline.py, deploy/tflite.py, deploy/gate.py), with the real onnx2tf,
TensorFlow and LiteRT."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from dendrisweep.data import COEFFICIENTS, LabelledArrays, load_dataset
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.spoken import build
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.deploy import Policy, deploy, tflite
from dendrisweep.deploy.onnx_export import export_onnx, onnx_probabilities, torch_probabilities
from dendrisweep.deploy.pipeline import BLOCK_TFLITE_INT8_FILE
from dendrisweep.errors import ExportError
from dendrisweep.models.kws import KeywordSpottingNet
from dendrisweep.settings import defaults
from tests.helpers import ODD_FRAMES, assert_deployment_verified, block_trial, edge_impulse_call, odd_frames


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


# --- the deployment gate on the real chain (onnx2tf -> TFLite -> LiteRT), as the block runs it ---------------

@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline spoken-keyword set (real eSpeak NG audio as Edge Impulse MFCCs, 50 frames)."""
    folder = tmp_path_factory.mktemp("spoken")
    build(folder / "data", seed=0, per_class=300)  # the chain is under test here, not the data's size
    return folder


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Edge Impulse-layout keyword data with an odd frame count."""
    folder = tmp_path_factory.mktemp("odd")
    train, val, classes = make_keyword_data(3)
    write_directory(folder / "data", odd_frames(train), odd_frames(val), classes)
    return folder


BASELINE = {"dendrites": "0", "epochs": "8"}
DENDRITIC = {"epochs": "8", "switch-mode": "fixed", "fixed-switch-num": "3", "max-dendrites": "1"}


@pytest.mark.parametrize(("data", "params"), [
    # The default run converts a block in test_edge_impulse.py (as Edge Impulse's runner calls it) and a
    # dendritic and a baseline model in analysis regenerate (test_analysis.py); these three run in CI's slow pass.
    pytest.param("odd", BASELINE, marks=pytest.mark.slow),
    pytest.param("spoken", BASELINE, marks=pytest.mark.slow),
    pytest.param("spoken", DENDRITIC, marks=pytest.mark.slow),
], ids=["odd-frames-baseline", "spoken-baseline", "spoken-dendritic"])
def test_the_block_ships_tflite_files_that_keep_their_accuracy(data: str, params: dict[str, str],
                                                             request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder: Path = request.getfixturevalue(data)
    (tmp_path / "train_input.json").write_text(json.dumps({"mode": "classification", "convertInt8": True}))
    done = edge_impulse_call(folder / "data", tmp_path / "out", tmp_path / "train_input.json", params, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["dendrites_added"] == (0 if params is BASELINE else 1)
    config = json.loads((block_trial(tmp_path) / "result.json").read_text())["config"]
    assert_deployment_verified(tmp_path / "out", summary, load_dataset(folder / "data", config).test)


@pytest.mark.slow  # a whole block run for one switch (~20 s); the default run converts in two other tests
def test_convert_int8_false_in_train_input_skips_the_int8_file(odd: Path, tmp_path: Path) -> None:
    (tmp_path / "train_input.json").write_text(json.dumps({"mode": "classification", "convertInt8": False}))
    done = edge_impulse_call(odd / "data", tmp_path / "out", tmp_path / "train_input.json",
                             {"dendrites": "0", "epochs": "2"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert (tmp_path / "out" / "model.tflite").is_file() and not (tmp_path / "out" / BLOCK_TFLITE_INT8_FILE).exists()
    assert summary["tflite_int8_acc"] is None and summary["tflite_acc"] == summary["onnx_acc"]


@pytest.mark.slow  # the decision is unit-tested on canned probabilities (tests/unit/deploy/test_gate.py)
def test_a_broken_int8_model_fails_the_gate_with_its_numbers(odd: Path, tmp_path: Path) -> None:
    """Calibrated on constant rows (a validation split of zeros: the pipeline calibrates on validation), the
    int8 model clips every real input: the gate must say so."""
    data = load_dataset(odd / "data", defaults())
    torch.manual_seed(0)
    net = KeywordSpottingNet(ODD_FRAMES, COEFFICIENTS, data.num_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    zeros = replace(data, val=LabelledArrays(np.zeros_like(data.val.x), data.val.y))
    with pytest.raises(ExportError) as failure:
        deploy(net.eval(), net, zeros, tmp_path, Policy.regenerate("kws", 1.5))
    message = str(failure.value)
    assert message.startswith("kws.onnx: TFLite int8 scores 0.")
    assert f"on {len(data.test.y)} held-out samples" in message
    assert "pp below float32" in message
    # an int8 model this broken answers at chance, which the gate names before the tolerance (unit-tested)
    assert "the int8 model answers at chance or with one class for every sample" in message
    # (calibrated on real validation rows, models like it pass the same gate: the block tests above)


def test_an_interpreter_that_aborts_becomes_an_export_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"TFL3" + bytes(64))
    with pytest.raises(ExportError, match=r"LiteRT \(junk\.tflite\) failed \((exit code|killed by)"):
        tflite.score(junk, np.zeros((1, 4), dtype=np.float32))
