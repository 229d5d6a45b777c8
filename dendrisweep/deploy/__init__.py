"""Deployment the way Edge Impulse runs it: ONNX -> TensorFlow -> TFLite float32 and int8.

`guard`: graph patterns the converters mishandle, refused at export.
"""
