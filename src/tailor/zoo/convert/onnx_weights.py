"""Recover a PyTorch state dict from an ONNX export of a Hugging Face model.

Named initializers keep their module paths. The exporter turns each ``nn.Linear`` into an anonymous
``MatMul`` (weight stored as ``(in, out)``, named ``onnx::MatMul_*``) followed by an ``Add`` of the
named bias, so each anonymous weight takes the bias's name (``...bias`` -> ``...weight``) and is
transposed back to ``(out, in)``.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """All initializers of the graph by name."""
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def linear_weights(model: onnx.ModelProto, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Anonymous MatMul weights keyed by the name their ``nn.Linear`` weight had, as ``(out, in)``."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or not node.input[1].startswith("onnx::MatMul"):
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [i for n in adds for i in n.input if i in arrays and i.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"cannot name MatMul weight {node.input[1]}: following biases {biases}")
        weights[biases[0].removesuffix(".bias") + ".weight"] = arrays[node.input[1]].T
    return weights


def state_dict(model: onnx.ModelProto, prefix: str) -> dict[str, torch.Tensor]:
    """Named and recovered Linear weights under ``prefix``, with the prefix stripped."""
    arrays = initializers(model)
    named = {**arrays, **linear_weights(model, arrays)}
    return {
        key.removeprefix(prefix): torch.from_numpy(np.array(value))  # a writable copy
        for key, value in named.items()
        if key.startswith(prefix)
    }
