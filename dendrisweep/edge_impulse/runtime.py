"""The Edge Impulse block at run time: where Edge Impulse puts its inputs (the data, train_input.json),
and what the block hands back in --out-directory.

Edge Impulse runs train_trial.py itself (the Dockerfile's ENTRYPOINT adds `--edge-impulse`), which
deploys the best model through the deployment pipeline (deploy/pipeline.py) into the trial's deployed/
folder and hands over only what the deployment gate judged: `model.tflite` and
`model_quantized_int8_io.tflite` (the chain Edge Impulse would run itself, ONNX -> TensorFlow -> TFLite,
scored by LiteRT), with training_summary.json. With the TFLite files present Edge Impulse does not
convert, so what the device runs is what was checked here. `convertInt8: false` in train_input.json skips
the int8 file (`Policy.block`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dendrisweep.contract import TrialRecord
from dendrisweep.data.npy_splits import FILES, RUNNER_FILES, holds_project_data
from dendrisweep.deploy.pipeline import BLOCK_ONNX_FILE, BLOCK_TFLITE_INT8_FILE, Deployed, Policy, deploy
from dendrisweep.errors import UsageError

SUMMARY_FILE = "training_summary.json"
INFO_FILE = "train_input.json"
# Where Edge Impulse mounts the project's data in the block's container (edge-impulse-cli cli/block-runner.ts,
# `-v ei-block-data/<project>:/home`); the runner also collects the block's output from there. The variable
# moves it for a block run outside a container (the tests: a folder laid out as /home is).
HOME = Path("/home")
HOME_ENV = "DENDRISWEEP_EI_HOME"


@dataclass(frozen=True)
class BlockPaths:
    """Where a block run reads its data and info file, and where it leaves what Edge Impulse collects."""

    data: Path | None  # None: no project data anywhere (the run stops; never built-in data)
    out: Path
    info: Path | None


def block_home(env: Mapping[str, str] = os.environ) -> Path:
    """Where Edge Impulse mounts the project: /home, or HOME_ENV's folder."""
    return Path(env.get(HOME_ENV) or HOME)


def block_paths(data: Path | None, out: Path | None, info: Path | None,
                env: Mapping[str, str] = os.environ) -> BlockPaths:
    """The block's folders, as Edge Impulse lays them out when an argument is missing: Studio passes all three;
    `edge-impulse-blocks runner` passes none and mounts the project at /home, where it also collects the output.
    So: the data folder given, else /home when it holds project data; the info file given, else the data
    folder's train_input.json; the output folder given, else the data folder (else /home)."""
    home = block_home(env)
    if data is None and holds_project_data(home):
        data = home
    if info is None and data is not None and (data / INFO_FILE).is_file():
        info = data / INFO_FILE
    return BlockPaths(data, (out or data or home).absolute(), info)


def no_project_data(env: Mapping[str, str] = os.environ) -> UsageError:
    """The one line a block run without project data stops with."""
    return UsageError(f"no Edge Impulse project data: --data-directory was not given and {block_home(env)} holds "
                      f"neither {' + '.join(FILES[:2])} (Studio) nor {' + '.join(RUNNER_FILES)} (edge-impulse-blocks "
                      "runner); a block never trains on built-in data")


def read_info_file(path: Path | None) -> dict[str, Any]:
    """Edge Impulse's train_input.json (class names, mode); this block only does classification."""
    if path is None:
        return {}
    if not path.is_file():
        raise UsageError(f"info file {path} does not exist")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"info file {path}: not valid JSON ({exc.msg})") from None
    if info.get("mode", "classification") != "classification":
        raise UsageError(f"info file {path}: mode {info['mode']!r}; this block trains classifiers only")
    return info


def write_block_output(out_dir: Path, work_dir: Path, trained: Any, inference: Any, data: Any,
                       policy: Policy) -> Deployed:
    """Deploy into `work_dir` (the trial's deployed/ folder: every file of the chain, model.onnx among them,
    and deployed.json), then hand Edge Impulse exactly the files the gate judged: the two TFLite files
    (`Policy.shipped`), byte for byte, into `out_dir`. model.onnx stays out of it: Studio converts an ONNX
    file itself (onnx-tf), a chain nobody gated here, and Edge Impulse's docs do not say which file wins when
    both are there. A model file an earlier run left in `out_dir` is removed for the same reason."""
    with keep_alive("exporting, converting and checking the model"):
        deployed = deploy(trained, inference, data, work_dir, policy)
    deployed.save(work_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped = policy.shipped()
    for name in sorted(COLLECTED - set(shipped)):
        if (out_dir / name).is_file():
            (out_dir / name).unlink()
            print(f"removed {out_dir / name}: an earlier run's file, not judged by this run's gate", flush=True)
    for name in shipped:
        shutil.copyfile(work_dir / name, out_dir / name)
    return deployed


# The model files Edge Impulse collects from a learning block's output folder (Studio converts the first two
# itself, takes the TFLite files as they are).
COLLECTED = frozenset({BLOCK_ONNX_FILE, "saved_model.zip", "model.tflite", BLOCK_TFLITE_INT8_FILE})


def write_summary(out_dir: Path, record: TrialRecord, info: Mapping[str, Any], deployed: Deployed | None) -> None:
    """training_summary.json, with the trial's final record (its status, why it ended) and, when the model was
    deployed, the deployment's measurements; then the log's closing table of what was shipped."""
    summary = {"classes": info.get("classes"), "frame_layout": record.data.layout,
               "frame_layout_warning": record.data.layout_warning,
               **(deployed.as_dict() if deployed is not None else {}), **record.summary()}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    if deployed is not None:
        print(summary_table(summary), flush=True)  # the last thing in the log Studio shows


KEEP_ALIVE_SECONDS = 20.0  # Edge Impulse's own trainers print at least this often during long steps


@contextlib.contextmanager
def keep_alive(what: str, every: float = KEEP_ALIVE_SECONDS) -> Iterator[None]:
    """A line every `every` seconds while a long silent step runs, so Studio's log shows the job alive."""
    done, started = threading.Event(), time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            print(f"still {what} ({time.monotonic() - started:.0f} s)", flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def summary_table(summary: Mapping[str, Any]) -> str:
    """What the block hands Edge Impulse, as the log's closing table (one run, not a comparison)."""
    rows = [("accuracy, PyTorch", _pct(summary["torch_acc"])),
            ("accuracy, ONNX (onnxruntime)", _pct(summary["onnx_acc"])),
            ("accuracy, TFLite float32", _pct(summary["tflite_acc"])),
            ("accuracy, TFLite int8", _pct(summary["tflite_int8_acc"])),
            ("flash, int8 model (bytes)", summary["tflite_int8_bytes"] or "-"),
            ("flash, float32 model (bytes)", summary["tflite_bytes"]),
            ("RAM, tensor arena estimate (bytes)", summary["arena_bytes"] or "-"),
            ("latency per sample, int8 (ms)", "-" if summary["tflite_int8_latency_ms"] is None
             else f"{summary['tflite_int8_latency_ms']:.3f}"),
            ("parameters", summary.get("params")), ("dendrites added", summary.get("dendrites_added"))]
    if summary.get("frame_layout"):
        rows.append(("frame layout", summary["frame_layout"]))
    width = max(len(name) for name, _ in rows)
    lines = [f"Deployed model, {summary['split']} split ({summary['samples']} samples):"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    if summary.get("frame_layout_warning"):
        lines.append(f"  WARNING: {summary['frame_layout_warning']}")
    return "\n".join(lines)
