"""The KD-QAT objective: the paper's loss terms computed from one student and one teacher forward.

Intermediate tensors come from forward hooks (``tailor.engine.hooks.capture``) on the probes of the
kdqat attention function and on each layer's attention output; hidden states come from
``output_hidden_states``. The engine weights the returned terms with ``DistillConfig.term_weights``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...dist import unwrap
from ...engine.hooks import capture
from ...engine.losses import model_inputs
from .attention import ensure_kdqat_attention, layer_paths
from .config import DistillConfig
from .losses import (
    attention_map_kl,
    attention_score_mse,
    ground_truth_ce,
    layerwise_mse,
    prediction_loss,
    probs_at_temperature,
)


class KDQATObjective:
    """Terms ``pred``, ``rep``, ``score``, ``map``, ``output``, ``gt`` (only those with a weight)."""

    def __init__(self, cfg: DistillConfig, student: nn.Module, teacher: nn.Module):
        ensure_kdqat_attention(student), ensure_kdqat_attention(teacher)  # FP models only gain the probes
        self.cfg = cfg
        self.weights = cfg.term_weights()
        self._path_cache: dict[int, dict[str, str]] = {}
        n_layers = len(layer_paths(student))
        if len(layer_paths(teacher)) != n_layers:
            raise ValueError(
                f"teacher has {len(layer_paths(teacher))} layers and student {n_layers}; "
                "kdqat distils layer l to layer l"
            )
        self.layers = list(range(n_layers)) if cfg.layers is None else cfg.layers
        bad = [i for i in self.layers if not 0 <= i < n_layers]
        if bad:
            raise ValueError(f"distill.layers {bad} out of range: the model has layers 0..{n_layers - 1}")

    def _paths(self, model: nn.Module) -> dict[str, str]:
        key = id(unwrap(model))
        if key not in self._path_cache:
            self._path_cache[key] = self._build_paths(unwrap(model))
        return self._path_cache[key]

    def _build_paths(self, model: nn.Module) -> dict[str, str]:
        layers = layer_paths(model)
        wanted = {"score": "scores", "map": "scores" if self.cfg.map_tau != 1 else "probs", "output": "output"}
        paths = {}
        for term, kind in wanted.items():
            if term in self.weights:
                for i in self.layers:
                    p = layers[i]
                    paths[f"{kind}.{i}"] = {"scores": p.scores, "probs": p.probs, "output": p.attention_output}[kind]
        return paths

    def _forward(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[object, dict[str, Tensor]]:
        with capture(model, self._paths(model)) as found:
            out = model(**model_inputs(batch), output_hidden_states="rep" in self.weights)
        return out, dict(found)

    def _stack(self, found: dict[str, Tensor], kind: str) -> list[Tensor]:
        return [found[f"{kind}.{i}"] for i in self.layers]

    def terms(self, model: nn.Module, batch: dict[str, Tensor], teacher: nn.Module | None) -> dict[str, Tensor]:
        if teacher is None:
            raise ValueError("qat_distill needs the full-precision teacher")
        s_out, s = self._forward(model, batch)
        with torch.no_grad():
            t_out, t = self._forward(teacher, batch)
        terms: dict[str, Tensor] = {}
        w = self.weights
        if "pred" in w:
            terms["pred"] = prediction_loss(s_out.logits, t_out.logits, self.cfg.temperature)
        if "gt" in w:
            terms["gt"] = ground_truth_ce(s_out.logits, batch["labels"])
        if "rep" in w:
            chosen = [0, *(i + 1 for i in self.layers)] if self.cfg.layers is None else [i + 1 for i in self.layers]
            terms["rep"] = layerwise_mse(
                [s_out.hidden_states[i] for i in chosen], [t_out.hidden_states[i] for i in chosen]
            )
        if "score" in w:
            terms["score"] = attention_score_mse(self._stack(s, "scores"), self._stack(t, "scores"))
        if "map" in w:
            terms["map"] = attention_map_kl(*(self._map_probs(x) for x in (s, t)), batch.get("attention_mask"))
        if "output" in w:
            terms["output"] = layerwise_mse(self._stack(s, "output"), self._stack(t, "output"))
        return terms

    def _map_probs(self, found: dict[str, Tensor]) -> list[Tensor]:
        if self.cfg.map_tau == 1:
            return self._stack(found, "probs")
        return [probs_at_temperature(x, self.cfg.map_tau) for x in self._stack(found, "scores")]
