"""Serve many VeRA adapters on one base model in one batch: each row names its own adapter.

peft can hold many VeRA adapters but applies one active adapter to a whole batch (its
``adapter_names`` mixed-batch path exists for LoRA and loops over sub-batches). Because every VeRA
adapter that shares a PRNG key shares the same frozen A and B, a mixed batch needs the projections
only once:

    h_i = W0 x_i + b_{a(i)} * B (d_{a(i)} * (A x_i))            for every row i with adapter a(i)

so per layer we stack the adapters' vectors into D [N, r] and Bv [N, out], gather them per row into
[batch, r] / [batch, out], and run two batched matmuls. Task heads saved with the adapters
(``modules_to_save``) are applied per row with ``torch.func.vmap`` over gathered head weights. No
Python loop over rows or adapters runs in the forward. ``precision`` (auto/fp32/bf16/fp16) runs the
batch under ``torch.autocast`` when mixed; the stacked vectors stay fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import PeftModel, VeraConfig
from peft.tuners.vera.layer import VeraLayer
from peft.utils.other import ModulesToSaveWrapper
from torch.func import functional_call, vmap

from ...engine.precision import PrecisionChoice, autocast, resolve_logged
from .adapters import load_adapter


class MixedVeraBatch:
    """Run a batch whose rows use different VeRA adapters of one ``PeftModel``.

    ``MixedVeraBatch(peft_model)(adapters, **inputs)`` returns the model output, where
    ``adapters[i]`` (a name or an index into :attr:`names`) is row i's adapter. The adapters'
    vectors and heads are snapshotted at construction; call :meth:`refresh` after changing them.
    Not thread-safe (the row assignment lives on the object during a call).
    """

    def __init__(self, model: PeftModel, names: Sequence[str] | None = None, precision: str | PrecisionChoice = "auto"):
        self.model = model
        if not isinstance(precision, PrecisionChoice):  # a caller's resolved choice is already logged
            precision = resolve_logged(precision, "mixed-adapter batch", next(model.parameters()).device)
        self.precision = precision
        self.names = list(names or model.peft_config)
        check_compatible(model, self.names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self._rows: torch.Tensor | None = None
        self.refresh()

    @classmethod
    def from_pretrained(
        cls,
        base_model: torch.nn.Module,
        adapter_dirs: Sequence[str | Path],
        names: Sequence[str] | None = None,
        precision: str = "auto",
    ) -> MixedVeraBatch:
        """Load saved adapters (peft format) onto one base model; names default to the folder names."""
        dirs = [Path(d) for d in adapter_dirs]
        names = list(names or [d.name for d in dirs])
        if len(set(names)) != len(names):
            raise ValueError(f"adapter names must be unique, got {names}; pass names=... explicitly")
        model = load_adapter(base_model, dirs[0], adapter_name=names[0])
        for name, d in zip(names[1:], dirs[1:]):
            model.load_adapter(d, adapter_name=name)
        model.eval()
        return cls(model, names, precision)

    @torch.no_grad()
    def refresh(self) -> None:
        """Stack every adapter's d, b (per VeRA layer) and head weights (per saved module)."""
        self._layers = [
            (
                layer,
                torch.stack([layer.vera_lambda_d[n] for n in self.names]),
                torch.stack([layer.vera_lambda_b[n] for n in self.names]),
            )
            for layer in self.model.modules()
            if isinstance(layer, VeraLayer)
        ]
        self._heads = []
        for wrapper in self.model.modules():
            if isinstance(wrapper, ModulesToSaveWrapper):
                params = [dict(wrapper.modules_to_save[n].named_parameters()) for n in self.names]
                stacked = {k: torch.stack([p[k] for p in params]) for k in params[0]}
                self._heads.append((wrapper, wrapper.modules_to_save[self.names[0]], stacked))

    def rows(self, adapters: Sequence[str | int] | torch.Tensor) -> torch.Tensor:
        """Adapter names or indices -> a LongTensor of indices into :attr:`names`."""
        if isinstance(adapters, torch.Tensor):
            return adapters.long()
        try:
            return torch.tensor([a if isinstance(a, int) else self.index[a] for a in adapters], dtype=torch.long)
        except KeyError as err:
            raise KeyError(f"unknown adapter {err.args[0]!r}; loaded: {self.names}") from None

    @torch.no_grad()
    def __call__(self, adapters: Sequence[str | int] | torch.Tensor, **inputs):
        device = next(self.model.parameters()).device
        self._rows = self.rows(adapters).to(device)
        handles = [layer.register_forward_hook(self._vera_hook(d, b)) for layer, d, b in self._layers]
        handles += [
            wrapper.register_forward_hook(self._head_hook(template, stacked))
            for wrapper, template, stacked in self._heads
        ]
        # peft's own layers then run the base path only; the hooks add each row's adapter. The flag
        # is set directly: peft's disable_adapter() would also flip requires_grad on the way out.
        modules = [m for m, *_ in self._layers] + [w for w, *_ in self._heads]
        was_disabled = [m._disable_adapters for m in modules]
        try:
            for m in modules:
                m._disable_adapters = True
            with autocast(self.precision, device):
                return self.model(**inputs)
        finally:
            for m, flag in zip(modules, was_disabled):
                m._disable_adapters = flag
            for h in handles:
                h.remove()
            self._rows = None

    def _gather(self, stacked: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Row-wise adapter vectors shaped to broadcast over x's middle (sequence) dims."""
        rows = self._rows
        if x.shape[0] != rows.shape[0]:
            raise ValueError(f"batch has {x.shape[0]} rows but {rows.shape[0]} adapters were given")
        picked = stacked.to(x.device).index_select(0, rows)
        return picked.view(picked.shape[0], *([1] * (x.dim() - 2)), picked.shape[-1])

    def _vera_hook(self, d_all: torch.Tensor, b_all: torch.Tensor):
        first = self.names[0]

        def hook(layer: VeraLayer, args, output):
            x = args[0]
            proj_a = layer.vera_A[first][:, : layer.in_features].to(x.device)
            proj_b = layer.vera_B[first][: layer.out_features, :].to(x.device)
            x = x.to(proj_a.dtype)
            delta = self._gather(b_all, x) * F.linear(self._gather(d_all, x) * F.linear(x, proj_a), proj_b)
            return output + delta.to(output.dtype)

        return hook

    def _head_hook(self, template: torch.nn.Module, stacked: dict[str, torch.Tensor]):
        def hook(wrapper: ModulesToSaveWrapper, args, output):
            x = args[0]
            if x.shape[0] != self._rows.shape[0]:
                raise ValueError(f"batch has {x.shape[0]} rows but {self._rows.shape[0]} adapters were given")
            picked = {k: v.to(x.device).index_select(0, self._rows) for k, v in stacked.items()}
            # each row keeps a batch dim of 1, so heads that index [:, 0] (e.g. BERT's pooler) still work
            return vmap(lambda params, row: functional_call(template, params, (row.unsqueeze(0),)).squeeze(0))(
                picked, x
            )

        return hook


def check_compatible(model: PeftModel, names: list[str]) -> None:
    """All adapters must be VeRA with one rank, one PRNG key and the same adapted layers and heads."""
    missing = [n for n in names if n not in model.peft_config]
    if missing:
        raise KeyError(f"adapters {missing} are not loaded; loaded: {list(model.peft_config)}")
    configs = [model.peft_config[n] for n in names]
    not_vera = [n for n, c in zip(names, configs) if not isinstance(c, VeraConfig)]
    if not_vera:
        raise TypeError(f"mixed batches need VeRA adapters; {not_vera} are {type(configs[0]).__name__}")
    for field in ("r", "projection_prng_key", "target_modules", "modules_to_save"):
        values = {n: getattr(c, field) for n, c in zip(names, configs)}
        normalised = {str(sorted(v)) if isinstance(v, (set, list)) else str(v) for v in values.values()}
        if len(normalised) > 1:
            raise ValueError(f"adapters differ in {field}: {values}; a mixed batch shares one A/B and one layout")
