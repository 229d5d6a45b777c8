"""dendrisweep: sweep, analyse and export dendritic (perforatedai) edge models."""

__version__ = "0.1.0"
