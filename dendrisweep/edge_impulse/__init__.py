"""The Edge Impulse custom learning block (its Dockerfile and parameters.json live in the top-level
`edge_impulse/` folder).

- `runtime`: what the block reads (train_input.json) and writes (model.onnx, its int8 copy,
  training_summary.json) when Edge Impulse runs `train_trial.py --edge-impulse`;
- `packaging`: parameters.json generated from the registry, and a push-ready block folder
  (`python -m dendrisweep.edge_impulse parameters [--check] | package DIR`).
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "read_info_file": "dendrisweep.edge_impulse.runtime",
    "write_block_output": "dendrisweep.edge_impulse.runtime",
    "block_parameters": "dendrisweep.edge_impulse.packaging",
    "package": "dendrisweep.edge_impulse.packaging",
})
