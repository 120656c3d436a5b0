"""The models behind `tailor serve`: one base, many adapters, one call that runs a batch of rows.

VeRA adapters share one peft model and a batch of their rows runs once through it
(``methods.vera.multi_adapter.MixedVeraBatch``). LoRA adapters cannot join that peft model (peft
refuses to mix adapter types in one ``PeftModel``, and ``PeftMixedModel`` has no VeRA), so they
share a second peft model and run through peft's own mixed-batch path (``adapter_names=``).
Both peft models, and the bare base that answers requests naming no adapter, wrap copies of the
base whose weight tensors are the same objects, so the base weights are held once. A batch costs
one forward pass per kind of row it holds (bare base, VeRA, LoRA): one for single-kind traffic.

Not thread-safe: the server calls :meth:`Registry.run`, :meth:`Registry.load` and
:meth:`Registry.unload` from its one worker thread only.
"""

from __future__ import annotations

import copy
import re
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ..artifacts import Artifact, load_model
from ..config import ConfigError
from .buckets import length_buckets

KINDS = {"VERA": "vera", "LORA": "lora"}
BUCKET_CALL_TOKENS = 64  # what one extra forward call costs, in padded tokens (see length_buckets)
PAD_MULTIPLE = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class AdapterRefused(ConfigError):
    """An adapter folder the server will not load, with the reason; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class UnknownAdapter(KeyError):
    def __init__(self, name: str, loaded: list[str]):
        super().__init__(name)
        self.message = f"unknown adapter {name!r}; loaded: {loaded}"

    def __str__(self) -> str:
        return self.message


class TextTooLong(ValueError):
    """A text over the model's token limit while the server is set to reject such texts."""


@dataclass(frozen=True)
class AdapterInfo:
    name: str
    path: str
    kind: str
    label_names: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def base_from_arg(value: str) -> Artifact:
    """``--base``: a zoo model name / hub id, or a folder with ``artifact.json`` (a stage's output)."""
    path = Path(value).expanduser()
    if (path / "artifact.json").is_file():
        return Artifact.load(path)
    if path.is_dir():
        raise ConfigError(
            f"--base {value}: a folder without artifact.json; pass a zoo model name or a stage's "
            "output folder (e.g. runs/<run>/seed-0/02-qat_distill/model)"
        )
    from ..zoo.models import resolve

    return Artifact(resolve(value), value, "hf")


def base_mismatch(adapter: Artifact, base: Artifact) -> str | None:
    """Why ``adapter`` was not trained on ``base`` (None when it was), from what the vera/lora stage
    records about its base: the format and the resolved folder. The one place to point at a weight
    fingerprint check once adapters carry one."""
    from ..methods.vera.stages import base_artifact

    try:
        trained_on = base_artifact(adapter)
    except (ConfigError, OSError, KeyError) as err:
        return f"its base cannot be found ({err})"
    if trained_on.format != base.format:
        return (
            f"it was trained on a {trained_on.format!r} base ({trained_on.path}); this server's base is "
            f"{base.format!r} ({base.path})"
        )
    if Path(trained_on.path).resolve() != Path(base.path).resolve():
        return f"it was trained on {trained_on.path}; this server's base is {base.path}"
    return None


def adapter_names(paths: list[str]) -> list[tuple[str, str]]:
    """``NAME=DIR`` or ``DIR`` -> (name, dir); a bare folder is named by the shortest tail of its path
    that no other folder shares, joined by '-' (``runs/a/model`` and ``runs/b/model`` -> a-model, b-model)."""
    pairs = [p.split("=", 1) if "=" in p and not Path(p).exists() else (None, p) for p in paths]
    parts = [Path(d).resolve().parts for _, d in pairs]
    out = []
    for (name, folder), own in zip(pairs, parts):
        if name is None:
            for k in range(1, len(own) + 1):
                if sum(other[-k:] == own[-k:] for other in parts) == 1:
                    break
            name = "-".join(own[-k:])
        out.append((name, folder))
    names = [n for n, _ in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"--adapters: names {duplicates} are given twice; use NAME=DIR to name them apart")
    return out


def _check_name(name: str) -> None:
    """peft keys its per-adapter ParameterDicts/ModuleDicts by the name, so it must be a plain key."""
    import torch

    if not NAME.fullmatch(name) or any(hasattr(d, name) for d in (torch.nn.ParameterDict(), torch.nn.ModuleDict())):
        raise AdapterRefused(
            f"adapter name {name!r}: use letters, digits, '_' or '-' (at most 64), and not a "
            "name torch's ModuleDict already has (e.g. 'copy', 'keys')",
            status=422,
        )


class Registry:
    """The base model, its loaded adapters and how to run a batch of (adapter or None, text) rows."""

    def __init__(
        self,
        base: Artifact,
        num_labels: int,
        precision: str = "auto",
        max_length: int | None = None,
        overlength: str = "truncate",
        bucket_call_tokens: float = BUCKET_CALL_TOKENS,
        pad_multiple: int = PAD_MULTIPLE,
    ):
        from ..engine.precision import resolve
        from ..zoo import models as zoo

        if overlength not in ("truncate", "reject"):
            raise ConfigError(f"overlength must be 'truncate' or 'reject', got {overlength!r}")
        self.base, self.num_labels, self.overlength = base, num_labels, overlength
        self.model = load_model(base, "classifier", num_labels).eval()
        self.device = next(self.model.parameters()).device
        self.precision = resolve(precision, self.device)
        self.tokenizer = zoo.tokenizer(base.model_name)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        limits = [
            n
            for n in (getattr(self.model.config, "max_position_embeddings", None), self.tokenizer.model_max_length)
            if n and n < 1_000_000
        ]
        self.model_limit = min(limits) if limits else 512
        self.max_length = min(max_length or self.model_limit, self.model_limit)
        self.bucket_call_tokens, self.pad_multiple = bucket_call_tokens, pad_multiple
        self.stats: Counter = Counter()  # seconds per phase and token counts, for /metrics
        self.adapters: dict[str, AdapterInfo] = {}
        self._peft: dict = {}  # kind -> PeftModel holding every adapter of that kind
        self._mixed_vera = None

    # ---- adapters -------------------------------------------------------------------------------

    def check(self, path: str | Path, name: str) -> tuple[Artifact, str]:
        """Refuse a folder that is no adapter, is for another base or head, or clashes by name."""
        from peft import PeftConfig

        from ..methods.vera.adapters import UNIQUE_PROJECTIONS_FILE

        path = Path(path)
        if name in self.adapters:
            raise AdapterRefused(
                f"an adapter named {name!r} is loaded already ({self.adapters[name].path}); "
                "unload it first or pick another name",
                status=409,
            )
        _check_name(name)
        if not (path / "artifact.json").is_file():
            raise AdapterRefused(f"{path}: no artifact.json; not an adapter folder saved by the vera or lora stage")
        art = Artifact.load(path)
        if art.format != "peft" or art.base is None:
            raise AdapterRefused(f"{path}: format {art.format!r} is not an adapter saved by the vera or lora stage")
        reason = base_mismatch(art, self.base)
        if reason:
            raise AdapterRefused(f"{path}: refused, {reason}")
        if art.head != "classifier" or art.num_labels != self.num_labels:
            raise AdapterRefused(
                f"{path}: a {art.head!r} adapter with {art.num_labels} "
                f"labels; this server classifies into {self.num_labels} labels"
            )
        kind = KINDS.get(str(PeftConfig.from_pretrained(path).peft_type).rsplit(".", 1)[-1])
        if kind is None:
            raise AdapterRefused(f"{path}: only VeRA and LoRA adapters are served")
        if (path / UNIQUE_PROJECTIONS_FILE).exists():
            raise AdapterRefused(f"{path}: per-layer (unique) VeRA projections cannot share a mixed batch")
        return art, kind

    def load(self, path: str | Path, name: str) -> AdapterInfo:
        """Validate and load an adapter folder under ``name``; the registry is unchanged if it is refused."""
        from ..methods.vera.adapters import load_adapter
        from ..methods.vera.multi_adapter import check_compatible

        art, kind = self.check(path, name)
        peft_model = self._peft.get(kind)
        if peft_model is None:
            peft_model = load_adapter(self._shared_copy(), art.path, adapter_name=name).eval()
        else:
            peft_model.load_adapter(art.path, adapter_name=name)
        if kind == "vera":
            try:  # against one loaded adapter: every loaded one already matches it
                check_compatible(peft_model, [*self._names("vera")[:1], name])
            except (ValueError, TypeError) as err:
                self._drop(peft_model, kind, name)
                raise AdapterRefused(f"{path}: refused, it cannot share a batch with the loaded VeRA adapters: {err}")
            self._mixed_vera = None  # restacked at the next VeRA batch, so n loads stack once, not n times
        self._peft[kind] = peft_model
        names = art.label_names or [str(i) for i in range(self.num_labels)]
        self.adapters[name] = AdapterInfo(name, str(art.path), kind, list(names))
        return self.adapters[name]

    def unload(self, name: str) -> AdapterInfo:
        if name not in self.adapters:
            raise UnknownAdapter(name, list(self.adapters))
        info = self.adapters.pop(name)
        self._drop(self._peft[info.kind], info.kind, name)
        if info.kind == "vera":
            self._mixed_vera = None
        return info

    def _drop(self, peft_model, kind: str, name: str) -> None:
        if len(peft_model.peft_config) == 1:
            self._peft.pop(kind, None)  # the last one: release the whole peft copy
        else:
            with warnings.catch_warnings():  # peft warns when the deleted adapter was its "active" one
                warnings.simplefilter("ignore", UserWarning)
                peft_model.delete_adapter(name)

    def _names(self, kind: str) -> list[str]:
        return [n for n, a in self.adapters.items() if a.kind == kind]

    def _shared_copy(self):
        """A copy of the bare base whose parameters and buffers are the base's own tensors."""
        memo = {id(t): t for t in (*self.model.parameters(), *self.model.buffers())}
        return copy.deepcopy(self.model, memo)

    # ---- inference ------------------------------------------------------------------------------

    def run(self, rows: list[tuple[str | None, str]]) -> list[dict | Exception]:
        """One answer (or the exception for that row) per (adapter name or None, text) row.

        The texts are tokenised in one call; each kind's rows are then sorted by length and cut into
        buckets (:func:`length_buckets`), each padded only to its own longest row."""
        import torch

        results: list[dict | Exception | None] = [None] * len(rows)
        groups: dict[str, list[int]] = {}
        for i, (name, _) in enumerate(rows):
            if name is not None and name not in self.adapters:  # unloaded while it waited in the queue
                results[i] = UnknownAdapter(name, list(self.adapters))
            else:
                groups.setdefault("base" if name is None else self.adapters[name].kind, []).append(i)
        live = [i for idx in groups.values() for i in idx]
        if not live:
            return results
        clock = time.perf_counter()
        features = self._tokenize([rows[i][1] for i in live])
        tokens = dict(zip(live, features))
        self._count("tokenize", clock)
        for kind, idx in groups.items():
            idx = self._within_limit(idx, tokens, results)
            for bucket in length_buckets(
                [len(tokens[i]["input_ids"]) for i in idx], self.bucket_call_tokens, self.pad_multiple
            ):
                clock = time.perf_counter()
                rows_in = [idx[j] for j in bucket]
                enc = self.tokenizer.pad(
                    [tokens[i] for i in rows_in], pad_to_multiple_of=self.pad_multiple, return_tensors="pt"
                ).to(self.device)
                self._count("pad", clock)
                self.stats["forwards"] += 1
                self.stats["padded_tokens"] += enc["input_ids"].numel()
                self.stats["real_tokens"] += int(enc["attention_mask"].sum())
                clock = time.perf_counter()
                logits = self.forward(kind, [rows[i][0] for i in rows_in], enc)
                self._count("forward", clock)
                clock = time.perf_counter()
                for i, p in zip(rows_in, torch.softmax(logits.float(), -1).cpu().tolist()):
                    results[i] = self._answer(rows[i][0], p)
                self._count("answer", clock)
        return results

    def _tokenize(self, texts: list[str]) -> list[dict]:
        """Unpadded token features per text; truncated at ``max_length`` unless over-long texts are rejected."""
        enc = self.tokenizer(texts, truncation=self.overlength == "truncate", max_length=self.max_length)
        keys = list(enc.keys())
        return [dict(zip(keys, values)) for values in zip(*(enc[k] for k in keys))]

    def _within_limit(self, idx: list[int], tokens: dict, results: list) -> list[int]:
        kept = []
        for i in idx:
            n = len(tokens[i]["input_ids"])
            if n > self.max_length:  # only when rejecting: truncated texts are never over
                results[i] = TextTooLong(f"text of {n} tokens is over the limit of {self.max_length}")
            else:
                kept.append(i)
        return kept

    def _count(self, phase: str, since: float) -> None:
        self.stats[f"{phase}_seconds"] += time.perf_counter() - since

    def mixed_vera(self):
        """The mixed batch over every loaded VeRA adapter, stacked at the first batch after a change."""
        from ..methods.vera.multi_adapter import MixedVeraBatch

        if self._mixed_vera is None:
            self._mixed_vera = MixedVeraBatch(self._peft["vera"], self._names("vera"), self.precision)
        return self._mixed_vera

    def forward(self, kind: str, names: list[str | None], enc):
        """Logits of one batch whose rows are all of ``kind`` (base, vera, lora), row i on ``names[i]``."""
        import torch

        from ..engine.precision import autocast

        with torch.no_grad(), autocast(self.precision, self.device):
            if kind == "base":
                return self.model(**enc).logits
            if kind == "vera":
                return self.mixed_vera()(names, **enc).logits
            return self._peft["lora"](**enc, adapter_names=names).logits

    def _answer(self, name: str | None, probs: list[float]) -> dict:
        if name is None:
            id2label = getattr(self.model.config, "id2label", None) or {}
            labels = [str(id2label.get(i, i)) for i in range(len(probs))]
        else:
            labels = self.adapters[name].label_names
        best = max(range(len(probs)), key=probs.__getitem__)
        return {"label": labels[best], "label_id": best, "probs": dict(zip(labels, probs))}

    def describe(self) -> dict:
        return {
            "base": str(self.base.path),
            "base_format": self.base.format,
            "model_name": self.base.model_name,
            "num_labels": self.num_labels,
            "max_length": self.max_length,
            "overlength": self.overlength,
            "bucket_call_tokens": self.bucket_call_tokens,
            "pad_multiple": self.pad_multiple,
            **self.precision.as_dict(),
        }
