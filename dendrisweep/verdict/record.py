"""verdict.json as types: the `Verdict` `analysis verdict` writes and the report, regenerate and the
notebook read.

On disk the keys are the fields' names, nested as the types nest, with two exceptions marked on their
fields: a `flat` part writes its keys into its parent's object (the headline's numbers sit at the top
of verdict.json, an equal-size comparison's beside its statement), and an `omit` field is left out while
it is None (a compression claim that failed has no reductions). `schema_version` says which shape a
file has: a file newer than this code is refused in one line, not half read.
"""
from __future__ import annotations

import json
import types
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from dendrisweep.errors import UsageError

SCHEMA_VERSION = 1
FLAT = {"flat": True}  # field metadata: the part's keys go into its parent's object
OMIT = {"omit": True}  # field metadata: left out of the JSON while None


@dataclass(frozen=True)
class Estimate:
    """Dendritic against baseline on test accuracy: the difference, the error reduction from the same
    interval, P(dendritic > baseline), power for the declared effect (the headline's numbers)."""

    accuracy_diff_pp: float
    accuracy_diff_ci: list[float] | None
    p_value: float
    significant: bool
    population: str  # "task" (new seeds and new test examples) or "split" (this split's examples fixed)
    test_examples: int | None
    error_reduction: float | None
    error_reduction_ci: list[float] | None
    prob_dendritic_better: float
    prob_dendritic_better_ci: list[float]
    min_effect: float
    power: float
    detectable_error_reduction: float | None
    seeds_to_resolve: int | None


@dataclass(frozen=True)
class Comparison(Estimate):
    """An Estimate with what the secondary questions read too."""

    baseline: str  # the label of the config compared against
    spread: bool  # some seed varied: there is a spread to test against
    lower_bound_pp: float  # the one-sided 95 % bound of the difference
    one_sided_p: float  # p of the difference being at most 0

    def estimate(self) -> Estimate:
        return Estimate(**{f.name: getattr(self, f.name) for f in fields(Estimate)})


@dataclass(frozen=True)
class ConfigResult:
    """One re-trained config: why it was chosen, its replicates and what they measured."""

    label: str
    family: str
    trial: int | None
    run_id: str
    chosen_because: str
    config: dict[str, Any]
    sweep_seed: Any
    runs: list[str]
    n: int
    seed_values: list[int]
    fresh_seeds: bool
    test_acc_mean: float | None
    test_acc_sd: float | None
    test_acc_ci: list[float] | None
    test_acc_values: list[float]
    val_values: list[float]
    params: int | None
    macs: int | None
    dendrites_added: int | None
    sweep_value: float
    replicate_value_mean: float | None
    selection_gap: float | None
    failed_runs: list[str]


@dataclass(frozen=True)
class EqualSize:
    """The dendritic pick against the best baseline with at least as many parameters."""

    statement: str
    comparison: Comparison | None = field(default=None, metadata=FLAT)  # None: no such baseline was replicated
    baseline_config: ConfigResult | None = field(default=None, metadata=OMIT)
    same_as_headline: bool | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class Reduction:
    """What a compression claim that holds saves, and how close its accuracy stays."""

    params_reduction: float
    macs_reduction: float | None
    accuracy_diff_pp: float
    accuracy_diff_lower_bound_pp: float


@dataclass(frozen=True)
class Compression:
    """The smallest dendritic config shown not worse than the best baseline by more than `within_pp`."""

    within_pp: float
    config: ConfigResult | None  # None: none was shown
    tested: list[str]
    p_value: float | None
    statement: str
    reduction: Reduction | None = field(default=None, metadata=FLAT)
    holds: bool | None = field(default=None, metadata=OMIT)  # once Holm-adjusted with the equal-size claim


@dataclass(frozen=True)
class FrontPoint:
    """A re-trained member of a family's Pareto front (`--front`)."""

    label: str
    cost_axis: str
    cost: float
    n: int
    test_acc_mean: float | None
    test_acc_ci: list[float] | None


@dataclass(frozen=True)
class Scope:
    """What the answer is about: which dendrites, which data, how many samples decided it."""

    dendrites: str
    perforatedai: str | None
    data: str | None
    data_digests: list[str]
    splits: dict[str, int | None]


@dataclass(frozen=True)
class Schedule:
    """Declared looks (seed counts) and each one's O'Brien-Fleming level."""

    looks: list[int]
    levels: list[float]


@dataclass(frozen=True)
class Studies:
    """Where the trials came from and where the replicates went."""

    dendritic: str
    baseline: str
    replicates: str
    storage: str  # redacted: no password
    replicate_runs: str


@dataclass(frozen=True)
class Verdict:
    """Is the dendritic model better than the baseline, by how much, how sure, at what cost."""

    statement: str
    estimate: Estimate = field(metadata=FLAT)
    seeds: int
    seed_values: list[int]
    alpha: float
    exploratory: str | None
    method: str
    dendritic: ConfigResult
    baseline: ConfigResult
    equal_params: EqualSize | None
    compression: Compression
    fronts: dict[str, list[FrontPoint]] = field(default_factory=dict)
    configs: list[ConfigResult] = field(default_factory=list)
    # what the answer rests on, and how it was reached (set once the replicates ran)
    scope: Scope | None = None
    search_differences: list[str] = field(default_factory=list)
    warning: str | None = None
    looks: list[int] = field(default_factory=list)
    schedule: Schedule | None = None
    studies: Studies | None = None
    created: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """verdict.json's object (schema_version first)."""
        body = _encode(self)
        return {"schema_version": body.pop("schema_version"), **body}

    @classmethod
    def from_json(cls, raw: Any) -> Verdict:
        """A verdict from verdict.json's object; a UsageError names a schema this code does not know, or
        what the file lacks."""
        if not isinstance(raw, dict):
            raise UsageError("verdict.json: expected a JSON object")
        version = raw.get("schema_version", SCHEMA_VERSION)  # the first files had none: the same shape
        if version != SCHEMA_VERSION:
            raise UsageError(f"verdict.json has schema version {version!r}; this dendrisweep reads version "
                             f"{SCHEMA_VERSION} (a newer dendrisweep wrote it: upgrade to read it)")
        verdict: Verdict = _object(cls, raw)
        return verdict


def read_verdict(path: Path) -> Verdict:
    """The Verdict in a verdict.json file (a UsageError when it is not one)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    try:
        return Verdict.from_json(raw)
    except UsageError as error:
        raise UsageError(f"{path}: {error}") from None


# --- the mapping between the types and JSON ------------------------------------------------------

@cache
def _hints(cls: Any) -> dict[str, Any]:
    return get_type_hints(cls)


def _encode(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("flat"):
                out.update(_encode(item) if item is not None else {})
            elif not (f.metadata.get("omit") and item is None):
                out[f.name] = _encode(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(kind: Any, raw: Any) -> Any:
    """`raw` (parsed JSON) as `kind`: dataclasses field by field, lists and dicts item by item, anything else
    as it is."""
    if raw is None:
        return None
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return _decode(next(a for a in args if a is not type(None)), raw)
    if isinstance(kind, type) and is_dataclass(kind):
        return _object(kind, raw)
    if origin is list:
        return [_decode(args[0], v) for v in raw]
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in raw.items()}
    return raw


def _object(cls: Any, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise UsageError(f"verdict.json: expected an object for {cls.__name__}, got {raw!r:.60}")
    hints, values = _hints(cls), {}
    for f in fields(cls):
        if f.metadata.get("flat"):
            part = next(a for a in (*get_args(hints[f.name]), hints[f.name]) if isinstance(a, type) and is_dataclass(a))
            required = {p.name for p in fields(part) if p.default is MISSING and p.default_factory is MISSING}
            if required <= set(raw) or f.default is MISSING:  # a part that is there (or must be)
                values[f.name] = _object(part, raw)
        elif f.name in raw:
            values[f.name] = _decode(hints[f.name], raw[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise UsageError(f"verdict.json: {cls.__name__} lacks {f.name!r}")
    return cls(**values)
