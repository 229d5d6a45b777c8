"""Random parameter sets over a sweep's search space, for benchmarks that fill studies."""
from __future__ import annotations

import math
import random
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution


def random_params(space: dict[str, BaseDistribution], rng: random.Random) -> dict[str, Any]:
    """One point drawn uniformly (log-uniformly for log floats) from every distribution."""
    params: dict[str, Any] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            params[name] = rng.choice(dist.choices)
        elif isinstance(dist, IntDistribution):
            params[name] = rng.randint(dist.low, dist.high)
        elif dist.log:  # type: ignore[attr-defined]
            params[name] = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))  # type: ignore[attr-defined]
        else:
            params[name] = rng.uniform(dist.low, dist.high)  # type: ignore[attr-defined]
    return params
