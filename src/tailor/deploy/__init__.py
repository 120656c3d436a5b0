"""Deployment outputs: ONNX exports checked in onnxruntime, and Hub model cards for export folders."""
