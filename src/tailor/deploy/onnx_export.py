"""Export a tailor model to ONNX with torch's exporter and check it in onnxruntime on the test split.

torch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) is used because the
dynamo exporter needs onnxscript, which the project does not depend on, and because the packed
student's :class:`~tailor.methods.kdqat.integer.IntegerLinear` declares its ``MatMulInteger`` node
through an autograd-function ``symbolic``. optimum's exporter is not used: its releases pin
transformers below the 5.x line this project runs on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_path

ONNX_FILE = "model.onnx"
OPSET = 17


class _Logits(nn.Module):
    """Positional inputs → logits, the signature the exporter traces."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).logits


def _dynamic_axes(names: list[str]) -> dict[str, dict[int, str]]:
    axes = {n: ({0: "batch"} if n == "pixel_values" else {0: "batch", 1: "sequence"}) for n in names}
    return {**axes, "logits": {0: "batch"}}


def export_onnx(
    model: nn.Module, example: dict[str, torch.Tensor], folder: str | Path, file_name: str = ONNX_FILE
) -> Path:
    """Write ``folder/file_name`` for a classifier taking ``example``'s inputs (dynamic batch/sequence)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(example)
    path = folder / file_name
    with torch.no_grad(), atomic_path(path) as tmp:
        # The wrapper itself must be in eval mode: the exporter restores the wrapper's own mode
        # afterwards, recursively, and a fresh module is in training mode (dropout on in `model`).
        torch.onnx.export(
            _Logits(model, names).eval(),
            tuple(example[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=_dynamic_axes(names),
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session (all graph optimisations on)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_onnx(path: str | Path, model: nn.Module, dataset, collator, batch_size: int = 64) -> dict:
    """Predictions of the onnxruntime session vs ``model`` on ``dataset`` (the task's test split)."""
    from ..engine.losses import model_inputs

    sess = session(path)
    wanted = {i.name for i in sess.get_inputs()}
    agree, diff, labels_right, n = 0, 0.0, 0, 0
    model.eval()
    for start in range(0, len(dataset), batch_size):
        batch = collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        inputs = model_inputs(batch)
        with torch.no_grad():
            ours = model(**inputs).logits.float().numpy()
        theirs = sess.run(["logits"], {k: v.numpy() for k, v in inputs.items() if k in wanted})[0]
        agree += int((ours.argmax(-1) == theirs.argmax(-1)).sum())
        labels_right += int((theirs.argmax(-1) == batch["labels"].numpy()).sum())
        diff = max(diff, float(np.abs(ours - theirs).max()))
        n += len(ours)
    return {
        "examples": n,
        "agreement_with_tailor": agree / n,
        "max_abs_logit_diff": diff,
        "onnx_test_accuracy": labels_right / n,
        "passed": agree == n,
    }


def op_counts(path: str | Path) -> dict[str, int]:
    """How many nodes of each type the graph has (e.g. ``MatMulInteger`` vs ``MatMul``)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
