"""W&B's open-source sweep engine (the `sweeps` package its server runs): its schema checks sweep
files (spec.py) and its bayes method is one of our samplers (samplers.py)."""
from __future__ import annotations

import warnings
from typing import Any


def import_sweeps() -> Any:
    """W&B's `sweeps` package, without the pydantic-v1 deprecation noise it prints on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps
