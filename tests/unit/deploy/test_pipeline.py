"""deploy/pipeline.py's policy (what each caller writes and gates) and its one result, `Deployed`, whose keys
training_summary.json, comparison.json and result.json carry."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from dendrisweep.deploy import Deployed, Policy

KEYS = ["split", "samples", "torch_acc", "onnx_acc", "onnx_int8_acc", "tflite_acc", "tflite_int8_acc", "max_prob_diff",
        "tflite_max_prob_diff", "onnx_bytes", "onnx_int8_bytes", "tflite_bytes", "tflite_int8_bytes", "arena_bytes",
        "onnx_latency_ms", "onnx_int8_latency_ms", "tflite_latency_ms", "tflite_int8_latency_ms", "convert_seconds",
        "int8_tolerance_pp", "files"]


def test_each_caller_has_its_names_and_tolerance() -> None:
    block = Policy.block(1.5)
    assert block.files() == {"onnx": "model.onnx", "onnx_int8": "model_int8.onnx", "tflite": "model.tflite",
                             "tflite_int8": "model_quantized_int8_io.tflite"} and block.int8_tolerance_pp == 1.5
    assert "tflite_int8" not in Policy.block(1.5, ships_int8=False).files()  # convertInt8: false
    measure = Policy.measure()
    assert measure.files() == block.files() and measure.int8_tolerance_pp == 100.0  # measures, never gates int8
    regenerate = Policy.regenerate("dendritic", 5.0)
    assert regenerate.files() == {"onnx": "dendritic.onnx", "onnx_int8": "dendritic.int8.onnx",
                                  "tflite": "dendritic.tflite", "tflite_int8": "dendritic_quantized_int8_io.tflite"}
    assert regenerate.int8_tolerance_pp == 5.0 and regenerate.ships_int8


def test_the_deployed_record_keeps_its_keys_and_survives_its_file(tmp_path: Path) -> None:
    deployed = Deployed(split="test", samples=240, torch_acc=0.9, onnx_acc=0.9, onnx_int8_acc=0.8875, tflite_acc=0.9,
                        tflite_int8_acc=None, max_prob_diff=1e-7, tflite_max_prob_diff=2e-7, onnx_bytes=10_000,
                        onnx_int8_bytes=4_000, tflite_bytes=9_000, tflite_int8_bytes=None, arena_bytes=None,
                        onnx_latency_ms=0.1, onnx_int8_latency_ms=0.2, tflite_latency_ms=0.3,
                        tflite_int8_latency_ms=None, convert_seconds=12.5, int8_tolerance_pp=1.5,
                        files=Policy.block(1.5, ships_int8=False).files())
    assert [f.name for f in fields(Deployed)] == KEYS and list(deployed.as_dict()) == KEYS
    deployed.save(tmp_path)
    assert Deployed.load(tmp_path) == deployed
