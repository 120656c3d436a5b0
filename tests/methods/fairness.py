"""Fair-arm checks shared by the repro tests: every arm of a comparison must start its downstream
training from the same non-encoder parameters (head, pooler) and the same recipe, so that arms differ
only in the method under test. The helpers record the model each stage hands to ``train``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import torch


def record_initial_states(monkeypatch, module) -> dict[tuple[str, int, str], dict[str, torch.Tensor]]:
    """Wrap ``module.train``; return {(recipe name, seed, stage id): state dict when training began}."""
    from tailor.engine.hooks import unwrap

    states: dict = {}
    real = module.train

    def recording(model, *args, out_dir, **kwargs):
        run, seed, stage = Path(out_dir).parts[-3:]
        states[(run.rsplit("-", 1)[0], int(seed.removeprefix("seed-")), stage)] = {
            k: v.detach().clone() for k, v in unwrap(model).state_dict().items()
        }
        return real(model, *args, out_dir=out_dir, **kwargs)

    monkeypatch.setattr(module, "train", recording)
    return states


def non_encoder(state: dict[str, torch.Tensor], encoder: str = r"^bert\.(embeddings|encoder)\.") -> dict:
    """The tensors outside the encoder body (pooler, classifier): what no arm's method should change."""
    return {k: v for k, v in state.items() if not re.match(encoder, k)}


def assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a and set(a) == set(b), f"{what}: different tensor names {sorted(set(a) ^ set(b))[:6]}"
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{what}: arms start from different {differ[:6]}"


def tiny_bert_with_pooler(folder: Path) -> Path:
    """tiny-bert's config and tokenizer, saved as a bare BertModel with a (random) pretrained pooler,
    like minilm-l6's checkpoint."""
    from transformers import AutoConfig, AutoTokenizer, BertModel

    from tailor.zoo.models import resolve

    source = resolve("tiny-bert")
    torch.manual_seed(123)
    BertModel(AutoConfig.from_pretrained(source)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def text_csv(path: Path, rows: int = 60) -> Path:
    """A two-class text file: the class decides which words a line uses."""
    words = (["good", "great", "nice", "fine", "happy"], ["bad", "awful", "sad", "poor", "ugly"])
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(rows):
            label = i % 2
            w.writerow([" ".join(words[label][(i + j) % 5] for j in range(4 + i % 3)), str(label)])
    return path


def plain_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A peft model's state under the wrapped model's own names: the trained copy of a head
    (``modules_to_save``) as the head, adapter tensors dropped."""
    out = {}
    for key, value in state.items():
        if ".original_module." in key or re.search(r"(^|\.)(lora_|vera_)", key):
            continue
        out[key.removeprefix("base_model.model.").replace(".modules_to_save.default.", ".")] = value
    return out
