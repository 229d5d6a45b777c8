"""Data for a trial: train / validation / test splits, for either task.

Public surface: `load_dataset` (a config's data, checked and split), `Dataset`, `DataShape`,
`LabelledArrays`. Sources: `npy_splits` (Edge Impulse's X/Y_split_*.npy folder), `synthetic` (the
built-in keyword set), `spoken` (the offline spoken-keyword set), `images` (MobileNet's data).
"""
from dendrisweep.data.dataset import COEFFICIENTS, Dataset, DataShape, LabelledArrays, hold_out
from dendrisweep.data.load import load_dataset, resolve_data

__all__ = ["COEFFICIENTS", "DataShape", "Dataset", "LabelledArrays", "hold_out", "load_dataset", "resolve_data"]
