"""dendrisweep: sweep, analyse and export dendritic (perforatedai) edge models.

The flow, top to bottom: a sweep YAML (`dendrisweep.sweep`) -> trials (`dendrisweep.trial`, on
`dendrisweep.data` and `dendrisweep.models`) -> the study store -> `analysis` -> exported models
(`dendrisweep.export`, `dendrisweep.edge_impulse`). Names users reach for are here too.
"""
from dendrisweep.lazy import lazy_exports

__version__ = "0.1.0"

_all, __getattr__ = lazy_exports(__name__, {
    "SETTINGS": "dendrisweep.settings",
    "resolve_config": "dendrisweep.config:resolve",
    "load_dataset": "dendrisweep.data",
    "build_model": "dendrisweep.models",
    "load_sweep": "dendrisweep.sweep.spec",
    "load_checkpoint": "dendrisweep.trial.checkpoint:load",
    "export_onnx": "dendrisweep.export",
    "UsageError": "dendrisweep.errors",
    "ExportError": "dendrisweep.errors",
})
__all__ = ["__version__", *_all]
