"""Read W&B offline run files (`wandb/offline-run-*/run-<id>.wandb`) without a server.

The file is W&B's record log: a 7-byte header (`:W&B`, magic 0xBEE1, version 0) followed by
LevelDB-log framed chunks in 32 KiB blocks, each chunk carrying (part of) a protobuf `Record`.
wandb 0.31 moved its own reader into the Go core, so this small reader is what lets tests and
the analysis see exactly what a run logged. A torn tail (a killed trial) ends the scan cleanly.
"""
from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<4sHB")
_CHUNK = struct.Struct("<IHB")
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_CRC = {kind: zlib.crc32(bytes([kind])) for kind in (_FULL, _FIRST, _MIDDLE, _LAST)}


@dataclass
class OfflineRun:
    """What a run logged: identity, config, per-step history, final summary and exit code."""

    path: Path
    run_id: str = ""
    project: str = ""
    group: str = ""
    sweep_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None  # None: the run never finished (still running, or killed)


def _payloads(data: bytes) -> Iterator[bytes]:
    """Reassemble record payloads from the block-framed chunks."""
    ident, magic, version = _HEADER.unpack_from(data, 0)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError("not a W&B run file")
    pos, parts = _HEADER.size, []
    while pos + _CHUNK.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # block trailer padding
            pos += room
            continue
        checksum, length, kind = _CHUNK.unpack_from(data, pos)
        start, end = pos + _CHUNK.size, pos + _CHUNK.size + length
        if kind not in _CRC or end > len(data):
            return  # zero padding at the end, or a torn write
        chunk = data[start:end]
        if zlib.crc32(chunk, _CRC[kind]) & 0xFFFFFFFF != checksum:
            return
        pos = end
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        else:
            parts.append(chunk)
            yield b"".join(parts)
            parts = []


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _items(items: Any) -> dict[str, Any]:
    return {_key(i): json.loads(i.value_json) for i in items}


def _config(items: Any) -> dict[str, Any]:
    """W&B stores config values as `{"value": v}`; keep the values, drop its bookkeeping."""
    values = {}
    for key, value in _items(items).items():
        if key != "_wandb":
            values[key] = value.get("value") if isinstance(value, dict) and "value" in value else value
    return values


def read_run_file(path: str | Path) -> OfflineRun:
    """Parse one `run-<id>.wandb` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    run = OfflineRun(path=path)
    record = pb.Record()  # type: ignore[attr-defined]
    for payload in _payloads(path.read_bytes()):
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.group, run.sweep_id = r.run_id, r.project, r.run_group, r.sweep_id
            run.config.update(_config(r.config.update))
        elif kind == "config":
            run.config.update(_config(record.config.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
            for item in record.summary.remove:
                run.summary.pop(_key(item), None)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def find_run_files(root: str | Path) -> list[Path]:
    """Every offline run file under a folder holding `wandb/` or the `wandb` folder itself."""
    root = Path(root)
    pattern = "offline-run-*/run-*.wandb"
    return sorted(root.glob(pattern)) + sorted(root.glob(f"wandb/{pattern}"))
