"""Public surfaces loaded on first use, so a package can name what users import without making
every import pay for torch, W&B or Optuna (`train_trial.py --print-config` answers in a blink)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """`__all__` and a module `__getattr__` (PEP 562) for `{name: "module.path"}` or
    `{name: "module.path:attribute"}` when the attribute is named differently."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = exports[name].partition(":")
        return getattr(import_module(module), attribute or name)

    return list(exports), __getattr__
