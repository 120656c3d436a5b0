"""Deployment building blocks: ONNX export checked in onnxruntime, and Hub model cards (`tailor export` uses them)."""
