"""Deployment the way Edge Impulse runs it: ONNX -> TensorFlow -> TFLite float32 and int8, each proven.

`pipeline`: a trained model to verified files and one measured record (`deploy`, `deploy_checkpoint`);
`gate`: the deployment gate's conversion and decision; `guard`: graph patterns the converters
mishandle, refused at export; `tflite`: the conversion and LiteRT scoring, in child processes.
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Names": "dendrisweep.deploy.pipeline",
    "Deployed": "dendrisweep.deploy.pipeline",
    "deploy": "dendrisweep.deploy.pipeline",
    "deploy_checkpoint": "dendrisweep.deploy.pipeline",
})
