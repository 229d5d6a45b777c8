"""W&B sweep parameters with the exact semantics of W&B's open-source engine (`sweeps` 0.2).

Why this exists: an offline runner must give every parameter the distribution, defaults, rounding
and grid W&B's server gives it, or "W&B-compatible" sweeps would quietly search another space.
Every value here is a function of one number u in [0, 1) (`WandbParam.from_unit`), the engine's own
inverse CDF (sweeps/params.py `HyperParameter.ppf`), so any sampler that proposes unit-cube points
(random, Sobol, TPE on [0, 1)) searches exactly what W&B's random method would; `to_unit` is the
way back (`HyperParameter.cdf`). Engine facts this module reproduces, checked against its source:

- distribution inference follows config/schema.json's `parameter.anyOf`: `value` -> constant,
  `values` -> categorical, `values` + `probabilities` -> categorical_w_probabilities, min/max both
  Python ints -> int_uniform, otherwise -> uniform; an explicit int_uniform needs int bounds.
- defaults come from schema.json: `q` is 1.0, a *float*, so q_* values are floats unless the config
  writes an int `q` (then they are ints: `isinstance(q, int)` in params.py); mu 0, sigma 1, a 1, b 1.
- quantised values are `np.round(x / q) * q` (half to even); int_uniform includes max.
- log_uniform / inv_log_uniform / q_log_uniform take natural-log exponents as bounds (deprecated:
  the engine's validation rejects them at the top level); inv_log_uniform(min, max) is exp(-U(min,
  max)); inv_log_uniform_values(min, max) is, point for point, log_uniform_values(min, max).
- grid (grid_search.py) accepts constant, categorical, int_uniform (range(min, max + 1)) and
  q_uniform (np.arange(min, max, q), so max itself is left out); choices whose YAML dumps match
  (dicts in any key order) count once; the product runs over parameters sorted by name, recursively.
- nested parameters (`parameters:` inside a parameter) reach wandb.config as nested dicts, each
  top-level key wrapped once: {"a": {"value": {"b": 1}}} (params.py `HyperParameterSet.to_config`).

Deliberate differences, all on sets of measure zero or configs the engine turns into NaN: the engine
maps u exactly 0 to min - 1 (int_uniform) or the last choice (categorical), and u past a probability
sum that rounds below 1 to the first choice; here u = 0 is min / the first choice, the last choice
with positive probability absorbs rounding, and categorical/int intervals are [k/n, (k+1)/n) rather
than (k/n, (k+1)/n]. sigma, a and b must be > 0 (the schema allows 0, which gives NaN), probabilities
must match the values and sum to 1 (the engine checks this only for top-level parameters), and u for
the unbounded normal kinds is clamped inside (0, 1) so values stay finite.
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

ParamPath = tuple[str, ...]
Kind = Literal["constant", "categorical", "int", "float"]

# schema.json `parameters.propertyNames`: names W&B accepts at every nesting level.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# Distribution -> (required keys, optional keys with the schema's defaults). `distribution` is always allowed.
_SCHEMAS: dict[str, tuple[frozenset[str], dict[str, Any]]] = {
    "constant": (frozenset({"value"}), {}),
    "categorical": (frozenset({"values"}), {}),
    "categorical_w_probabilities": (frozenset({"values", "probabilities"}), {}),
    "int_uniform": (frozenset({"min", "max"}), {}),
    "uniform": (frozenset({"min", "max"}), {}),
    "q_uniform": (frozenset({"min", "max"}), {"q": 1.0}),
    "log_uniform": (frozenset({"min", "max"}), {}),
    "inv_log_uniform": (frozenset({"min", "max"}), {}),
    "q_log_uniform": (frozenset({"min", "max"}), {"q": 1.0}),
    "log_uniform_values": (frozenset({"min", "max"}), {}),
    "inv_log_uniform_values": (frozenset({"min", "max"}), {}),
    "q_log_uniform_values": (frozenset({"min", "max"}), {"q": 1.0}),
    "normal": (frozenset(), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": (frozenset(), {"mu": 0, "sigma": 1, "q": 1.0}),
    "log_normal": (frozenset(), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": (frozenset(), {"mu": 0, "sigma": 1, "q": 1.0}),
    "beta": (frozenset(), {"a": 1, "b": 1}),
    "q_beta": (frozenset(), {"a": 1, "b": 1, "q": 1.0}),
}
DISTRIBUTIONS: tuple[str, ...] = tuple(_SCHEMAS)
DEPRECATED = frozenset({"log_uniform", "inv_log_uniform", "q_log_uniform"})  # bounds are log exponents
GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")  # grid_search.py's allow-list
_UNBOUNDED = frozenset({"normal", "q_normal", "log_normal", "q_log_normal"})
_U_LOW, _U_HIGH = float(np.nextafter(0.0, 1.0)), float(np.nextafter(1.0, 0.0))


def _where(path: ParamPath) -> str:
    return ".".join(path) or "<parameter>"


def _number(path: ParamPath, key: str, x: Any, *, integer: bool = False) -> int | float:
    """A finite JSON number as a plain Python int or float (bool is not a number to JSON schema)."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    if isinstance(x, (float, np.floating)) and not integer and math.isfinite(x):
        return float(x)
    wanted = "an integer" if integer else "a finite number"
    raise ValueError(f"{_where(path)}: {key} must be {wanted}, got {x!r}")


def _infer(path: ParamPath, spec: Mapping[str, Any]) -> str:
    """The distribution W&B's schema picks for a spec that names none."""
    keys = set(spec)
    if keys == {"value"}:
        return "constant"
    if keys == {"values"}:
        return "categorical"
    if keys == {"values", "probabilities"}:
        return "categorical_w_probabilities"
    if keys == {"min", "max"}:
        ints = all(isinstance(spec[k], (int, np.integer)) and not isinstance(spec[k], bool) for k in keys)
        return "int_uniform" if ints else "uniform"
    raise ValueError(f"{_where(path)}: cannot tell the distribution of {dict(spec)!r}; give value, values "
                     "(+ probabilities), min/max, or a distribution")


def _quantize(x: Any, q: float) -> int | float:
    """params.py's rounding: np.round(x / q) * q, cast to int when q is an int."""
    v = np.round(x / q) * q
    return int(v) if isinstance(q, int) else float(v)


def _canonical(v: Any) -> Any:
    """A hashable key equal for two values exactly when the engine's yaml_hash (grid_search.py) is."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return (type(v).__name__, v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else repr(v))
    if isinstance(v, Mapping):
        return ("dict", tuple(sorted((_canonical(k), _canonical(x)) for k, x in v.items())))
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, tuple(_canonical(x) for x in v))
    return ("object", type(v).__qualname__, repr(v))


def _dedupe(values: list[Any]) -> list[Any]:
    """Choices in first-seen order, one per YAML identity; like the engine, the last duplicate is the one kept."""
    last: dict[Any, Any] = {}
    for v in values:
        last[_canonical(v)] = v
    return list(last.values())


@dataclass(frozen=True)
class WandbParam:
    """One leaf parameter of a W&B sweep, filled with the engine's defaults (build it with `from_spec`)."""

    path: ParamPath
    distribution: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    a: float | None = None
    b: float | None = None

    @classmethod
    def from_spec(cls, path: ParamPath | str, spec: Mapping[str, Any]) -> WandbParam:
        """Validate one leaf spec as W&B's schema does, infer its distribution and fill its defaults."""
        path = (path,) if isinstance(path, str) else tuple(path)
        if not isinstance(spec, Mapping):
            raise ValueError(f"{_where(path)}: a parameter must be a mapping, got {spec!r}")
        if "parameters" in spec:
            raise ValueError(f"{_where(path)}: nested parameters are not a leaf; use flatten()")
        dist = spec.get("distribution")
        if dist is None:
            dist = _infer(path, spec)
        if dist not in _SCHEMAS:
            raise ValueError(f"{_where(path)}: unknown distribution {dist!r}; W&B knows {', '.join(_SCHEMAS)}")
        required, defaults = _SCHEMAS[dist]
        keys = set(spec) - {"distribution"}
        if missing := required - keys:
            raise ValueError(f"{_where(path)}: {dist} needs {', '.join(sorted(missing))}")
        if extra := keys - required - set(defaults):
            raise ValueError(f"{_where(path)}: {dist} does not take {', '.join(sorted(extra))}")
        filled = {**defaults, **{k: spec[k] for k in keys}}
        fields: dict[str, Any] = {}
        if dist == "constant":
            fields["value"] = filled["value"]
        if "values" in filled:
            values = filled["values"]
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"{_where(path)}: values must be a non-empty list, got {values!r}")
            fields["values"] = tuple(values)
        if "probabilities" in filled:
            probs = filled["probabilities"]
            if not isinstance(probs, (list, tuple)) or len(probs) != len(fields["values"]):
                raise ValueError(f"{_where(path)}: probabilities {probs!r} must be a list as long as values")
            floats = tuple(float(_number(path, "probabilities", p)) for p in probs)
            if min(floats) < 0 or not np.isclose(sum(floats), 1.0):
                raise ValueError(f"{_where(path)}: probabilities {list(probs)} must be >= 0 and sum to 1")
            fields["probabilities"] = floats
        for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
            if key in filled:
                fields[key] = _number(path, key, filled[key], integer=dist == "int_uniform" and key in ("min", "max"))
        if "min" in fields and fields["min"] >= fields["max"]:
            raise ValueError(f"{_where(path)}: min {fields['min']} is not less than max {fields['max']}")
        if dist.endswith("_values") and fields["min"] <= 0:
            raise ValueError(f"{_where(path)}: {dist} needs min > 0, got {fields['min']}")
        for key in ("q", "sigma", "a", "b"):
            if key in fields and fields[key] <= 0:
                raise ValueError(f"{_where(path)}: {key} must be > 0, got {fields[key]}")
        return cls(path=path, distribution=dist, **fields)

    @property
    def kind(self) -> Kind:
        """What values look like: q_* are ints exactly when q is an int, as in the engine."""
        if self.distribution == "constant":
            return "constant"
        if self.distribution.startswith("categorical"):
            return "categorical"
        if self.distribution == "int_uniform" or isinstance(self.q, int):
            return "int"
        return "float"

    @property
    def deprecated(self) -> bool:
        """log_uniform, inv_log_uniform, q_log_uniform: W&B's validation rejects them in new sweeps."""
        return self.distribution in DEPRECATED

    def _num(self, key: str) -> float:
        x = getattr(self, key)
        if x is None:  # only for hand-built instances; from_spec always fills it
            raise ValueError(f"{_where(self.path)}: {self.distribution} has no {key}")
        return float(x) if key != "q" else x  # q keeps its int-ness: it decides the value type

    def _log_bounds(self) -> tuple[float, float]:
        """The natural-log bounds of the log-uniform kinds (exponents as given for the deprecated ones)."""
        lo, hi = self._num("min"), self._num("max")
        if self.distribution.endswith("_values"):
            return float(np.log(lo)), float(np.log(hi))
        return lo, hi

    def from_unit(self, u: float) -> Any:
        """The value at quantile u in [0, 1): the engine's ppf, so u ~ U(0, 1) samples W&B's random method."""
        u = float(u)
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"{_where(self.path)}: u must lie in [0, 1], got {u}")
        d = self.distribution
        if d == "constant":
            return copy.deepcopy(self.value)
        if d == "categorical":
            n = len(self.values)
            return copy.deepcopy(self.values[min(math.floor(u * n), n - 1)])
        if d == "categorical_w_probabilities":
            i = int(np.searchsorted(np.cumsum(self.probabilities), u, side="right"))
            if i >= len(self.values):  # u past a sum rounded below 1: the last choice that can occur
                i = max(j for j, p in enumerate(self.probabilities) if p > 0)
            return copy.deepcopy(self.values[i])
        if d == "int_uniform":
            first, n = int(self._num("min")), int(self._num("max")) - int(self._num("min")) + 1
            return first + min(math.floor(u * n), n - 1)
        if d in ("uniform", "q_uniform"):
            lo, hi = self._num("min"), self._num("max")
            x = u * (hi - lo) + lo  # scipy.stats.uniform.ppf, term for term
            return _quantize(x, self._num("q")) if d == "q_uniform" else x
        if "log_uniform" in d:
            lo, hi = self._log_bounds()
            if d.startswith("inv_"):
                # params.py inv_log_uniform_v1_ppf; the _values form passes (-log max, -log min).
                lo, hi = (-hi, -lo) if d.endswith("_values") else (lo, hi)
                return float(np.exp(-((1 - u) * (hi - lo) + lo)))
            x = np.exp(u * (hi - lo) + lo)
            return _quantize(x, self._num("q")) if d.startswith("q_") else float(x)
        if d in _UNBOUNDED:
            u = min(max(u, _U_LOW), _U_HIGH)
            if d.endswith("log_normal"):
                x = stats.lognorm.ppf(u, s=self._num("sigma"), scale=np.exp(self._num("mu")))
            else:
                x = stats.norm.ppf(u, loc=self._num("mu"), scale=self._num("sigma"))
            return _quantize(x, self._num("q")) if d.startswith("q_") else float(x)
        if d in ("beta", "q_beta"):
            x = stats.beta.ppf(u, a=self._num("a"), b=self._num("b"))
            return _quantize(x, self._num("q")) if d == "q_beta" else float(x)
        raise ValueError(f"{_where(self.path)}: unsupported distribution {d!r}")

    def to_unit(self, value: Any) -> float:
        """Where a known value sits in [0, 1]: the engine's cdf for continuous kinds (q_* use the unrounded
        cdf); for choices and ints the middle of the value's interval, so from_unit gives the value back."""
        d = self.distribution
        if d == "constant":
            return 0.0  # the engine's cdf of a constant; constants are not searched
        if d.startswith("categorical"):
            # the engine's value_to_idx compares with ==
            i = next((j for j, v in enumerate(self.values) if v == value), None)
            if i is None:
                raise ValueError(f"{_where(self.path)}: {value!r} is not one of {list(self.values)}")
            if d == "categorical":
                return (i + 0.5) / len(self.values)
            bounds = np.concatenate(([0.0], np.cumsum(self.probabilities)))
            return float(bounds[i] + bounds[i + 1]) / 2
        x = float(value)
        if d == "int_uniform":
            first, last = int(self._num("min")), int(self._num("max"))
            if x != int(x) or not first <= x <= last:
                raise ValueError(f"{_where(self.path)}: {value!r} is not an integer in [{first}, {last}]")
            return (x - first + 0.5) / (last - first + 1)
        if d in ("uniform", "q_uniform"):
            lo, hi = self._num("min"), self._num("max")
            cdf = (x - lo) / (hi - lo)
        elif "log_uniform" in d:
            lo, hi = self._log_bounds()
            if x <= 0:
                return 0.0
            cdf = (float(np.log(x)) - lo) / (hi - lo)
            if d == "inv_log_uniform":  # values are exp(-U(min, max)), so the exponent runs the other way
                cdf = 1 - (-float(np.log(x)) - lo) / (hi - lo)
        elif d in ("normal", "q_normal"):
            cdf = float(stats.norm.cdf(x, loc=self._num("mu"), scale=self._num("sigma")))
        elif d in ("log_normal", "q_log_normal"):
            cdf = float(stats.lognorm.cdf(x, s=self._num("sigma"), scale=np.exp(self._num("mu"))))
        elif d in ("beta", "q_beta"):
            cdf = float(stats.beta.cdf(x, a=self._num("a"), b=self._num("b")))
        else:
            raise ValueError(f"{_where(self.path)}: unsupported distribution {d!r}")
        return float(np.clip(cdf, 0.0, 1.0))

    def grid_values(self) -> list[Any]:
        """The values W&B's grid search enumerates for this parameter, in its order (grid_search.py)."""
        d = self.distribution
        if d == "constant":
            return [copy.deepcopy(self.value)]
        if d == "categorical":
            return copy.deepcopy(_dedupe(list(self.values)))
        if d == "int_uniform":
            return list(range(int(self._num("min")), int(self._num("max")) + 1))
        if d == "q_uniform":
            assert self.min is not None and self.max is not None and self.q is not None
            return _dedupe(np.arange(self.min, self.max, self.q).tolist())
        raise ValueError(f"{_where(self.path)}: grid search cannot enumerate a {d} parameter; W&B's grid takes "
                         f"only {', '.join(GRID_DISTRIBUTIONS)} (no probabilities)")


def flatten(parameters: Mapping[str, Any]) -> dict[ParamPath, Mapping[str, Any]]:
    """A `parameters:` block's leaf specs keyed by path, nested `parameters:` at any depth, in the engine's
    order (names sorted at every level, as HyperParameterSet.from_config walks them)."""
    out: dict[ParamPath, Mapping[str, Any]] = {}

    def walk(block: Any, prefix: ParamPath) -> None:
        if not isinstance(block, Mapping) or not block:
            raise ValueError(f"{_where(prefix)}: parameters must be a non-empty mapping, got {block!r}")
        for name in block:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(f"{_where(prefix)}: {name!r} is not a W&B parameter name ({_NAME.pattern})")
        for name in sorted(block):
            path = (*prefix, name)
            spec = block[name]
            if not isinstance(spec, Mapping):
                raise ValueError(f"{_where(path)}: a parameter must be a mapping, got {spec!r}")
            if "parameters" in spec:
                if set(spec) != {"parameters"}:
                    raise ValueError(f"{_where(path)}: a nested parameter holds only `parameters:`")
                walk(spec["parameters"], path)
            else:
                out[path] = spec

    walk(parameters, ())
    return out


def nest(values: Mapping[ParamPath, Any]) -> dict[str, Any]:
    """Leaf values keyed by path as the nested dicts wandb.config holds (the inverse of flatten, for values)."""
    root: dict[str, Any] = {}
    leaves: set[ParamPath] = set()
    for path, value in values.items():
        if not path:
            raise ValueError("a parameter path cannot be empty")
        node = root
        for i, key in enumerate(path[:-1]):
            if path[: i + 1] in leaves:
                raise ValueError(f"{_where(path)}: {_where(path[: i + 1])} is both a value and a group")
            node = node.setdefault(key, {})
        if path[-1] in node:
            raise ValueError(f"{_where(path)}: is both a value and a group, or given twice")
        node[path[-1]] = value
        leaves.add(path)
    return root


def wandb_run_config(values: Mapping[ParamPath, Any]) -> dict[str, Any]:
    """The run config the engine hands a run: {"a": {"value": {"b": 1}}}, only the top level wrapped."""
    return {k: {"value": v} for k, v in copy.deepcopy(nest(values)).items()}


def leaf_params(parameters: Mapping[str, Any]) -> list[WandbParam]:
    """Every leaf of a `parameters:` block as a WandbParam, in the engine's order."""
    return [WandbParam.from_spec(path, spec) for path, spec in flatten(parameters).items()]


def grid_points(parameters: Mapping[str, Any]) -> list[dict[ParamPath, Any]]:
    """Every point of a grid sweep, in the order W&B's grid search proposes them (the product over the
    parameters sorted by name, duplicates once): raises ValueError for a parameter the grid cannot take."""
    leaves = leaf_params(parameters)
    axes = [p.grid_values() for p in leaves]
    return [{p.path: copy.deepcopy(v) for p, v in zip(leaves, combo, strict=True)}
            for combo in itertools.product(*axes)]
