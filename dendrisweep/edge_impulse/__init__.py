"""The Edge Impulse custom learning block (its Dockerfile, parameters.json and requirements.txt live in the
top-level `edge_impulse/` folder).

- `runtime`: where a block run finds what Edge Impulse hands it (the project data, train_input.json) and
  what it hands back when Edge Impulse runs `train_trial.py --edge-impulse` (the gated model.tflite and
  model_quantized_int8_io.tflite, training_summary.json);
- `packaging`: parameters.json generated from the registry, requirements.txt pinned from
  requirements.lock (the versions the checks run with), and a push-ready block folder
  (`python -m dendrisweep.edge_impulse parameters | requirements [--check] | package DIR`).
"""
from dendrisweep.edge_impulse.packaging import block_parameters, package
from dendrisweep.edge_impulse.runtime import block_paths, read_info_file, write_block_output, write_summary

__all__ = ["block_paths", "block_parameters", "package", "read_info_file", "write_block_output", "write_summary"]
