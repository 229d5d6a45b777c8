"""Deployment the way Edge Impulse runs it: ONNX -> TensorFlow -> TFLite float32 and int8, each proven.

Read top to bottom: `pipeline` (a trained model and its data -> verified files and one measured record,
`Deployed`, under a `Policy`) -> `onnx_export` (the ONNX file and its parity gate; `guard`: graph
patterns the converters mishandle, refused at export) -> `tflite` (the conversion and LiteRT scoring,
in child processes) -> `gate` (the deployment gate's decision). Nothing here imports a trial: the
pipeline takes a model and data, whoever trained them.
"""
from dendrisweep.contract import DEPLOYED_DIR
from dendrisweep.deploy.pipeline import Deployed, Policy, deploy

__all__ = ["DEPLOYED_DIR", "Deployed", "Policy", "deploy"]
