"""The Edge Impulse custom learning block (its Dockerfile and parameters.json live in the top-level
`edge_impulse/` folder).

- `runtime`: what the block reads (train_input.json) and writes (model.onnx, its int8 copy,
  training_summary.json) when Edge Impulse runs `train_trial.py --edge-impulse`;
- `packaging`: parameters.json generated from the registry, and a push-ready block folder
  (`python -m dendrisweep.edge_impulse parameters [--check] | package DIR`).
"""
from dendrisweep.edge_impulse.packaging import block_parameters, package
from dendrisweep.edge_impulse.runtime import read_info_file, write_block_output

__all__ = ["block_parameters", "package", "read_info_file", "write_block_output"]
