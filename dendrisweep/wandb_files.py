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
    preempting: bool = False  # the run was marked preempting (run.mark_preempting(): W&B may requeue it)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # logged: name, type, aliases, files


def _check_header(data: bytes) -> None:
    if len(data) < _HEADER.size or _HEADER.unpack_from(data, 0) != (b":W&B", 0xBEE1, 0):
        raise ValueError("not a W&B run file")


def _payloads(data: bytes, start: int = _HEADER.size, base: int = 0) -> Iterator[tuple[bytes, int]]:
    """Reassemble record payloads from the block-framed chunks of `data` (which begins at file offset
    `base`), from file offset `start`; each with the file offset just past it. Stops at the first
    incomplete or torn chunk, so a file still being written is read up to its last whole record."""
    pos, parts = start, []
    while pos + _CHUNK.size <= base + len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # block trailer padding
            pos += room
            continue
        checksum, length, kind = _CHUNK.unpack_from(data, pos - base)
        begin, end = pos + _CHUNK.size, pos + _CHUNK.size + length
        if kind not in _CRC or end > base + len(data):
            return  # zero padding at the end, or a write not finished yet
        chunk = data[begin - base:end - base]
        if zlib.crc32(chunk, _CRC[kind]) & 0xFFFFFFFF != checksum:
            return
        pos = end
        if kind == _FULL:
            yield chunk, pos
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        else:
            parts.append(chunk)
            yield b"".join(parts), pos
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


def _apply(run: OfflineRun, payload: bytes, record: Any) -> dict[str, Any] | None:
    """Fold one record into `run`; returns the row when it is a history row."""
    record.ParseFromString(payload)
    kind = record.WhichOneof("record_type")
    if kind == "run":
        r = record.run
        run.run_id, run.project, run.group, run.sweep_id = r.run_id, r.project, r.run_group, r.sweep_id
        run.config.update(_config(r.config.update))
    elif kind == "config":
        run.config.update(_config(record.config.update))
    elif kind == "history":
        row = _items(record.history.item)
        run.history.append(row)
        return row
    elif kind == "summary":
        run.summary.update(_items(record.summary.update))
        for item in record.summary.remove:
            run.summary.pop(_key(item), None)
    elif kind == "exit":
        run.exit_code = record.exit.exit_code
    elif kind == "preempting":
        run.preempting = True
    elif kind == "artifact":
        a = record.artifact
        run.artifacts.append({"name": a.name, "type": a.type, "aliases": list(a.aliases),
                              "files": sorted(entry.path for entry in a.manifest.contents)})
    return None


def _record() -> Any:
    from wandb.proto import wandb_internal_pb2 as pb

    return pb.Record()  # type: ignore[attr-defined]


def read_run_file(path: str | Path) -> OfflineRun:
    """Parse one `run-<id>.wandb` file."""
    path = Path(path)
    data = path.read_bytes()
    _check_header(data)
    run, record = OfflineRun(path=path), _record()
    for payload, _ in _payloads(data):
        _apply(run, payload, record)
    return run


class RunFileFollower:
    """Reads a run's file while the run writes it: each `poll()` returns the history rows logged since
    the last one, and `run` holds everything so far (config, summary, exit code). This is how an agent
    sees what any program logs to W&B, as it logs it, without a server."""

    def __init__(self, wandb_dir: Path, run_id: str) -> None:
        self.wandb_dir, self.run_id = Path(wandb_dir), run_id
        self.path: Path | None = None
        self.run = OfflineRun(path=Path())
        self._offset = _HEADER.size
        self._record = _record()

    def _find(self) -> Path | None:
        # offline-run-<time>-<id> (offline) or run-<time>-<id> (online: W&B keeps the same log locally)
        found = sorted(self.wandb_dir.glob(f"*run-*-{self.run_id}/run-{self.run_id}.wandb"))
        return found[-1] if found else None

    def poll(self) -> list[dict[str, Any]]:
        if self.path is None:
            self.path = self._find()
            if self.path is None:
                return []
            self.run.path = self.path
        try:
            with self.path.open("rb") as handle:
                if self._offset == _HEADER.size:
                    _check_header(handle.read(_HEADER.size))
                handle.seek(self._offset)
                data = handle.read()
        except (OSError, ValueError):
            return []  # not there yet, or its header not yet written
        rows = []
        for payload, end in _payloads(data, self._offset, self._offset):
            row = _apply(self.run, payload, self._record)
            if row is not None:
                rows.append(row)
            self._offset = end
        return rows


def find_run_files(root: str | Path) -> list[Path]:
    """Every offline run file under a folder holding `wandb/` or the `wandb` folder itself."""
    root = Path(root)
    pattern = "offline-run-*/run-*.wandb"
    return sorted(root.glob(pattern)) + sorted(root.glob(f"wandb/{pattern}"))
